from __future__ import annotations

import datetime as dt
import inspect
import typing

import numpy as np
import polars as pl
import pytest

from strates.core.errors import ConfigError, InvalidInput
from strates.data.embedded import EmbeddedSpec, generate
from strates.fsq.config import DataConfig
from strates.fsq.features import FEATURES, KAPPA, WARMUP, Normalizer, raw_features, series_by_asset

SCALE_FREE = ["ret_z", "range_z"]


def _bars():
    bars, _ = generate(EmbeddedSpec(assets=2, bars=300))
    return bars.sort("asset", "ts")


def _bars_from(vols: np.ndarray, *, seed: int = 0, steps: int = 12) -> pl.DataFrame:
    """One asset whose bar t is a `steps`-point Gaussian random walk of log price with
    per-bar volatility vols[t]: open = previous close, high/low the path's max/min."""
    rng = np.random.default_rng(seed)
    moves = rng.normal(size=(len(vols), steps)) * (vols / np.sqrt(steps))[:, None]
    path = np.log(100.0) + np.cumsum(moves.ravel()).reshape(moves.shape)
    close = path[:, -1]
    log_open = np.concatenate([[np.log(100.0)], close[:-1]])
    with_open = np.hstack([log_open[:, None], path])
    first = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return pl.DataFrame({
        "asset": "A", "ts": [first + dt.timedelta(hours=i) for i in range(len(vols))],
        "open": np.exp(log_open), "high": np.exp(with_open.max(axis=1)), "low": np.exp(with_open.min(axis=1)),
        "close": np.exp(close), "volume": rng.uniform(50, 150, len(vols)),
    })


def test_features_are_causal_and_well_defined():
    bars = _bars()
    feats = raw_features(bars)
    assert feats.columns == ["asset", "ts", *FEATURES]
    assert feats.select(pl.all().exclude("asset", "ts").is_finite().all()).row(0) == (True,) * len(FEATURES)
    cut = bars["ts"].sort()[150]
    changed = bars.with_columns(
        [pl.when(pl.col("ts") > cut).then(pl.col(c) * 1.7).otherwise(pl.col(c)).alias(c)
         for c in ("open", "high", "low", "close", "volume")]
    )
    before = raw_features(bars).filter(pl.col("ts") <= cut)
    after = raw_features(changed).filter(pl.col("ts") <= cut)
    assert before.equals(after)
    # candle geometry: body and wicks describe the bar within its range
    row = feats.filter(pl.col("body").abs() > 0).row(0, named=True)
    assert -1 <= row["body"] <= 1 and 0 <= row["upper_wick"] <= 1 and 0 <= row["lower_wick"] <= 1
    assert abs(abs(row["body"]) + row["upper_wick"] + row["lower_wick"] - 1) < 1e-9


def test_changing_the_next_bar_changes_nothing_before_it():
    bars = _bars_from(np.full(200, 0.01))
    t = 120
    shock = pl.int_range(pl.len()) == t + 1
    changed = bars.with_columns(
        [pl.when(shock).then(pl.col(c) * f).otherwise(pl.col(c)).alias(c)
         for c, f in (("high", 1.2), ("close", 1.1), ("volume", 5.0))])
    before, after = raw_features(bars), raw_features(changed)
    assert before.head(t + 1).equals(after.head(t + 1))
    # ... while bar t + 1's own features do change: the test has teeth
    assert all(before.row(t + 1, named=True)[f] != after.row(t + 1, named=True)[f] for f in SCALE_FREE)


def test_return_and_range_features_do_not_see_the_volatility_level():
    bars = _bars()
    # every log return and log range x3: price -> p0 (p / p0)^3 per asset
    p0 = pl.col("open").first().over("asset")
    louder = bars.with_columns([(p0 * (pl.col(c) / p0) ** 3).alias(c) for c in ("open", "high", "low", "close")])
    base, loud = raw_features(bars), raw_features(louder)
    assert np.allclose(base.select(SCALE_FREE).to_numpy(), loud.select(SCALE_FREE).to_numpy(), atol=1e-9)
    # the absolute quantities the features replaced are 3x larger: the test has teeth
    moves = [np.abs(np.log(b["close"].to_numpy() / b["open"].to_numpy())).sum() for b in (louder, bars)]
    assert abs(moves[0] / moves[1] - 3.0) < 1e-6


