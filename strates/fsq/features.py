"""Per-bar causal features from OHLCV (or from a series dataset's channels), and their
normalisation fitted on the training period.

Features (each uses bar t and earlier bars only; w = `vol_window`, v = `volume_window`):

| name | definition |
| ---- | ---------- |
| `ret_z` | r_t / max(s_{t-1}, EPS): the log return standardised by the trailing volatility of the previous bars |
| `range_z` | log(max(R_t, KAPPA M') / M'), M' = max(M_{t-1}, EPS): the log range relative to its trailing mean |
| `body` | (close - open) / (high - low), in [-1, 1]; 0 when high = low |
| `upper_wick` | (high - max(open, close)) / (high - low), in [0, 1]; 0 when high = low |
| `lower_wick` | (min(open, close) - low) / (high - low), in [0, 1]; 0 when high = low |
| `rel_volume` | log((volume + 1) / (mean of the previous v volumes + 1)); 0 for the first bar |

with, per asset:

- r_t = log(close_t / close_{t-1}); for the asset's first bar log(close / open);
- s_{t-1} = sqrt(mean of r_j^2 over j = t-w .. t-1), the root mean square of the previous w
  returns (bar t's own return is not in it, so `ret_z` is the standardised innovation);
- R_t = log(high_t / low_t) and M_{t-1} = mean of R_j over j = t-w .. t-1.

Why: log(close/close) and log(high/low) carry the absolute volatility level, so a tokenizer
and a JEPA fitted on a turbulent training period learn that period's scale and carry it into
calmer years (issue 13). Dividing by a causal trailing level makes both scale-free:
multiplying every log return (and log range) by a constant c leaves them unchanged, and
after a shift of the volatility level they return to their usual distribution within w bars.
`range_z` is measured against the trailing mean *range* rather than the trailing return
volatility: it compares like with like, so it does not depend on how an instrument's bar
range relates to its close-to-close volatility (overnight gaps, intrabar sampling), and the
mean range is a less noisy level than the RMS of returns (Parkinson, J. Business 1980).
KAPPA = e^-4 bounds `range_z` below at -4 (a bar with high = low); EPS = 1e-8 (log-return
units) only guards against dividing by zero after a run of flat bars.

Warm-up: the trailing windows expand from the asset's first bar (j = 0 .. t-1 while t < w),
and a bar is standardised once WARMUP = 4 earlier bars exist; before that `ret_z` and
`range_z` are 0 (the mean). A level from 4 returns is noisy (ret_z is then roughly
Student-t with 4 degrees of freedom) but finite; the quantile clipping below bounds it.

Series datasets (`strates.data.series`: numeric channels, no OHLC) get two features per
channel x, in channel order (`series_feature_names`), each using rows t and earlier only
(w = `vol_window`):

| name | definition |
| ---- | ---------- |
| `d_<x>` | Δx_t / max(s_{t-1}, FLOOR e_{t-1}): the increment over the RMS s of the previous w increments |
| `z_<x>` | (x_t - m_{t-1}) / max(v_{t-1}, FLOOR c_{t-1}): the level against the previous w values |

with Δx_t = x_t - x_{t-1} (none at a system's first row), m_{t-1} and v_{t-1} the mean and
standard deviation of x over rows t-w .. t-1 (like `ret_z`, bar t is not in its own level),
e_{t-1} and c_{t-1} the RMS of all previous increments and the standard deviation of all
previous values (expanding windows: the floor only matters once a channel has gone flat,
e.g. a damped system at its fixed point; then the feature is ~0 rather than the noise of
the last digits). Both are
invariant under x -> a x + b (a > 0): scale- and offset-free. `d` is standardised once
WARMUP earlier increments exist and `z` once WARMUP earlier values exist (0 before), and
either is 0 while its denominator is 0 (a channel flat since its start).

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

FEATURES: tuple[str, ...] = ("ret_z", "range_z", "body", "upper_wick", "lower_wick", "rel_volume")
WARMUP = 4  # earlier bars needed before `ret_z` and `range_z` are standardised (0 before)
KAPPA = float(np.exp(-4.0))  # `range_z` >= log(KAPPA) = -4
EPS = 1e-8  # floor of the trailing levels, log-return units
FLOOR = 1e-3  # series: the trailing level's floor, as a share of the expanding level


def series_feature_names(channels) -> tuple[str, ...]:
    """`d_<x>, z_<x>` per channel x, in channel order."""
    return tuple(name for c in channels for name in (f"d_{c}", f"z_{c}"))


def series_features(frame, channels, *, window: int = 64):
    """A series dataset's rows `asset, ts, *channels` sorted by (asset, ts) -> polars
    DataFrame `asset, ts, *series_feature_names(channels)` (Float64; see the module
    docstring). `window`: w, the rows of the trailing levels."""
    import polars as pl

    t = pl.col("_t")
    # centred on each system's first value (the features do not depend on an offset): the
    # trailing variances below then lose no digits to a large level
    work = frame.select(
        "asset", "ts", pl.int_range(pl.len()).over("asset").alias("_t"),
        *((pl.col(c) - pl.col(c).first().over("asset")).alias(f"_x{i}") for i, c in enumerate(channels)))
    work = work.with_columns(pl.col(f"_x{i}").diff().over("asset").alias(f"_d{i}") for i in range(len(channels)))
    out = []
    for i, c in enumerate(channels):
        x, d = pl.col(f"_x{i}"), pl.col(f"_d{i}")
        n_inc = (t - 1).cast(pl.Float64)  # increments before row t
        sq = (d * d).fill_null(0.0)
        trailing = (d * d).shift(1).rolling_mean(window, min_samples=1).over("asset").sqrt()
        expanding = (sq.cum_sum().shift(1).over("asset") / n_inc).sqrt()
        d_den = pl.max_horizontal(trailing, FLOOR * expanding)
        n_val = t.cast(pl.Float64)  # values before row t
        mean = x.shift(1).rolling_mean(window, min_samples=1).over("asset")
        std = x.shift(1).rolling_std(window, min_samples=1, ddof=0).over("asset")
        e1 = x.cum_sum().shift(1).over("asset") / n_val
        e2 = (x * x).cum_sum().shift(1).over("asset") / n_val
        z_den = pl.max_horizontal(std, FLOOR * pl.max_horizontal(e2 - e1 * e1, pl.lit(0.0)).sqrt())
        out += [
            pl.when((t > WARMUP) & (d_den > 0)).then(d / d_den).otherwise(0.0).alias(f"d_{c}"),
            pl.when((t >= WARMUP) & (z_den > 0)).then((x - mean) / z_den).otherwise(0.0).alias(f"z_{c}"),
        ]
    return work.select("asset", "ts", *out)


def raw_features(bars, *, vol_window: int = 64, volume_window: int = 24):
    """`bars` sorted by (asset, ts) -> polars DataFrame `asset, ts, *FEATURES` (Float64).

    `vol_window`: bars in the trailing levels of `ret_z` and `range_z` (w in the module
    docstring); `volume_window`: bars in the trailing volume mean of `rel_volume`."""
    import polars as pl

    o, h, lo, c, v = (pl.col(n) for n in ("open", "high", "low", "close", "volume"))
    rng = h - lo
    safe = pl.when(rng > 0).then(rng).otherwise(None)
    trailing = v.shift(1).rolling_mean(volume_window, min_samples=1).over("asset")
    # r_t and R_t first: their own per-asset shift cannot nest inside the trailing means' window
    r, big_r = pl.col("_r"), pl.col("_R")
    with_returns = bars.with_columns(
        (c / pl.coalesce(c.shift(1).over("asset"), o)).log().alias("_r"), (h / lo).log().alias("_R"))

    def previous_mean(x: pl.Expr) -> pl.Expr:
        # mean over bars t-w .. t-1 (fewer at the start); nulls (bar 0's shift) are skipped
        return x.shift(1).rolling_mean(vol_window, min_samples=1).over("asset")

    warm = pl.int_range(pl.len()).over("asset") >= WARMUP
    level = pl.max_horizontal(previous_mean(r * r).sqrt(), pl.lit(EPS))
    mean_range = pl.max_horizontal(previous_mean(big_r), pl.lit(EPS))
    return with_returns.select(
        "asset",
        "ts",
        pl.when(warm).then(r / level).otherwise(0.0).alias("ret_z"),
        pl.when(warm).then((pl.max_horizontal(big_r, KAPPA * mean_range) / mean_range).log())
        .otherwise(0.0).alias("range_z"),
        ((c - o) / safe).fill_null(0.0).alias("body"),
        ((h - pl.max_horizontal(o, c)) / safe).fill_null(0.0).alias("upper_wick"),
        ((pl.min_horizontal(o, c) - lo) / safe).fill_null(0.0).alias("lower_wick"),
        ((v + 1.0) / (trailing + 1.0)).log().fill_null(0.0).alias("rel_volume"),
    )


@dataclasses.dataclass(frozen=True)
class Normalizer:
    """Clip to training quantiles, then standardise. Arrays are `[F]` in `names` order
    (FEATURES for bars, `series_feature_names` for a series dataset)."""

    names: tuple[str, ...]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    fitted_start: dt.datetime
    fitted_end: dt.datetime  # exclusive

    @classmethod
    def fit(cls, frame, *, start: dt.datetime, end: dt.datetime, clip_quantile: float = 0.001,
            names: tuple[str, ...] = FEATURES) -> Normalizer:
        """Fit on rows of `frame` (from `raw_features`, or `series_features` with its
        `names`) with start <= ts < end only."""
        import polars as pl

        names = tuple(names)
        train = frame.filter((pl.col("ts") >= start) & (pl.col("ts") < end)).select(names).to_numpy()
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
        return cls(names, as_tuple(lo), as_tuple(hi), as_tuple(mean), as_tuple(std), start, end)

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


def series_by_asset(frame, normalizer: Normalizer, names: tuple[str, ...] = FEATURES
                    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{asset: (ts [N] datetime64[us], normalised features [N, F] float32)} in asset order,
    `names` the features `frame` holds. Refuses a normaliser fitted on other features (a
    tokenizer trained before a feature changed, or on a dataset with other channels)."""
    names = tuple(names)
    if tuple(normalizer.names) != names:
        from strates.core.errors import InvalidInput

        raise InvalidInput(
            f"the tokenizer was fitted on features {list(normalizer.names)}, but this dataset gives "
            f"{list(names)}", rule="stale-tokenizer",
            fix="train a new tokenizer on this dataset (chaos tokenize without --tokenizer)",
        )
    out = {}
    for (asset,), part in frame.group_by("asset", maintain_order=True):
        ts = part["ts"].dt.replace_time_zone(None).to_numpy()
        out[asset] = (ts, normalizer.apply(part.select(names).to_numpy()))
    return dict(sorted(out.items()))
