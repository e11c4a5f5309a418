"""Strate II data: per-asset code sequences with the macro series aligned to the same bars.

For a series dataset (`strates.data.series`) each system is an asset, and its FIRST
channel plays the role of the price: `log_returns` holds that channel's increments
x_t - x_{t-1} (not logs: a channel may be negative or cross zero), which the probes predict
and the CFM forecasts and scores as "returns", and `log_range` is 0 (series carry no
range; the CFM's range feature then reads 0). The other channels reach the models only
through the tokens.

The macro values come from the dataset's as-of join (`macro_<series>` columns: the value
public at each bar), so a window of bars always carries exactly the macro history its bars
could see: windows are cut once, over tokens and macro together, never separately.
Macro columns are standardised with training-period statistics; values not yet published
at a bar (null) become 0 after standardisation, and a per-series "seen" flag is not added
(every embedded series is public from the first bar).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable

import numpy as np

from strates.core import artifacts
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact


@dataclasses.dataclass(frozen=True)
class Sequence:
    """One asset's bars. ts [N] datetime64[us] (UTC), codes [N] int32, macro [N, M] float32
    (raw, NaN where unpublished), log_returns [N] float64 (a series: the first channel's
    increments; 0 at the first bar), features [N, F] float32, log_range [N] float64
    (log(high / low) of each bar: 0 when the bars carry no range, and for a series)."""

    asset: str
    index: int
    ts: np.ndarray
    codes: np.ndarray
    macro: np.ndarray
    log_returns: np.ndarray
    features: np.ndarray
    log_range: np.ndarray


@dataclasses.dataclass(frozen=True)
class MacroScaler:
    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, sequences: list[Sequence], names: tuple[str, ...], *, end: dt.datetime) -> MacroScaler:
        """Standardisation fitted on bars before `end` (the training period) only."""
        cut = np.datetime64(end.replace(tzinfo=None), "us")
        rows = [s.macro[s.ts < cut] for s in sequences]
        values = np.concatenate(rows) if rows else np.zeros((0, len(names)))
        mean = np.nanmean(values, axis=0) if len(values) else np.zeros(len(names))
        std = np.nanstd(values, axis=0) if len(values) else np.ones(len(names))
        mean = np.nan_to_num(mean)
        std = np.where(np.isfinite(std) & (std > 1e-8), std, 1.0)
        return cls(tuple(names), tuple(map(float, mean)), tuple(map(float, std)))

    def apply(self, macro: np.ndarray) -> np.ndarray:
        if not self.names:
            return np.zeros((*macro.shape[:-1], 0), np.float32)
        out = (macro - np.asarray(self.mean)) / np.asarray(self.std)
        return np.nan_to_num(out, nan=0.0).astype(np.float32)

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2).encode()

    @classmethod
    def from_json(cls, blob: bytes) -> MacroScaler:
        data = json.loads(blob)
        return cls(tuple(data["names"]), tuple(data["mean"]), tuple(data["std"]))


def load_sequences(ws: Workspace, tokens: artifacts.Manifest
                   ) -> tuple[list[Sequence], tuple[str, ...], data_artifact.Dataset]:
    """The tokens artifact joined with its dataset's close prices (a series dataset: its
    first channel) and macro columns. Returns (sequences in asset order, macro series
    names, the typed dataset)."""
    import polars as pl

    from strates.data.ingest import load_bars
    from strates.fsq.artifact import token_table

    dataset = data_artifact.read(artifacts.resolve(ws, tokens.parents["dataset"], stage="dataset"))
    table = token_table(ws, tokens)
    bars = load_bars(ws, dataset.manifest)
    macro_cols = tuple(c for c in bars.columns if c.startswith("macro_"))
    if dataset.is_series:
        prices = [pl.col(dataset.summary.channels[0]).alias("_level")]
    else:
        prices = [pl.col("close"), pl.col("high"), pl.col("low")]
    joined = table.join(bars.select("asset", "ts", *prices, *macro_cols), on=["asset", "ts"], how="left")
    feature_cols = [c for c in table.columns if c.startswith("f_")]
    out = []
    for i, ((asset,), part) in enumerate(sorted(joined.group_by("asset"), key=lambda kv: kv[0][0])):
        part = part.sort("ts")
        if dataset.is_series:
            level = part["_level"].to_numpy().astype(np.float64)
            log_range = np.zeros(part.height)
        else:
            level = np.log(part["close"].to_numpy())
            log_range = np.log(part["high"].to_numpy() / part["low"].to_numpy())
        log_returns = np.diff(level, prepend=level[0])
        macro = part.select(macro_cols).to_numpy().astype(np.float64) if macro_cols else np.zeros((part.height, 0))
        out.append(Sequence(
            asset=asset, index=i, ts=part["ts"].dt.replace_time_zone(None).to_numpy(),
            codes=part["code"].to_numpy().astype(np.int32), macro=macro,  # nulls read as NaN
            log_returns=log_returns, features=part.select(feature_cols).to_numpy().astype(np.float32),
            log_range=log_range,
        ))
    return out, tuple(c.removeprefix("macro_") for c in macro_cols), dataset


def window_sampler(
    sequences: list[Sequence], scaler: MacroScaler, *, window: int, batch_size: int, seed: int, end: dt.datetime,
    start: dt.datetime | None = None,
) -> Callable[[int], dict[str, np.ndarray]]:
    """batches(step) -> {"tokens" [B, T] int32, "assets" [B] int32, "macro" [B, T, M] float32}:
    windows inside [start, end) (the training period by default: from the first bar),
    drawn uniformly over positions, a pure function of (seed, step)."""
    cut = np.datetime64(end.replace(tzinfo=None), "us")
    first = None if start is None else np.datetime64(start.replace(tzinfo=None), "us")
    spans = []
    for s in sequences:
        lo = 0 if first is None else int(np.searchsorted(s.ts, first))
        spans.append((s, lo, int(np.searchsorted(s.ts, cut))))
    usable = [(s, lo, hi - lo) for s, lo, hi in spans if hi - lo >= window]
    if not usable:
        from strates.core.errors import InvalidInput

        raise InvalidInput(
            f"no asset has {window} bars in the period", rule="too-few-bars",
            fix="use a shorter window (--set data.window=...) or a dataset with a longer training period",
        )
    counts = np.array([n - window + 1 for _, _, n in usable], np.float64)
    weights = counts / counts.sum()
    macro = [scaler.apply(s.macro) for s, _, _ in usable]

    def batches(step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, step])
        picks = rng.choice(len(usable), size=batch_size, p=weights)
        starts = [usable[p][1] + int(rng.integers(0, int(counts[p]))) for p in picks]
        return {
            "tokens": np.stack([usable[p][0].codes[a : a + window] for p, a in zip(picks, starts, strict=True)]),
            "assets": np.array([usable[p][0].index for p in picks], np.int32),
            "macro": np.stack([macro[p][a : a + window] for p, a in zip(picks, starts, strict=True)]),
        }

    return batches
