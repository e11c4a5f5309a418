"""Macro series: reading FRED, ALFRED vintage and CFTC COT files, and the as-of join.

A macro value is useful to a bar only once it was public. Each observation therefore gets
`available`, when it was published, and a bar at `ts` sees the latest value with
`available <= ts` (never one published later). Where the file does not say when
(plain FRED, COT), `available` comes from a publication lag that errs late
(`strates.data.release`: per FRED series id, else per frequency, and the table of both).

Formats (detected from the columns):
- FRED CSV: `DATE,VALUE` (older downloads; the series is named after the file stem) or
  `observation_date,<SERIES_ID>[,<SERIES_ID>...]` (also `Date,<name>` files saved by other
  tools). Dates are read like bar timestamps (`strates.data.timeparse`: ISO, US `1/3/2014`,
  `20140103`, ...). `.` marks a missing value: such rows are dropped and counted in the
  notes. These files hold the latest revised values: **revisions may leak** into bars
  dated between an observation's first release and its revision; the notes and the
  dataset summary (`vintage: false`) say so.
- ALFRED vintage files (`strates.data.vintage`): long (`realtime_start` column) or wide
  (`<SERIES>_<YYYYMMDD>` columns). Each vintage is a row available the day after its
  vintage date: no revision is seen early (`vintage: true`).
- COT CSV (`strates.data.cot`): the legacy futures-only report, one market.

With vintages a series has several rows per observation; `asof_join` shows each bar the
latest observation date known at its time with that observation's newest known value.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta

import polars as pl

from strates.core.errors import InvalidInput
from strates.data import cot, vintage
from strates.data.columns import normalize
from strates.data.macro_parse import REVISIONS_MAY_LEAK, SeriesInfo, check_unique, dates, numbers, observations
from strates.data.readers import stem
from strates.data.release import COT_LAG, LAG_TABLE, Lag, default_lag, frequency, series_lag
from strates.data.schema import MACRO_PREFIX, MACRO_SCHEMA, TS_DTYPE

__all__ = [
    "COT_LAG", "LAG_TABLE", "Lag", "MacroFile", "SeriesInfo", "asof_join", "default_lag", "frequency",
    "read_macro", "read_macro_file", "seen_values",
]

_FRED_DATES = ("date", "observationdate", "datetime", "timestamp", "time")


@dataclasses.dataclass(frozen=True)
class MacroFile:
    """One macro file read: `frame` MACRO_SCHEMA rows sorted by (series, observed,
    available), the notes, and how each series was read."""

    frame: pl.DataFrame
    notes: list[str]
    series: dict[str, SeriesInfo]


def read_macro(
    path: str, *, lag: timedelta | None = None, cot_market: str | None = None
) -> tuple[pl.DataFrame, list[str]]:
    """`read_macro_file` as (frame, notes)."""
    read = read_macro_file(path, lag=lag, cot_market=cot_market)
    return read.frame, read.notes


def read_macro_file(path: str, *, lag: timedelta | None = None, cot_market: str | None = None) -> MacroFile:
    """Read a FRED, ALFRED vintage or COT CSV into MACRO_SCHEMA rows (series, observed,
    available, value). `lag` replaces the default publication lag (for a vintage file:
    the safety lag after each vintage date)."""
    if not os.path.isfile(path):
        raise InvalidInput(f"no such file: {path}", rule="missing-file", file=path,
                           fix="give the path of a FRED, ALFRED or COT CSV file")
    if os.path.getsize(path) == 0:
        raise InvalidInput("the file is empty (0 bytes)", rule="empty-file", file=path,
                           fix="download the series again")
    try:
        raw = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    except pl.exceptions.PolarsError as e:
        raise InvalidInput(f"cannot read the file as CSV: {str(e).splitlines()[0]}", rule="malformed-csv",
                           file=path, fix="give a FRED, ALFRED or COT CSV file as downloaded") from None
    norm = {normalize(c): c for c in raw.columns}
    if cot.COT["name"] in norm:
        frame, notes, info = cot.read_cot(raw, norm, path, cot_market, lag)
    elif vintage.is_long(norm):
        frame, notes, info = vintage.read_long(raw, norm, path, lag)
    elif raw.columns and normalize(raw.columns[0]) in _FRED_DATES:
        if vintage.is_wide(raw.columns):
            frame, notes, info = vintage.read_wide(raw, path, lag)
        else:
            frame, notes, info = _read_fred(raw, path, lag)
    else:
        raise InvalidInput(
            f"not a FRED, ALFRED or COT file; columns: {', '.join(raw.columns[:8])}",
            rule="unknown-columns",
            fix="give a FRED CSV (observation_date,<SERIES>), an ALFRED vintage file "
            "(realtime_start column, or <SERIES>_<YYYYMMDD> columns) or a CFTC legacy COT CSV "
            "('Market and Exchange Names', 'As of Date in Form YYYY-MM-DD', ...)",
            file=path,
        )
    if frame.height == 0:
        raise InvalidInput("no observations with a value", rule="empty-file", file=path,
                           fix="download a range of dates that holds values")
    frame = frame.select(MACRO_SCHEMA.keys()).cast(MACRO_SCHEMA).sort("series", "observed", "available")
    return MacroFile(frame, notes, info)


def _read_fred(raw: pl.DataFrame, path: str, lag: timedelta | None):
    date_col = raw.columns[0]
    notes = ["detected a FRED CSV (latest-vintage values)"]
    observed = dates(raw, date_col, path)
    parts, info = [], {}
    for column in raw.columns[1:]:
        series = stem(path) if normalize(column) == "value" else column.strip()
        part = observations(series, observed, numbers(raw, column, path, missing=(".", "")))
        n_missing = part["value"].null_count()
        part = part.drop_nulls("value")
        if n_missing:
            notes.append(f"{series}: dropped {n_missing} missing values ('.')")
        if part.height == 0:
            continue
        check_unique(part, path)
        if lag is not None:
            rule, how = Lag(after=lag), "given"
        elif (known := series_lag(series)) is not None:
            rule, how = known, f"default for FRED series {series.upper()}"
        else:
            freq, rule = frequency(part["observed"], file=path)
            how = f"default for {freq} observations"
        text = rule.describe()
        notes.append(f"{series}: available {text} ({how}); {REVISIONS_MAY_LEAK}: "
                     "pass an ALFRED vintage file for real-time values")
        parts.append(part.with_columns(rule.available(part["observed"])))
        info[series] = SeriesInfo(vintage=False, lag=text, note=REVISIONS_MAY_LEAK)
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=MACRO_SCHEMA)
    check_unique(frame, path)
    return frame, notes, info


def asof_join(bars: pl.DataFrame, macro: pl.DataFrame) -> pl.DataFrame:
    """Add one Float64 column `macro_<series>` per series: what was public at the bar's
    `ts`, i.e. the latest observation date with a row `available <= ts`, with the value of
    that observation's newest row `available <= ts` (null before the first). Same rows,
    same order.

    One row per observation (a plain FRED file): the value of the latest observation with
    `available <= ts`, as `join_asof(left_on="ts", right_on="available")` would give.
    Several rows per observation (vintages: each revision is a row available at its own
    date): a revision of an older observation published after a newer observation's first
    release changes nothing (the bar shows the newer observation), and a revision of the
    newest observation replaces its value from its own date on (`seen_values`).

    Done with a binary search (`search_sorted(side="right")`) of each bar's ts in the
    series' sorted `available` times: exact (a value published at ts is seen, one a
    microsecond later is not), and valid for any bar order, so bars sorted by
    (asset, ts) need neither a re-sort nor a per-asset join.
    """
    if bars.schema.get("ts") != TS_DTYPE:
        raise InvalidInput(
            f"bars.ts must be {TS_DTYPE}, not {bars.schema.get('ts')}",
            rule="bad-option",
            fix="read bars with strates.data.sources.read_all",
        )
    ts = bars["ts"]
    columns = []
    for series in sorted(macro["series"].unique().to_list()):
        obs = seen_values(macro.filter(pl.col("series") == series))
        available = obs["available"].cast(TS_DTYPE)
        seen = available.search_sorted(ts, side="right").cast(pl.Int64)
        index = pl.select(pl.when(seen > 0).then(seen - 1)).to_series()
        columns.append(obs["seen"].gather(index).alias(MACRO_PREFIX + series))
    return bars.with_columns(columns)


def seen_values(obs: pl.DataFrame) -> pl.DataFrame:
    """One series' rows sorted by (available, observed), with `seen`: what a bar sees from
    that row's `available` on (the view after every row up to this one). A row of the
    newest observation so far (its first release, or a revision of it) sets the value; a
    revision of an older observation leaves the view as it was."""
    obs = obs.sort("available", "observed")
    newest = pl.col("observed") == pl.col("observed").cum_max()
    return obs.with_columns(
        pl.when(newest).then(pl.col("value").cast(pl.Float64)).otherwise(None).forward_fill().alias("seen")
    )
