"""Macro series: FRED and CFTC COT files, their publication lags, and the as-of join.

A macro value is useful to a bar only once it was public. Each observation therefore gets
`available = observed + lag`, and a bar at `ts` sees the latest value with
`available <= ts` (never one published later). Lags err on the late side: a value seen a
little late costs little; one seen before its release is a leak that invalidates a backtest.

Default lags (`lag=None`), from the median spacing of the observation dates (FRED dates a
value at the start of the period it refers to, e.g. January's CPI at 2024-01-01):

| spacing (median) | frequency | default lag after the observation date |
| ---------------- | --------- | -------------------------------------- |
| <= 4 days        | daily     | 1 day |
| 5-10 days        | weekly    | 7 days |
| 11-45 days       | monthly   | 45 days |
| 46-120 days      | quarterly | 120 days |
| > 120 days       | annual    | 455 days (a year and a quarter) |

CFTC Commitments of Traders (legacy, futures only): the observation is the "as of" Tuesday
and the report is released on Friday at 15:30 US Eastern time, which is 20:30 UTC in
winter (19:30 in summer): 3 days 20 h 30 min after the observation. In weeks with a US
federal holiday the release moves to the next business day (Monday, sometimes later), so
a 3d20h30m lag would leak those weeks' values early. A leak is worse than a late value:
the default lag (`COT_LAG`) is 7 days (the next Tuesday 00:00 UTC), which covers holiday
weeks too; pass `@3d20h30m` (lag=timedelta(days=3, hours=20, minutes=30)) to trade that
safety for freshness.

Formats:
- FRED CSV: `DATE,VALUE` (older downloads; the series is named after the file stem) or
  `observation_date,<SERIES_ID>[,<SERIES_ID>...]`. `.` marks a missing value: such rows are
  dropped and counted in the notes.
- COT CSV: the legacy columns "Market and Exchange Names", "As of Date in Form YYYY-MM-DD"
  (or "... YYMMDD"), "CFTC Contract Market Code", "Open Interest (All)",
  "Noncommercial Positions-Long (All)", "...-Short (All)", "Commercial Positions-Long (All)",
  "...-Short (All)". One market is read (`cot_market`: its code or part of its name) into
  `cot_<code>_net_noncommercial`, `cot_<code>_net_commercial` and `cot_<code>_open_interest`.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.columns import normalize
from strates.data.readers import stem
from strates.data.schema import MACRO_PREFIX, MACRO_SCHEMA, TS_DTYPE

COT_LAG = timedelta(days=7)

LAG_TABLE: tuple[tuple[str, float, timedelta], ...] = (
    # frequency, largest median spacing in days, lag
    ("daily", 4, timedelta(days=1)),
    ("weekly", 10, timedelta(days=7)),
    ("monthly", 45, timedelta(days=45)),
    ("quarterly", 120, timedelta(days=120)),
    ("annual", float("inf"), timedelta(days=455)),
)

_COT = {
    "name": "marketandexchangenames",
    "date": ("asofdateinformyyyymmdd", "asofdateinformyymmdd", "reportdateasyyyymmdd"),
    "code": "cftccontractmarketcode",
    "oi": "openinterestall",
    "nc_long": "noncommercialpositionslongall",
    "nc_short": "noncommercialpositionsshortall",
    "c_long": "commercialpositionslongall",
    "c_short": "commercialpositionsshortall",
}
_FRED_DATES = ("date", "observationdate")


def frequency(observed: pl.Series, *, file: str | None = None) -> tuple[str, timedelta]:
    """(frequency name, default lag) from the median spacing of the observation dates."""
    days = observed.unique().sort().diff().drop_nulls().dt.total_seconds() / 86400.0
    if days.len() == 0:
        raise InvalidInput(
            "a single observation: its frequency, hence its publication lag, is unknown",
            rule="unknown-frequency",
            fix="give the publication lag explicitly (lag=..., --macro-lag)",
            file=file,
        )
    median = float(days.median())  # type: ignore[arg-type]
    for name, upper, lag in LAG_TABLE:
        if median <= upper:
            return name, lag
    raise AssertionError(median)


def default_lag(observed: pl.Series) -> timedelta:
    """The default publication lag for observations dated `observed` (see the table in
    the module docstring): daily 1 day, weekly 7, monthly 45, quarterly 120, annual 455."""
    return frequency(observed)[1]


def read_macro(
    path: str, *, lag: timedelta | None = None, cot_market: str | None = None
) -> tuple[pl.DataFrame, list[str]]:
    """Read a FRED or COT CSV into MACRO_SCHEMA rows (series, observed, available, value),
    sorted by (series, observed), and notes saying what was detected and assumed."""
    if not os.path.isfile(path):
        raise InvalidInput(f"no such file: {path}", rule="missing-file", file=path,
                           fix="give the path of a FRED or COT CSV file")
    if os.path.getsize(path) == 0:
        raise InvalidInput("the file is empty (0 bytes)", rule="empty-file", file=path,
                           fix="download the series again")
    try:
        raw = pl.read_csv(path, infer_schema=False, truncate_ragged_lines=True)
    except pl.exceptions.PolarsError as e:
        raise InvalidInput(f"cannot read the file as CSV: {str(e).splitlines()[0]}", rule="malformed-csv",
                           file=path, fix="give a FRED or COT CSV file as downloaded") from None
    norm = {normalize(c): c for c in raw.columns}
    if _COT["name"] in norm:
        frame, notes = _read_cot(raw, norm, path, cot_market, lag)
    elif raw.columns and normalize(raw.columns[0]) in _FRED_DATES:
        frame, notes = _read_fred(raw, path, lag)
    else:
        raise InvalidInput(
            f"not a FRED or COT file; columns: {', '.join(raw.columns[:8])}",
            rule="unknown-columns",
            fix="give a FRED CSV (observation_date,<SERIES>) or a CFTC legacy COT CSV "
            "('Market and Exchange Names', 'As of Date in Form YYYY-MM-DD', ...)",
            file=path,
        )
    if frame.height == 0:
        raise InvalidInput("no observations with a value", rule="empty-file", file=path,
                           fix="download a range of dates that holds values")
    return frame.select(MACRO_SCHEMA.keys()).sort("series", "observed"), notes


def _dates(raw: pl.DataFrame, column: str, fmt: str, path: str) -> pl.Series:
    text = raw[column].str.strip_chars()
    dates = text.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)
    bad = dates.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InvalidInput(
            f"cannot read date '{text[i]}' (expected {fmt})",
            rule="unparseable-timestamp",
            fix="keep the dates as downloaded (YYYY-MM-DD)",
            file=path,
            row=i + 2,
            column=column,
        )
    return dates


def _numbers(raw: pl.DataFrame, column: str, path: str, *, missing: tuple[str, ...]) -> pl.Series:
    text = raw[column].str.strip_chars()
    values = text.cast(pl.Float64, strict=False)
    is_missing = text.is_null() | text.is_in(list(missing))
    bad = values.is_null() & ~is_missing | (values.is_not_null() & ~values.is_finite())
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InvalidInput(
            f"cannot read '{text[i]}' as a number",
            rule="unparseable-number",
            fix="keep the values as downloaded ('.' marks a missing FRED value)",
            file=path,
            row=i + 2,
            column=column,
        )
    return values


def _with_lag(frame: pl.DataFrame, lag: timedelta) -> pl.DataFrame:
    return frame.with_columns((pl.col("observed") + pl.lit(lag)).alias("available"))


def _check_unique(frame: pl.DataFrame, path: str) -> None:
    dup = frame.select(pl.struct("series", "observed").is_duplicated().arg_true().first()).item()
    if dup is not None:
        rec = frame.row(dup, named=True)
        raise InvalidInput(
            f"series {rec['series']} has two observations dated {rec['observed']:%Y-%m-%d}",
            rule="duplicate-timestamp",
            fix="keep one observation per date (download the series again)",
            file=path,
            column=rec["series"],
        )


def _read_fred(raw: pl.DataFrame, path: str, lag: timedelta | None) -> tuple[pl.DataFrame, list[str]]:
    date_col = raw.columns[0]
    notes = ["detected a FRED CSV"]
    observed = _dates(raw, date_col, "%Y-%m-%d", path)
    parts = []
    for column in raw.columns[1:]:
        series = stem(path) if normalize(column) == "value" else column.strip()
        values = _numbers(raw, column, path, missing=(".", ""))
        part = pl.DataFrame({"series": series, "observed": observed, "value": values},
                            schema={"series": pl.String, "observed": TS_DTYPE, "value": pl.Float64})
        n_missing = part["value"].null_count()
        part = part.drop_nulls("value")
        if n_missing:
            notes.append(f"{series}: dropped {n_missing} missing values ('.')")
        if part.height == 0:
            continue
        _check_unique(part, path)
        if lag is None:
            freq, series_lag = frequency(part["observed"], file=path)
            notes.append(f"{series}: {freq} observations, available {_fmt_lag(series_lag)} after the "
                         "observation date (default lag)")
        else:
            series_lag = lag
            notes.append(f"{series}: available {_fmt_lag(lag)} after the observation date")
        parts.append(_with_lag(part, series_lag))
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=MACRO_SCHEMA)
    _check_unique(frame, path)
    return frame, notes


def _read_cot(
    raw: pl.DataFrame, norm: dict[str, str], path: str, cot_market: str | None, lag: timedelta | None
) -> tuple[pl.DataFrame, list[str]]:
    missing = [k for k, v in _COT.items() if k != "date" and v not in norm]
    date_key = next((d for d in _COT["date"] if d in norm), None)
    if missing or date_key is None:
        names = [k for k in missing] + ([] if date_key else ["as of date"])
        raise InvalidInput(
            f"COT file without the columns {', '.join(names)}",
            rule="missing-column",
            fix="use the legacy futures-only COT report as published by the CFTC",
            file=path,
        )
    col = {k: norm[v] for k, v in _COT.items() if k != "date"}
    names = raw[col["name"]].str.strip_chars()
    codes = raw[col["code"]].str.strip_chars()
    markets = pl.DataFrame({"name": names, "code": codes}).unique(maintain_order=True)
    listing = "; ".join(f"{n} ({c})" for n, c in markets.head(5).iter_rows())
    if cot_market is None:
        chosen = markets
        if markets.height > 1:
            raise InvalidInput(
                f"the file holds {markets.height} markets, e.g. {listing}",
                rule="ambiguous-market",
                fix="choose one with cot_market (--cot-market): its CFTC code or part of its name",
                file=path,
            )
    else:
        want = cot_market.strip()
        chosen = markets.filter(pl.col("code") == want)
        if chosen.height == 0:
            chosen = markets.filter(pl.col("name").str.to_lowercase().str.contains(want.lower(), literal=True))
        if chosen.height == 0:
            raise InvalidInput(
                f"no market matches '{cot_market}'; markets: {listing}",
                rule="unknown-market",
                fix="give a CFTC contract market code or part of a market name from the file",
                file=path,
            )
        if chosen["code"].n_unique() > 1:
            sample = "; ".join(f"{n} ({c})" for n, c in chosen.head(5).iter_rows())
            raise InvalidInput(
                f"'{cot_market}' matches {chosen['code'].n_unique()} markets: {sample}",
                rule="ambiguous-market",
                fix="give the CFTC contract market code of one of them",
                file=path,
            )
    code = chosen["code"][0]
    name = chosen["name"][0]
    rows = raw.with_row_index("__i").filter(codes == code)
    fmt = "%Y-%m-%d" if date_key.endswith("yyyymmdd") else "%y%m%d"
    observed = _dates(rows, norm[date_key], fmt, path)
    numbers = {k: _numbers(rows, col[k], path, missing=()) for k in ("oi", "nc_long", "nc_short", "c_long", "c_short")}
    safe = re.sub(r"[^0-9A-Za-z]+", "_", code).strip("_")
    series = {
        f"cot_{safe}_net_noncommercial": numbers["nc_long"] - numbers["nc_short"],
        f"cot_{safe}_net_commercial": numbers["c_long"] - numbers["c_short"],
        f"cot_{safe}_open_interest": numbers["oi"],
    }
    use_lag = COT_LAG if lag is None else lag
    parts = [
        pl.DataFrame({"series": s, "observed": observed, "value": v},
                     schema={"series": pl.String, "observed": TS_DTYPE, "value": pl.Float64}).drop_nulls("value")
        for s, v in series.items()
    ]
    frame = _with_lag(pl.concat(parts), use_lag)
    _check_unique(frame, path)
    notes = [
        "detected a CFTC COT CSV (legacy format)",
        f"market {name} ({code}): series {', '.join(series)}",
        f"available {_fmt_lag(use_lag)} after the 'as of' date"
        + (" (default: Friday 20:30 UTC release for Tuesday data)" if lag is None else ""),
    ]
    return frame, notes


def _fmt_lag(lag: timedelta) -> str:
    parts = []
    if lag.days:
        parts.append(f"{lag.days} day{'s' if lag.days != 1 else ''}")
    hours, rest = divmod(lag.seconds, 3600)
    minutes = rest // 60
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    return " ".join(parts) or "0 s"


def asof_join(bars: pl.DataFrame, macro: pl.DataFrame) -> pl.DataFrame:
    """Add one Float64 column `macro_<series>` per series: the value of the latest
    observation with `available <= ts` (null before the first). Same rows, same order.

    Equivalent to `join_asof(left_on="ts", right_on="available", strategy="backward")`,
    done with a binary search (`search_sorted(side="right")`) of each bar's ts in the
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
        obs = macro.filter(pl.col("series") == series).sort("available", "observed")
        available = obs["available"].cast(TS_DTYPE)
        seen = available.search_sorted(ts, side="right").cast(pl.Int64)
        index = pl.select(pl.when(seen > 0).then(seen - 1)).to_series()
        columns.append(obs["value"].cast(pl.Float64).gather(index).alias(MACRO_PREFIX + series))
    return bars.with_columns(columns)
