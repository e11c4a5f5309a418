"""The embedded dataset: deterministic, schema-exact, and with the structure later stages learn."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import polars as pl
import pytest

from strates.data.embedded import MACRO_LAGS, REGIMES, EmbeddedSpec, generate, simulate
from strates.data.schema import BAR_SCHEMA, MACRO_SCHEMA, TS_DTYPE

SMALL = EmbeddedSpec(bars=600, history_days=10)


@pytest.fixture(scope="module")
def sim():
    return simulate()


def _log_returns(bars: pl.DataFrame) -> np.ndarray:
    """Close-to-close log returns, (assets, bars - 1), assets in frame order."""
    groups = bars.group_by("asset", maintain_order=True)
    close = np.stack([g["close"].to_numpy() for _, g in groups])
    return np.diff(np.log(close), axis=1)


def _acf1(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x[1:] * x[:-1]).sum() / (x * x).sum())


def test_deterministic_and_seeded():
    bars, macro = generate(SMALL)
    again_bars, again_macro = generate(SMALL)
    assert bars.equals(again_bars) and macro.equals(again_macro)
    other_bars, other_macro = generate(EmbeddedSpec(seed=SMALL.seed + 1, bars=600, history_days=10))
    assert not bars["close"].equals(other_bars["close"])
    assert not macro["value"].equals(other_macro["value"])


def test_schema_exact(sim):
    assert sim.bars.schema == pl.Schema(BAR_SCHEMA)
    assert sim.macro.schema == pl.Schema(MACRO_SCHEMA)
    assert sim.bars.schema["ts"] == TS_DTYPE and sim.bars["ts"].dtype.time_zone == "UTC"
    assert sim.macro["available"].dtype.time_zone == "UTC"
    assert sim.assets == ("LRZ-A", "RSS-B", "LRZ-C", "RSS-D", "LRZ-E", "RSS-F")
    assert sim.bars["asset"].unique(maintain_order=True).to_list() == list(sim.assets)
    assert sim.bars.height == 6 * 8760
    assert sim.bars.null_count().sum_horizontal().item() == 0
    assert sim.macro.null_count().sum_horizontal().item() == 0


def test_ohlc_rules(sim):
    b = sim.bars
    o, h, lo, c, v = (b[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    prices = np.stack([o, h, lo, c])
    assert np.isfinite(prices).all() and (prices > 0).all()
    assert np.isfinite(v).all() and (v > 0).all()
    assert (h >= np.maximum(o, c)).all() and (lo <= np.minimum(o, c)).all()
    assert (h > np.maximum(o, c)).mean() > 0.5  # high/low come from the intrabar path
    same = b.group_by("asset", maintain_order=True).agg(
        (pl.col("open") == pl.col("close").shift(1)).drop_nulls().mean().alias("same"),
        ((pl.col("open") / pl.col("close").shift(1)).log().abs().max()).alias("gap"),
    )
    assert (same["same"] > 0.97).all() and (same["same"] < 1).all()  # rare gaps ...
    assert (same["gap"] < 0.02).all()  # ... and tiny ones


@pytest.mark.parametrize("spec", [EmbeddedSpec(), EmbeddedSpec(bars=300, interval_minutes=15)])
def test_timestamps_regular_and_shared(spec, sim):
    bars = sim.bars if spec == EmbeddedSpec() else generate(spec)[0]
    step = dt.timedelta(minutes=spec.interval_minutes)
    per_asset = bars.group_by("asset", maintain_order=True).agg(
        pl.len(),
        pl.col("ts").first().alias("first"),
        (pl.col("ts").diff().drop_nulls() == step).all().alias("regular"),
    )
    assert (per_asset["len"] == spec.bars).all() and per_asset["regular"].all()
    assert (per_asset["first"] == dt.datetime(2024, 1, 1, tzinfo=dt.UTC)).all()
    first_ts = bars.filter(pl.col("asset") == bars["asset"][0])["ts"]
    for _, g in bars.group_by("asset"):
        assert g["ts"].equals(first_ts)


def test_volatility_clustering_without_linear_predictability(sim):
    for r in _log_returns(sim.bars):
        assert _acf1(np.abs(r)) > 0.1
        assert abs(_acf1(r)) < 0.05


def test_heavy_tails(sim):
    for r in _log_returns(sim.bars):
        z = r - r.mean()
        assert (z**4).mean() / (z**2).mean() ** 2 - 3 > 3


def test_regimes_change_volatility(sim):
    r, regime = _log_returns(sim.bars), sim.regime[:, 1:]
    std = {name: r[regime == k].std() for k, name in enumerate(REGIMES)}
    assert all((regime == k).mean() > 0.05 for k in range(len(REGIMES)))
    assert std["turbulent"] > 1.5 * std["calm"] and std["trending"] > std["calm"]
    # regimes persist: expected stays are hundreds of bars
    assert (np.diff(sim.regime, axis=1) != 0).mean() < 0.02


def test_shared_driver_correlates_assets(sim):
    corr = np.corrcoef(_log_returns(sim.bars))
    assert corr[0, 4] > 0.15 and corr[1, 5] > 0.15  # LRZ-A/LRZ-E and RSS-B/RSS-F share a driver
    assert abs(corr[0, 1]) < 0.1  # LRZ-A and RSS-B do not


def test_macro_lags_and_coverage(sim):
    m, start = sim.macro, dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    end = sim.bars["ts"].max()
    assert set(m["series"].unique()) == set(MACRO_LAGS)
    assert (m["available"] > m["observed"]).all()
    for name, g in m.group_by("series"):
        lag = MACRO_LAGS[name[0]]
        assert ((g["available"] - g["observed"]) == lag).all()
        assert g["observed"].min() <= start - dt.timedelta(days=30)  # earlier history
        assert g["observed"].max() >= end - dt.timedelta(days=31)
        assert g["observed"].is_sorted() and g["observed"].n_unique() == g.height
    obs = m.with_columns(  # weekday: Monday = 1
        pl.col("observed").dt.weekday().alias("wd"), pl.col("available").dt.weekday().alias("awd")
    )
    assert obs.filter(pl.col("series") == "rate_10y")["wd"].is_in([1, 2, 3, 4, 5]).all()
    cot = obs.filter(pl.col("series") == "cot_net")
    assert (cot["wd"] == 2).all() and (cot["awd"] == 5).all()
    assert (cot["available"].dt.hour() == 20).all() and (cot["available"].dt.minute() == 30).all()
    assert (obs.filter(pl.col("series") == "cpi_yoy")["observed"].dt.day() == 1).all()


def test_macro_is_informative(sim):
    """The published rate (as of each bar) tracks the coming day's realised volatility."""
    ts = sim.bars.filter(pl.col("asset") == sim.assets[0]).select("ts")
    rate = sim.macro.filter(pl.col("series") == "rate_10y").sort("available")
    published = rate.select(pl.col("available").alias("ts"), "value")
    joined = ts.join_asof(published, on="ts", strategy="backward")
    value = joined["value"].to_numpy()
    future = np.convolve(np.abs(_log_returns(sim.bars)).mean(0), np.ones(24) / 24, "valid")
    value = value[: len(future)]
    assert not np.isnan(value).any()  # history covers the first bar
    assert np.corrcoef(value, future)[0, 1] > 0.15


def test_spec_validation():
    with pytest.raises(ValueError, match="student_df must exceed 2"):
        EmbeddedSpec(student_df=2.0)
    with pytest.raises(ValueError, match="need one value per regime"):
        EmbeddedSpec(regime_vol=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        EmbeddedSpec(jump_prob=1.5)


def test_generation_is_fast():
    t0 = time.perf_counter()
    generate()
    assert time.perf_counter() - t0 < 3.0
