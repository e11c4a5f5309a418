"""Macro series: FRED and COT readers, default publication lags, and a leak-free as-of join."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl
import pytest

from strates.core.errors import InvalidInput
from strates.data.macro import COT_LAG, asof_join, default_lag, read_macro
from strates.data.schema import BAR_SCHEMA, MACRO_SCHEMA, TS_DTYPE

UTC = timezone.utc


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# ----------------------------------------------------------------------------- FRED


def test_fred_old_style_with_missing_values(tmp_path):
    path = write(tmp_path, "DGS10.csv", "DATE,VALUE\n2024-01-02,3.95\n2024-01-03,3.91\n2024-01-04,.\n2024-01-05,4.05\n")
    frame, notes = read_macro(path)
    assert frame.schema == pl.Schema(MACRO_SCHEMA)
    assert frame.rows() == [
        ("DGS10", utc(2024, 1, 2), utc(2024, 1, 3), 3.95),
        ("DGS10", utc(2024, 1, 3), utc(2024, 1, 4), 3.91),
        ("DGS10", utc(2024, 1, 5), utc(2024, 1, 6), 4.05),
    ]
    assert any("dropped 1 missing" in n for n in notes)
    assert any("daily" in n and "1 day" in n for n in notes)


def test_fred_new_style_monthly(tmp_path):
    path = write(tmp_path, "fredgraph.csv", "observation_date,CPIAUCSL\n2024-01-01,308.417\n2024-02-01,310.326\n2024-03-01,.\n")
    frame, notes = read_macro(path)
    assert frame["series"].unique().to_list() == ["CPIAUCSL"]
    assert frame["available"].to_list() == [utc(2024, 2, 15), utc(2024, 3, 17)]
    assert any("monthly" in n for n in notes)


def test_fred_explicit_lag_and_bad_values(tmp_path):
    path = write(tmp_path, "X.csv", "observation_date,X\n2024-01-01,1\n2024-01-02,2\n")
    frame, notes = read_macro(path, lag=timedelta(hours=6))
    assert frame["available"].to_list() == [utc(2024, 1, 1, 6), utc(2024, 1, 2, 6)]
    with pytest.raises(InvalidInput) as info:
        read_macro(write(tmp_path, "Z.csv", "observation_date,Z\n2024-01-01,1\n2024-01-02,abc\n"))
    assert (info.value.rule, info.value.row, info.value.column) == ("unparseable-number", 3, "Z")
    with pytest.raises(InvalidInput) as info:
        read_macro(write(tmp_path, "W.csv", "observation_date,W\n2024-01-01,1\n2024-01-01,2\n"))
    assert info.value.rule == "duplicate-timestamp"
    with pytest.raises(InvalidInput) as info:
        read_macro(write(tmp_path, "V.csv", "when,what\n2024-01-01,1\n"))
    assert info.value.rule == "unknown-columns"


def series(dates: list[datetime]) -> pl.Series:
    return pl.Series(dates, dtype=TS_DTYPE)


@pytest.mark.parametrize(
    "step, lag",
    [
        (timedelta(days=1), timedelta(days=1)),
        (timedelta(days=7), timedelta(days=7)),
        (timedelta(days=30), timedelta(days=45)),
        (timedelta(days=91), timedelta(days=120)),
        (timedelta(days=365), timedelta(days=455)),
    ],
)
def test_default_lag_per_frequency(step, lag):
    assert default_lag(series([utc(2020, 1, 1) + i * step for i in range(6)])) == lag


def test_default_lag_of_business_days_and_real_months():
    weekdays = [utc(2024, 1, d) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 15)]
    assert default_lag(series(weekdays)) == timedelta(days=1)
    months = [utc(2023, m, 1) for m in range(1, 13)]
    assert default_lag(series(months)) == timedelta(days=45)
    quarters = [utc(2023, m, 1) for m in (1, 4, 7, 10)]
    assert default_lag(series(quarters)) == timedelta(days=120)
    with pytest.raises(InvalidInput):
        default_lag(series([utc(2024, 1, 1)]))


# ----------------------------------------------------------------------------- COT

COT_HEADER = (
    '"Market and Exchange Names","As of Date in Form YYMMDD","As of Date in Form YYYY-MM-DD",'
    '"CFTC Contract Market Code","CFTC Market Code in Initials","Open Interest (All)",'
    '"Noncommercial Positions-Long (All)","Noncommercial Positions-Short (All)",'
    '"Noncommercial Positions-Spreading (All)","Commercial Positions-Long (All)",'
    '"Commercial Positions-Short (All)"\n'
)
COT_ROWS = (
    '"EURO FX - CHICAGO MERCANTILE EXCHANGE",240102,2024-01-02,"099741","CME", 700000, 200000, 100000, 5000, 300000, 420000\n'
    '"BITCOIN - CHICAGO MERCANTILE EXCHANGE",240102,2024-01-02,"133741","CME", 20000, 9000, 12000, 100, 1000, 500\n'
    '"EURO FX - CHICAGO MERCANTILE EXCHANGE",240109,2024-01-09,"099741","CME", 710000, 210000, 90000, 5000, 290000, 430000\n'
    '"BITCOIN - CHICAGO MERCANTILE EXCHANGE",240109,2024-01-09,"133741","CME", 21000, 9500, 12500, 100, 1100, 600\n'
)


def test_cot_two_markets(tmp_path):
    path = write(tmp_path, "annual.txt", COT_HEADER + COT_ROWS)
    with pytest.raises(InvalidInput) as info:
        read_macro(path)
    assert info.value.rule == "ambiguous-market" and "EURO FX" in str(info.value) and "--cot-market" in info.value.fix
    frame, notes = read_macro(path, cot_market="bitcoin")
    by_code, _ = read_macro(path, cot_market="133741")
    assert frame.equals(by_code)
    assert sorted(frame["series"].unique().to_list()) == [
        "cot_133741_net_commercial",
        "cot_133741_net_noncommercial",
        "cot_133741_open_interest",
    ]
    first = frame.filter(pl.col("observed") == utc(2024, 1, 2))
    assert dict(zip(first["series"], first["value"])) == {
        "cot_133741_net_noncommercial": -3000.0,
        "cot_133741_net_commercial": 500.0,
        "cot_133741_open_interest": 20000.0,
    }
    # Tuesday as-of date -> the next Tuesday 00:00 UTC (covers holiday-week releases)
    assert first["available"].unique().to_list() == [utc(2024, 1, 9)]
    assert COT_LAG == timedelta(days=7)
    assert any("BITCOIN" in n for n in notes)
    with pytest.raises(InvalidInput) as info:
        read_macro(path, cot_market="gold")
    assert info.value.rule == "unknown-market"
    with pytest.raises(InvalidInput) as info:
        read_macro(path, cot_market="CHICAGO")
    assert info.value.rule == "ambiguous-market"


def test_cot_yymmdd_only(tmp_path):
    header = COT_HEADER.replace('"As of Date in Form YYYY-MM-DD",', "")
    rows = "".join(line.replace(",2024-01-02", "").replace(",2024-01-09", "") + "\n" for line in COT_ROWS.splitlines())
    frame, _ = read_macro(write(tmp_path, "c.csv", header + rows), cot_market="099741")
    assert frame["observed"].unique().sort().to_list() == [utc(2024, 1, 2), utc(2024, 1, 9)]


# ----------------------------------------------------------------------------- as-of join


def bars_for(assets: list[str], times: list[datetime]) -> pl.DataFrame:
    rows = [(a, t, 1.0, 1.0, 1.0, 1.0, 1.0) for a in assets for t in times]
    return pl.DataFrame(rows, schema=BAR_SCHEMA, orient="row")


def macro_rows(name: str, points: list[tuple[datetime, datetime, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        [(name, o, a, v) for o, a, v in points], schema=MACRO_SCHEMA, orient="row"
    )


def test_asof_join_is_exactly_leak_free_over_two_assets():
    times = [utc(2024, 1, 1) + timedelta(hours=6 * i) for i in range(40)]
    bars = bars_for(["BTC", "ETH"], times)
    daily = [(utc(2024, 1, d), utc(2024, 1, d) + timedelta(days=1), float(d)) for d in range(1, 11)]
    weekly = [(utc(2024, 1, 2), utc(2024, 1, 5, 20, 30), 100.0), (utc(2024, 1, 9), utc(2024, 1, 12, 20, 30), 200.0)]
    macro = pl.concat([macro_rows("D", daily), macro_rows("W", weekly)])
    out = asof_join(bars, macro)
    assert out.height == bars.height and out.select(bars.columns).equals(bars)
    assert out.columns == [*bars.columns, "macro_D", "macro_W"]
    assert out.schema["macro_D"] == pl.Float64
    for name, points in (("D", daily), ("W", weekly)):
        for ts, got in zip(out["ts"], out[f"macro_{name}"]):
            visible = [(a, v) for _, a, v in points if a <= ts]
            expected = max(visible)[1] if visible else None
            assert got == expected, (name, ts)
    # null before the first availability, for every asset
    first = out.filter(pl.col("ts") < utc(2024, 1, 2))
    assert first["macro_D"].null_count() == first.height == 8


def test_asof_join_boundary_is_exact_to_the_microsecond():
    ts = utc(2024, 1, 5, 20, 30)
    bars = bars_for(["A", "B"], [ts - timedelta(microseconds=1), ts, ts + timedelta(microseconds=1)])
    at = macro_rows("AT", [(utc(2024, 1, 2), ts, 1.0)])
    later = macro_rows("LATER", [(utc(2024, 1, 2), ts + timedelta(microseconds=1), 2.0)])
    out = asof_join(bars, pl.concat([at, later]))
    assert out["macro_AT"].to_list() == [None, 1.0, 1.0] * 2
    assert out["macro_LATER"].to_list() == [None, None, 2.0] * 2


def test_asof_join_keeps_any_bar_order():
    times = [utc(2024, 1, d) for d in range(1, 6)]
    bars = bars_for(["B", "A"], times[::-1])  # neither sorted by asset nor by ts
    macro = macro_rows("M", [(t, t, float(t.day)) for t in times[::2]])
    out = asof_join(bars, macro)
    assert out["macro_M"].to_list() == [5.0, 3.0, 3.0, 1.0, 1.0] * 2