def test_a_volatility_regime_shift_is_absorbed_within_the_window():
    w = 64
    n = 800
    vols = np.where(np.arange(2 * n) < n, 0.01, 0.03)  # calm, then 3x more volatile
    feats = raw_features(_bars_from(vols, seed=3), vol_window=w).select(SCALE_FREE).to_numpy()
    calm, loud, adapting = feats[w:n], feats[n + w :], feats[n : n + 10]
    # same distribution w bars after the shift (bounds ~4 standard errors of 736 bars; the
    # unscaled log return's standard deviation triples)
    for j in range(len(SCALE_FREE)):
        assert abs(loud[:, j].mean() - calm[:, j].mean()) < 0.2
        assert 0.85 < loud[:, j].std() / calm[:, j].std() < 1.15
        assert abs(np.median(loud[:, j]) - np.median(calm[:, j])) < 0.25
    # right after the shift, before the trailing level catches up, the features do see it
    # (expected: |ret_z| about 2.4x, range_z about +0.9 over these 10 bars)
    assert np.abs(adapting[:, 0]).mean() > 1.5 * np.abs(calm[:, 0]).mean()
    assert adapting[:, 1].mean() > calm[:, 1].mean() + 0.5


def test_warm_up_and_flat_bars_stay_finite():
    bars = _bars_from(np.concatenate([np.zeros(30), np.full(100, 0.01)]), seed=1)  # 30 flat bars: high = low
    feats = raw_features(bars, vol_window=16)
    values = feats.select(FEATURES).to_numpy()
    assert np.isfinite(values).all()
    assert (values[:WARMUP, :2] == 0).all()  # not standardised before WARMUP earlier bars
    # a flat bar after flat bars: floored, never -inf; the first move after them is large but finite
    assert np.allclose(values[WARMUP:30, 1], np.log(KAPPA))
    short = raw_features(_bars_from(np.full(3, 0.01)))  # fewer bars than WARMUP
    assert (short.select(SCALE_FREE).to_numpy() == 0).all()


def test_defaults_agree_with_the_config_and_the_window_is_validated():
    params = inspect.signature(raw_features).parameters
    assert params["vol_window"].default == DataConfig().vol_window
    assert params["volume_window"].default == DataConfig().volume_window
    with pytest.raises(ConfigError, match=r"data\.vol_window"):
        DataConfig(vol_window=2)


def test_normalizer_sees_only_the_training_period():
    bars = _bars()
    feats = raw_features(bars)
    start, end = typing.cast(dt.datetime, feats["ts"].min()), typing.cast(dt.datetime, feats["ts"].sort()[200])
    norm = Normalizer.fit(feats, start=start, end=end)
    # wild values after `end` do not move the statistics
    wild = feats.with_columns(
        pl.when(pl.col("ts") >= end).then(pl.col("ret_z") * 100).otherwise(pl.col("ret_z")).alias("ret_z"))
    assert Normalizer.fit(wild, start=start, end=end) == norm
    train = norm.apply(feats.filter(pl.col("ts") < end).select(FEATURES).to_numpy())
    assert np.allclose(train.mean(axis=0), 0, atol=0.05) and np.allclose(train.std(axis=0), 1, atol=0.05)
    assert Normalizer.from_json(norm.to_json()) == norm
    series = series_by_asset(feats, norm)
    assert sorted(series) == sorted(bars["asset"].unique().to_list())
    ts, x = series[sorted(series)[0]]
    assert x.dtype == np.float32 and x.shape == (300, len(FEATURES)) and len(ts) == 300
    assert dt.datetime.fromisoformat(str(ts[0])) == typing.cast(dt.datetime, bars["ts"].min()).replace(tzinfo=None)
    # a normaliser fitted on other features (a tokenizer from before a feature changed) is refused
    old = Normalizer(("ret", "log_range", *FEATURES[2:]), norm.lo, norm.hi, norm.mean, norm.std, start, end)
    with pytest.raises(InvalidInput, match="train a new tokenizer"):
        series_by_asset(feats, old)
