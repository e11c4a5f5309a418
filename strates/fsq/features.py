"""Per-bar causal features from OHLCV, and their normalisation fitted on the training period.

Features (each uses bar t and earlier bars only):

| name | definition |
| ---- | ---------- |
| `ret` | log(close_t / close_{t-1}); for an asset's first bar log(close / open) |
| `log_range` | log(high / low) |
| `body` | (close - open) / (high - low), in [-1, 1]; 0 when high = low |
| `upper_wick` | (high - max(open, close)) / (high - low), in [0, 1]; 0 when high = low |
| `lower_wick` | (min(open, close) - low) / (high - low), in [0, 1]; 0 when high = low |
| `rel_volume` | log((volume + 1) / (mean of the previous `volume_window` volumes + 1)); 0 for the first bar |

Normalisation (`Normalizer`): per feature, values are clipped to the [q, 1 - q] quantiles of
the training period (q = `clip_quantile`, default 0.001: heavy tails stay heavy but cannot
dominate), then standardised with the clipped training mean and standard deviation. The
statistics are stored in the tokenizer artifact, so another dataset is tokenized with the
same scaling.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np

FEATURES: tuple[str, ...] = ("ret", "log_range", "body", "upper_wick", "lower_wick", "rel_volume")


def raw_features(bars, *, volume_window: int = 24):
    """`bars` sorted by (asset, ts) -> polars DataFrame `asset, ts, *FEATURES` (Float64)."""
    import polars as pl

    o, h, lo, c, v = (pl.col(n) for n in ("open", "high", "low", "close", "volume"))
    rng = h - lo
    safe = pl.when(rng > 0).then(rng).otherwise(None)
    prev_close = c.shift(1).over("asset")
    trailing = v.shift(1).rolling_mean(volume_window, min_samples=1).over("asset")
    return bars.select(
        "asset",
        "ts",
        (c / pl.coalesce(prev_close, o)).log().alias("ret"),
        (h / lo).log().alias("log_range"),
        ((c - o) / safe).fill_null(0.0).alias("body"),
        ((h - pl.max_horizontal(o, c)) / safe).fill_null(0.0).alias("upper_wick"),
        ((pl.min_horizontal(o, c) - lo) / safe).fill_null(0.0).alias("lower_wick"),
        ((v + 1.0) / (trailing + 1.0)).log().fill_null(0.0).alias("rel_volume"),
    )


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """Clip to training quantiles, then standardise. Arrays are `[F]` in FEATURES order."""

    names: tuple[str, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fitted_start: dt.datetime
    fitted_end: dt.datetime  # exclusive

    @classmethod
    def fit(cls, frame, *, start: dt.datetime, end: dt.datetime, clip_quantile: float = 0.001) -> Normalizer:
        """Fit on rows of `frame` (from `raw_features`) with start <= ts < end only."""
        import polars as pl

        train = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).select(FEATURES).to_numpy()
        if len(train) < 2:
            from strates.core.errors import InvalidInput

            raise InvalidInput(
                f"the training period {start.isoformat()} to {end.isoformat()} holds {len(train)} bar(s)",
                rule="too-few-bars", fix="re-ingest with a split that leaves more training data",
            )
        lo = np.quantile(train, clip_quantile, axis=0)
        hi = np.quantile(train, 1.0 - clip_quantile, axis=0)
        clipped = np.clip(train, lo, hi)
        mean = clipped.mean(axis=0)
        std = np.maximum(clipped.std(axis=0), 1e-8)
        as_tuple = lambda a: tuple(float(x) for x in a)  # noqa: E731
        return cls(FEATURES, as_tuple(lo), as_tuple(hi), as_tuple(mean), as_tuple(std), start, end)

    def apply(self, values: np.ndarray) -> np.ndarray:
        """`[..., F]` raw features -> float32 normalised features."""
        out = (np.clip(values, self.lo, self.hi) - np.asarray(self.mean)) / np.asarray(self.std)
        return out.astype(np.float32)

    def to_json(self) -> bytes:
        data = dataclasses.asdict(self)
        data["fitted_start"] = self.fitted_start.isoformat()
        data["fitted_end"] = self.fitted_end.isoformat()
        return json.dumps(data, indent=2).encode()

    @classmethod
    def from_json(cls, blob: bytes) -> Normalizer:
        data = json.loads(blob)
        for key in ("names", "lo", "hi", "mean", "std"):
            data[key] = tuple(data[key])
        for key in ("fitted_start", "fitted_end"):
            data[key] = dt.datetime.fromisoformat(data[key])
        return cls(**data)


def series_by_asset(frame, normalizer: Normalizer) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{asset: (ts [N] datetime64[us], normalised features [N, F] float32)} in asset order."""
    out = {}
    for (asset,), part in frame.group_by("asset", maintain_order=True):
        ts = part["ts"].dt.replace_time_zone(None).to_numpy()
        out[asset] = (ts, normalizer.apply(part.select(FEATURES).to_numpy()))
    return dict(sorted(out.items()))
