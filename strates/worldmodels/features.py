"""What V reads: per-bar features of a dataset's bars, normalised on the training period,
and windows of them.

Per bar: the tokenizer's six causal features (`strates.fsq.features.raw_features`: ret_z,
range_z, body, upper_wick, lower_wick, rel_volume; each from bar t and earlier bars), then
the dataset's macro series as of the bar (`macro_<series>`, joined on release time at
ingest; a bar before a series' first release reads the training period's mean of it).
All are clipped to the training period's quantiles and standardised with its statistics
(`strates.fsq.features.Normalizer`, stored in the artifact so a dream or a transfer scales
alike). The window of bar t is bars t-W+1 .. t flattened (`[W x F]`, oldest first), zeros
(the training mean) before an asset's first bar.

The return a bar carries for the accounting is its log return r_t = log(close_t /
close_{t-1}) (log(close / open) for an asset's first bar), as the tokenizer defines it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import numpy as np

from strates.fsq.features import FEATURES, Normalizer, raw_features


@dataclasses.dataclass(frozen=True)
class AssetBars:
    """One asset's bars: `ts [N]` datetime64[us] (UTC, naive), `x [N, F]` normalised
    features (float32), `r [N]` log returns, and the prices `open, high, low, close, volume
    [N]` (float64)."""

    asset: str
    ts: np.ndarray
    x: np.ndarray
    r: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def mask(self, start: dt.datetime, end: dt.datetime) -> np.ndarray:
        """`[N]` bool: bars with start <= ts < end."""
        a, b = (np.datetime64(t.astimezone(dt.UTC).replace(tzinfo=None), "us") for t in (start, end))
        return (self.ts >= a) & (self.ts < b)


def load(bars, *, train_start: dt.datetime, train_end: dt.datetime, vol_window: int, volume_window: int,
         clip_quantile: float, normalizer: Normalizer | None = None) -> tuple[list[AssetBars], Normalizer]:
    """A dataset's `bars` (polars: asset, ts, open, high, low, close, volume, macro_*) ->
    (per-asset bars in asset order, the normaliser: fitted on [train_start, train_end) when
    `normalizer` is None, else that one, which must name the same features)."""
    import polars as pl

    from strates.core.errors import InvalidInput

    bars = bars.sort("asset", "ts")
    macro = [c for c in bars.columns if c.startswith("macro_")]
    feats = raw_features(bars, vol_window=vol_window, volume_window=volume_window)
    frame = feats.join(bars.select("asset", "ts", "open", "high", "low", "close", "volume", *macro),
                       on=["asset", "ts"], how="left").sort("asset", "ts")
    in_train = (pl.col("ts") >= train_start) & (pl.col("ts") < train_end)
    if macro:
        means = frame.filter(in_train).select(pl.col(c).cast(pl.Float64).mean() for c in macro).row(0)
        frame = frame.with_columns(pl.col(c).cast(pl.Float64).fill_null(m if m is not None else 0.0).fill_nan(
            m if m is not None else 0.0) for c, m in zip(macro, means, strict=True))
    names = (*FEATURES, *macro)
    if normalizer is None:
        normalizer = Normalizer.fit(frame, start=train_start, end=train_end, clip_quantile=clip_quantile, names=names)
    elif tuple(normalizer.names) != names:
        raise InvalidInput(f"the world model was fitted on features {list(normalizer.names)}, but this dataset "
                           f"gives {list(names)}", rule="feature-mismatch",
                           fix="transfer between datasets with the same macro series, or train from scratch")
    out = []
    for (asset,), part in frame.group_by("asset", maintain_order=True):
        close = part["close"].to_numpy().astype(np.float64)
        opn = part["open"].to_numpy().astype(np.float64)
        prev = np.concatenate([[opn[0]], close[:-1]])
        out.append(AssetBars(
            asset=str(asset), ts=part["ts"].dt.replace_time_zone(None).to_numpy().astype("datetime64[us]"),
            x=normalizer.apply(part.select(names).to_numpy()), r=np.log(close / prev), open=opn,
            high=part["high"].to_numpy().astype(np.float64), low=part["low"].to_numpy().astype(np.float64),
            close=close, volume=part["volume"].to_numpy().astype(np.float64)))
    return out, normalizer


def windows(x: np.ndarray, width: int) -> np.ndarray:
    """`x [N, F]` -> `[N, width x F]`: row t holds rows t-width+1 .. t (oldest first),
    zeros before row 0."""
    n, f = x.shape
    padded = np.concatenate([np.zeros((width - 1, f), x.dtype), x])
    idx = np.arange(n)[:, None] + np.arange(width)[None, :]
    return padded[idx].reshape(n, width * f)


def ret_scale(assets: list[AssetBars], start: dt.datetime, end: dt.datetime) -> float:
    """The std of the log returns of every bar in [start, end): ρ = r / ret_scale."""
    r = np.concatenate([a.r[a.mask(start, end)] for a in assets])
    return float(max(r.std(), 1e-8))
