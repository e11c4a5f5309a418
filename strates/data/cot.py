"""CFTC Commitments of Traders (legacy, futures only) files: one market into three series.

Columns read: "Market and Exchange Names", "As of Date in Form YYYY-MM-DD" (or "... YYMMDD"),
"CFTC Contract Market Code", "Open Interest (All)", "Noncommercial Positions-Long (All)",
"...-Short (All)", "Commercial Positions-Long (All)", "...-Short (All)". One market is read
(`cot_market`: its code or part of its name) into `cot_<code>_net_noncommercial`,
`cot_<code>_net_commercial` and `cot_<code>_open_interest`, available `COT_LAG` (7 days)
after the "as of" Tuesday unless a lag is given (see `strates.data.release`).
"""

from __future__ import annotations

import re
from datetime import timedelta

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.macro_parse import REVISIONS_MAY_LEAK, SeriesInfo, check_unique, dates, numbers, observations
from strates.data.release import COT_LAG, fmt_duration
from strates.data.schema import TS_DTYPE

COT = {
    "name": "marketandexchangenames",
    "date": ("asofdateinformyyyymmdd", "asofdateinformyymmdd", "reportdateasyyyymmdd"),
    "code": "cftccontractmarketcode",
    "oi": "openinterestall",
    "nc_long": "noncommercialpositionslongall",
    "nc_short": "noncommercialpositionsshortall",
    "c_long": "commercialpositionslongall",
    "c_short": "commercialpositionsshortall",
}


def read_cot(
    raw: pl.DataFrame, norm: dict[str, str], path: str, cot_market: str | None, lag: timedelta | None
) -> tuple[pl.DataFrame, list[str], dict[str, SeriesInfo]]:
    """One market of a legacy COT file -> (MACRO_SCHEMA rows, notes, what is known per series)."""
    missing = [k for k, v in COT.items() if k != "date" and v not in norm]
    date_key = next((d for d in COT["date"] if d in norm), None)
    if missing or date_key is None:
        names = list(missing) + ([] if date_key else ["as of date"])
        raise InvalidInput(
            f"COT file without the columns {', '.join(names)}",
            rule="missing-column",
            fix="use the legacy futures-only COT report as published by the CFTC",
            file=path,
        )
    col = {k: norm[v] for k, v in COT.items() if k != "date"}
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
    observed = _as_of_dates(rows, norm[date_key], yymmdd=not date_key.endswith("yyyymmdd"), path=path)
    values = {k: numbers(rows, col[k], path, missing=()) for k in ("oi", "nc_long", "nc_short", "c_long", "c_short")}
    safe = re.sub(r"[^0-9A-Za-z]+", "_", code).strip("_")
    series = {
        f"cot_{safe}_net_noncommercial": values["nc_long"] - values["nc_short"],
        f"cot_{safe}_net_commercial": values["c_long"] - values["c_short"],
        f"cot_{safe}_open_interest": values["oi"],
    }
    use_lag = COT_LAG if lag is None else lag
    frame = pl.concat([observations(s, observed, v).drop_nulls("value") for s, v in series.items()])
    frame = frame.with_columns((pl.col("observed") + pl.lit(use_lag)).alias("available"))
    check_unique(frame, path)
    notes = [
        "detected a CFTC COT CSV (legacy format)",
        f"market {name} ({code}): series {', '.join(series)}",
        f"available {fmt_duration(use_lag)} after the 'as of' date"
        + (" (default: Friday 20:30 UTC release for Tuesday data)" if lag is None else ""),
    ]
    lag_text = f"{fmt_duration(use_lag)} after the 'as of' date"
    info = {s: SeriesInfo(vintage=False, lag=lag_text, note=REVISIONS_MAY_LEAK) for s in series}
    return frame, notes, info


def _as_of_dates(rows: pl.DataFrame, column: str, *, yymmdd: bool, path: str) -> pl.Series:
    if not yymmdd:
        return dates(rows, column, path)
    text = rows[column].str.strip_chars()
    out = text.str.to_datetime("%y%m%d", time_unit="us", time_zone="UTC", strict=False)
    bad = out.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InvalidInput(f"cannot read date '{text[i]}' (expected YYMMDD)", rule="unparseable-timestamp",
                           fix="keep the dates as downloaded", file=path, row=i + 2, column=column)
    return out.cast(TS_DTYPE)
