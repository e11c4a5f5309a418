"""Ingest throughput: rows/s of the whole `chaos ingest` (hash, parse, validate, sort check,
interval and gaps, split, write Parquet, manifest) on a CSV of several million minute bars,
against, in the same run:

- a bare `polars.read_csv` of the same file (the parsing limit), and
- the same checks written with pandas (read, parse timestamps, validate, sort, write Parquet).

Targets: ingest >= 0.5x the bare polars rate, and >= 5x the pandas rate. Each timing is the
best of `--repeats` runs, interleaved, to damp the noise of a shared machine.

    python benchmarks/ingest.py [--rows 4000000] [--assets 4] [--repeats 3] [--keep]

Prints one JSON object on stdout.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder is sys.path[0], and benchmarks/tokenize.py would shadow the
# standard library's `tokenize`: put the repository root there instead.
sys.path[0] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import cast  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from strates.core.progress import Update, ignore_update  # noqa: E402


def make_csv(path: str, rows: int, assets: int, seed: int = 0) -> None:
    """Minute bars for `assets` assets, ISO timestamps with Z, ~100-byte rows."""
    rng = np.random.default_rng(seed)
    per = rows // assets
    frames = []
    start = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
    for a in range(assets):
        r = rng.standard_t(4, per) * 0.0008
        close = 100.0 * (a + 1) * np.exp(np.cumsum(r))
        open_ = np.concatenate([[close[0]], close[:-1]])
        spread = np.abs(rng.normal(0, 0.0006, per)) * close
        high = np.maximum(open_, close) + spread
        low = np.minimum(open_, close) - spread * rng.uniform(0, 1, per)
        frames.append(
            pl.DataFrame(
                {
                    "asset": f"ASSET{a:02d}USDT",
                    "ts": pl.datetime_range(start, start + dt.timedelta(minutes=per - 1), "1m", eager=True,
                                            time_zone="UTC"),
                    "open": open_.round(6), "high": high.round(6), "low": low.round(6), "close": close.round(6),
                    "volume": rng.lognormal(3, 1, per).round(8),
                }
            )
        )
    pl.concat(frames).with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(path)


def polars_read(path: str) -> int:
    return pl.read_csv(path).height


class PhaseTimer:
    """A Reporter that records how long each phase of the ingest took."""

    def __init__(self):
        self.phases: dict[str, float] = {}

    def info(self, message: str) -> None:
        pass

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Update]:
        start = time.perf_counter()
        yield ignore_update
        self.phases[description] = time.perf_counter() - start


PHASES: list[dict[str, float]] = []


def chaos_ingest(path: str, workdir: str) -> int:
    from strates.core.workspace import Workspace
    from strates.data.config import Config
    from strates.data.ingest import run

    ws_dir = os.path.join(workdir, "ws")
    shutil.rmtree(ws_dir, ignore_errors=True)
    timer = PhaseTimer()
    result = run(Config(sources=(path,)), Workspace(ws_dir), force=True, reporter=timer)
    PHASES.append(timer.phases)
    return result.manifest.summary["rows"]


def pandas_ingest(path: str, workdir: str) -> int:
    """The same rules with pandas: parse, validate, sort if needed, write Parquet."""
    import pandas as pd

    df = pd.read_csv(path)
    ts = pd.to_datetime(df["ts"], utc=True, format="ISO8601", errors="coerce")
    if ts.isna().any():
        raise ValueError("unparseable timestamp")
    df["ts"] = ts
    prices = df[["open", "high", "low", "close"]]
    values = df[["open", "high", "low", "close", "volume"]].to_numpy()
    if not np.isfinite(values).all():
        raise ValueError("non-finite")
    if (prices <= 0).to_numpy().any():
        raise ValueError("non-positive price")
    high, low, volume = (cast("pd.Series", df[name]) for name in ("high", "low", "volume"))  # one label: a Series
    if (high < df[["open", "close"]].max(axis=1)).any():
        raise ValueError("high below open/close")
    if (low > df[["open", "close"]].min(axis=1)).any():
        raise ValueError("low above open/close")
    if (volume < 0).any():
        raise ValueError("negative volume")
    if not df.set_index(["asset", "ts"]).index.is_monotonic_increasing:
        df = df.sort_values(["asset", "ts"], kind="stable")
    if df.duplicated(["asset", "ts"]).any():
        raise ValueError("duplicate timestamp")
    df.to_parquet(os.path.join(workdir, "pandas.parquet"), compression="zstd")
    return len(df)


def best(fn, repeats: int) -> tuple[float, int]:
    times, n = [], 0
    for _ in range(repeats):
        t = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t)
    return min(times), n


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--assets", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pandas-repeats", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated CSV")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="chaos-bench-")
    path = os.path.join(workdir, "bars.csv")
    try:
        t = time.perf_counter()
        make_csv(path, args.rows, args.assets)
        gen_s = time.perf_counter() - t
        size = os.path.getsize(path)
        polars_read(path)  # warm the page cache and polars' thread pool
        timings: dict[str, list[float]] = {"polars_read_csv": [], "chaos_ingest": []}
        rows = 0
        for _ in range(args.repeats):  # interleaved, so drift on a shared machine hits both
            for name, fn in (("polars_read_csv", lambda: polars_read(path)),
                             ("chaos_ingest", lambda: chaos_ingest(path, workdir))):
                s, rows = best(fn, 1)
                timings[name].append(s)
        pandas_s, pandas_rows = best(lambda: pandas_ingest(path, workdir), args.pandas_repeats)
        assert pandas_rows == rows, (pandas_rows, rows)
        polars_s, chaos_s = min(timings["polars_read_csv"]), min(timings["chaos_ingest"])
        result = {
            "benchmark": "ingest",
            "rows": rows,
            "assets": args.assets,
            "csv_bytes": size,
            "bytes_per_row": round(size / rows, 1),
            "generate_csv_s": round(gen_s, 3),
            "polars_read_csv_s": round(polars_s, 4),
            "chaos_ingest_s": round(chaos_s, 4),
            "pandas_ingest_s": round(pandas_s, 4),
            "polars_read_csv_rows_per_s": round(rows / polars_s),
            "chaos_ingest_rows_per_s": round(rows / chaos_s),
            "pandas_ingest_rows_per_s": round(rows / pandas_s),
            "ratio_vs_polars_read_csv": round(polars_s / chaos_s, 3),
            "ratio_vs_pandas": round(pandas_s / chaos_s, 2),
            "target_ratio_vs_polars_read_csv": 0.5,
            "target_ratio_vs_pandas": 5.0,
            "all_timings_s": {k: [round(x, 4) for x in v] for k, v in timings.items()},
            "chaos_ingest_phases_s": {
                k: round(v, 4) for k, v in PHASES[timings["chaos_ingest"].index(chaos_s)].items()
            },
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "polars": pl.__version__},
        }
        result["meets_targets"] = (
            result["ratio_vs_polars_read_csv"] >= 0.5 and result["ratio_vs_pandas"] >= 5.0
        )
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    finally:
        if args.keep:
            print(f"kept {path}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
