"""ALFRED vintage files: every value with the date it was published, so no bar sees a revision early.

A plain FRED download holds the latest (revised) value of every observation; joining it at
the first release date shows a bar numbers that were only published later. ALFRED
(alfred.stlouisfed.org) keeps every vintage. Two layouts are read:

- long (FRED/ALFRED API, `output_type=1`): `observation_date` or `date`, `realtime_start`,
  optionally `realtime_end`, and `value` (series named after the file) or one column per series id.
  One row of output per row with a value.
- wide (ALFRED "all vintages" download): `observation_date` or `DATE`, then one column per vintage
  named `<SERIES>_<YYYYMMDD>`. One row of output per observation and vintage whose value differs
  from the vintage before.

Each vintage becomes its own row `(series, observed, available, value)` with
`available = vintage date + 1 day` (`SAFETY_LAG`: 00:00 UTC after the release day, which is
19:00-20:00 US Eastern time; US statistical releases come out between 08:30 and 16:30 ET).
A lag given with the file (`PATH@LAG`) replaces the safety lag. The as-of join
(`strates.data.macro.asof_join`) then shows a bar at `ts` the latest observation date
released at or before `ts`, with the value of its newest vintage known at `ts`.
`realtime_end` is not needed (the next vintage replaces a value) and is not read.
"""

from __future__ import annotations

import re
from datetime import timedelta

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.columns import normalize
from strates.data.macro_parse import SeriesInfo, check_unique, dates, numbers, observations
from strates.data.readers import stem
from strates.data.release import fmt_duration
from strates.data.schema import MACRO_SCHEMA

SAFETY_LAG = timedelta(days=1)
MISSING = (".", "", "#N/A", "NA", "ND")
VINTAGE_COLUMN = re.compile(r"^(?P<series>.+?)_(?P<date>(?:18|19|20|21)\d{6})$")


def is_long(norm: dict[str, str]) -> bool:
    return "realtimestart" in norm


def is_wide(columns: list[str]) -> bool:
    return len(columns) >= 2 and all(VINTAGE_COLUMN.match(c.strip()) for c in columns[1:])


def read_long(
    raw: pl.DataFrame, norm: dict[str, str], path: str, lag: timedelta | None
) -> tuple[pl.DataFrame, list[str], dict[str, SeriesInfo]]:
    """Long layout -> (MACRO_SCHEMA rows, notes, per-series info)."""
    date_col = next((norm[k] for k in ("observationdate", "date") if k in norm), None)
    if date_col is None:
        raise InvalidInput(
            f"a vintage file (realtime_start) without a date column; columns: {', '.join(raw.columns[:8])}",
            rule="missing-column", file=path,
            fix="keep the observation date column as downloaded (observation_date or date)",
        )
    skip = {date_col, norm["realtimestart"], norm.get("realtimeend")}
    value_cols = [c for c in raw.columns if c not in skip and normalize(c) not in ("seriesid", "")]
    if not value_cols:
        raise InvalidInput("a vintage file without a value column", rule="missing-column", file=path,
                           fix="keep the value column (value, or the series id) as downloaded")
    observed = dates(raw, date_col, path)
    published = dates(raw, norm["realtimestart"], path)
    safety = SAFETY_LAG if lag is None else lag
    notes = ["detected an ALFRED vintage file (long layout, realtime_start)"]
    parts, info = [], {}
    for column in value_cols:
        series = stem(path) if normalize(column) == "value" else column.strip()
        part = observations(series, observed, numbers(raw, column, path, missing=MISSING))
        part = part.with_columns((published + pl.lit(safety)).alias("available")).drop_nulls("value")
        if part.height == 0:
            continue
        parts.append(part)
        info[series] = _info(series, part, safety, notes, defaulted=lag is None)
    frame = pl.concat(parts).select(MACRO_SCHEMA.keys()) if parts else pl.DataFrame(schema=MACRO_SCHEMA)
    check_unique(frame, path, ("series", "observed", "available"))
    return frame, notes, info


def read_wide(
    raw: pl.DataFrame, path: str, lag: timedelta | None
) -> tuple[pl.DataFrame, list[str], dict[str, SeriesInfo]]:
    """Wide layout (`<SERIES>_<YYYYMMDD>` columns) -> (MACRO_SCHEMA rows, notes, per-series info)."""
    date_col = raw.columns[0]
    observed = dates(raw, date_col, path)
    safety = SAFETY_LAG if lag is None else lag
    notes = ["detected an ALFRED vintage file (wide layout, one column per vintage)"]
    by_series: dict[str, list[tuple[str, str]]] = {}
    for column in raw.columns[1:]:
        m = VINTAGE_COLUMN.match(column.strip())
        assert m is not None
        by_series.setdefault(m["series"], []).append((m["date"], column))
    parts, info = [], {}
    for series, columns in by_series.items():
        vintages = []
        for day, column in columns:
            published = _vintage_date(day, column, path)
            part = observations(series, observed, numbers(raw, column, path, missing=MISSING))
            vintages.append(part.drop_nulls("value").with_columns(pl.lit(published).alias("available")))
        stacked = pl.concat(vintages).sort("observed", "available")
        check_unique(stacked, path, ("series", "observed", "available"))
        # keep a vintage's value only where it differs from the one before (first releases and revisions)
        changed = stacked.filter(
            (pl.col("value") != pl.col("value").shift(1).over("observed")).fill_null(True)
        ).with_columns(pl.col("available") + pl.lit(safety))
        if changed.height == 0:
            continue
        parts.append(changed.select(MACRO_SCHEMA.keys()))
        info[series] = _info(series, changed, safety, notes, defaulted=lag is None, vintages=len(columns))
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=MACRO_SCHEMA)
    return frame, notes, info


def _vintage_date(day: str, column: str, path: str):
    value = pl.Series([day]).str.to_datetime("%Y%m%d", time_unit="us", time_zone="UTC", strict=False)[0]
    if value is None:
        raise InvalidInput(f"column '{column}' does not end in a vintage date (YYYYMMDD)",
                           rule="unparseable-timestamp", file=path, column=column,
                           fix="keep the ALFRED column names as downloaded (<SERIES>_<YYYYMMDD>)")
    return value


def _info(series: str, part: pl.DataFrame, safety: timedelta, notes: list[str], *, defaulted: bool,
          vintages: int | None = None) -> SeriesInfo:
    n_obs = part["observed"].n_unique()
    n_vint = vintages if vintages is not None else part["available"].n_unique()
    revised = part.height - n_obs
    how = f"{fmt_duration(safety)} after its vintage date" + (" (safety lag)" if defaulted else "")
    plural = "s" if revised != 1 else ""
    notes.append(f"{series}: {n_obs} observations over {n_vint} vintages ({revised} revision{plural}), "
                 f"each value available {how}")
    return SeriesInfo(vintage=True, lag=f"{fmt_duration(safety)} after each vintage date (realtime_start)")
