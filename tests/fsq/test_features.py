from __future__ import annotations

import datetime as dt
import typing

import numpy as np
import polars as pl

from strates.data.embedded import EmbeddedSpec, generate
from strates.fsq.features import FEATURES, Normalizer, raw_features, series_by_asset


def _bars():
    bars, _ = generate(EmbeddedSpec(assets=2, bars=300))
    return bars.sort("asset", "ts")


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
    row = feats.filter(pl.col("log_range") > 0).row(0, named=True)
    assert -1 <= row["body"] <= 1 and 0 <= row["upper_wick"] <= 1 and 0 <= row["lower_wick"] <= 1
    assert abs(abs(row["body"]) + row["upper_wick"] + row["lower_wick"] - 1) < 1e-9


def test_normalizer_sees_only_the_training_period():
    bars = _bars()
    feats = raw_features(bars)
    start, end = typing.cast(dt.datetime, feats["ts"].min()), typing.cast(dt.datetime, feats["ts"].sort()[200])
    norm = Normalizer.fit(feats, start=start, end=end)
    # wild values after `end` do not move the statistics
    wild = feats.with_columns(
        pl.when(pl.col("ts") >= end).then(pl.col("ret") * 100).otherwise(pl.col("ret")).alias("ret"))
    assert Normalizer.fit(wild, start=start, end=end) == norm
    train = norm.apply(feats.filter(pl.col("ts") < end).select(FEATURES).to_numpy())
    assert np.allclose(train.mean(axis=0), 0, atol=0.05) and np.allclose(train.std(axis=0), 1, atol=0.05)
    assert Normalizer.from_json(norm.to_json()) == norm
    series = series_by_asset(feats, norm)
    assert sorted(series) == sorted(bars["asset"].unique().to_list())
    ts, x = series[sorted(series)[0]]
    assert x.dtype == np.float32 and x.shape == (300, len(FEATURES)) and len(ts) == 300
    assert dt.datetime.fromisoformat(str(ts[0])) == typing.cast(dt.datetime, bars["ts"].min()).replace(tzinfo=None)
