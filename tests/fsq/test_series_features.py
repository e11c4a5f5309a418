"""The tokenizer's features of a series dataset: `d_<x>` (standardised increment) and `z_<x>`
(standardised level) per channel, against a direct loop; causal; free of the channel's scale
and offset; systems independent; the normaliser keeps the series' feature names."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from strates.core.errors import InvalidInput
from strates.fsq.features import FLOOR, WARMUP, Normalizer, series_by_asset, series_feature_names, series_features

T0 = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
W = 16


def _frame(systems: dict[str, dict[str, np.ndarray]]) -> pl.DataFrame:
    parts = []
    for name, channels in systems.items():
        n = len(next(iter(channels.values())))
        parts.append(pl.DataFrame({"asset": name, "ts": [T0 + dt.timedelta(hours=i) for i in range(n)], **channels}))
    return pl.concat(parts).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))


def _channels(n: int = 300, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    vol = np.where(np.arange(n) < n // 2, 1.0, 5.0)  # a shift of the increments' scale half way
    return {"x": 50.0 + np.cumsum(vol * rng.normal(size=n)), "v": np.sin(np.arange(n) / 6.0) + 0.2 * rng.normal(size=n)}


def _reference(x: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """d and z of one channel by the definition, one row at a time."""
    n = len(x)
    d, z = np.zeros(n), np.zeros(n)
    inc = np.diff(x)  # inc[j - 1] = x_j - x_{j-1}
    for t in range(n):
        if t > WARMUP:
            trailing = np.sqrt(np.mean(inc[max(0, t - 1 - w) : t - 1] ** 2))
            level = max(trailing, FLOOR * np.sqrt(np.mean(inc[: t - 1] ** 2)))
            d[t] = inc[t - 1] / level if level > 0 else 0.0
        if t >= WARMUP:
            prev = x[max(0, t - w) : t]
            spread = max(prev.std(), FLOOR * x[:t].std())
            z[t] = (x[t] - prev.mean()) / spread if spread > 0 else 0.0
    return d, z


def test_names_and_values_match_the_definition():
    channels = _channels()
    feats = series_features(_frame({"a": channels}), ("x", "v"), window=W)
    assert series_feature_names(("x", "v")) == ("d_x", "z_x", "d_v", "z_v")
    assert feats.columns == ["asset", "ts", "d_x", "z_x", "d_v", "z_v"]
    for name, x in channels.items():
        d, z = _reference(x, W)
        np.testing.assert_allclose(feats[f"d_{name}"].to_numpy(), d, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(feats[f"z_{name}"].to_numpy(), z, rtol=1e-7, atol=1e-9)
    assert (feats["d_x"][: WARMUP + 1] == 0).all() and (feats["z_x"][:WARMUP] == 0).all()
    # scale-free: after the increments' scale jumps 5x, d returns to its usual spread within the window
    d = feats["d_x"].to_numpy()
    assert 0.7 < d[200:].std() / d[20:150].std() < 1.4


def test_a_later_value_never_changes_an_earlier_feature():
    channels = _channels(seed=1)
    base = series_features(_frame({"a": channels}), ("x", "v"), window=W)
    for cut in (WARMUP, 40, 151, 298):
        changed = {k: v.copy() for k, v in channels.items()}
        changed["x"][cut:] += 1e3 * np.random.default_rng(cut).normal(size=len(changed["x"]) - cut)
        changed["v"][cut] = -77.0
        after = series_features(_frame({"a": changed}), ("x", "v"), window=W)
        head = base.select(pl.exclude("asset", "ts")).to_numpy()[:cut]
        np.testing.assert_array_equal(after.select(pl.exclude("asset", "ts")).to_numpy()[:cut], head)
        assert not np.array_equal(after["z_v"].to_numpy()[cut:], base["z_v"].to_numpy()[cut:])


@pytest.mark.parametrize(("scale", "offset"), [(1e-4, 3.0), (250.0, -1e4), (1.0, 1e3)])
def test_the_features_do_not_depend_on_a_channels_scale_or_offset(scale, offset):
    channels = _channels(seed=2)
    base = series_features(_frame({"a": channels}), ("x", "v"), window=W)
    moved = {"x": channels["x"] * scale + offset, "v": channels["v"]}
    out = series_features(_frame({"a": moved}), ("x", "v"), window=W)
    np.testing.assert_allclose(out["d_x"].to_numpy(), base["d_x"].to_numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out["z_x"].to_numpy(), base["z_x"].to_numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(out["z_v"].to_numpy(), base["z_v"].to_numpy())  # other channels untouched


def test_systems_are_independent_and_flat_stretches_stay_finite():
    a, b = _channels(seed=3), _channels(seed=4)
    together = series_features(_frame({"a": a, "b": b}), ("x", "v"), window=W)
    alone = series_features(_frame({"b": b}), ("x", "v"), window=W)
    np.testing.assert_array_equal(together.filter(pl.col("asset") == "b").select(pl.exclude("asset")).to_numpy(),
                                  alone.select(pl.exclude("asset")).to_numpy())
    # flat since the start, then moving, then flat again (a damped system at rest): finite, 0 while flat
    n = 200
    x = np.zeros(n)
    x[60:120] = np.cumsum(np.random.default_rng(5).normal(size=60))
    x[120:] = x[119]
    feats = series_features(_frame({"c": {"x": x, "v": np.sin(np.arange(n) / 3.0)}}), ("x", "v"), window=W)
    values = feats.select(pl.exclude("asset", "ts")).to_numpy()
    assert np.isfinite(values).all()
    assert (feats["d_x"][:60] == 0).all() and (feats["z_x"][:60] == 0).all()
    assert (feats["d_x"][121:] == 0).all()  # no increment at rest, whatever the trailing level
    assert np.abs(feats["z_x"][140:].to_numpy()).max() < 1e-9  # at its own trailing mean


def test_the_normalizer_keeps_the_series_feature_names():
    feats = series_features(_frame({"a": _channels(seed=6), "b": _channels(seed=7)}), ("x", "v"), window=W)
    names = series_feature_names(("x", "v"))
    end = T0 + dt.timedelta(hours=200)
    norm = Normalizer.fit(feats, start=T0, end=end, names=names)
    assert norm.names == names and Normalizer.from_json(norm.to_json()) == norm
    series = series_by_asset(feats, norm, names)
    ts, x = series["a"]
    assert x.shape == (300, 4) and x.dtype == np.float32 and len(ts) == 300
    train = np.concatenate([x[:200], series["b"][1][:200]])  # the training rows of both systems
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=0.05)  # standardised there (after clipping)
    np.testing.assert_allclose(train.std(axis=0), 1.0, atol=0.05)
    # a tokenizer fitted on other channels (or on bars) is refused
    with pytest.raises(InvalidInput, match="train a new tokenizer"):
        series_by_asset(feats, norm, series_feature_names(("v", "x")))
