"""Macro series: FRED and COT readers, default publication lags, and a leak-free as-of join."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from strates.core.errors import InvalidInput
from strates.data.macro import COT_LAG, Lag, asof_join, default_lag, read_macro, read_macro_file
from strates.data.macro_parse import REVISIONS_MAY_LEAK, SeriesInfo
from strates.data.release import NEXT_BUSINESS_DAY, series_lag, us_holidays
from strates.data.schema import BAR_SCHEMA, MACRO_SCHEMA, TS_DTYPE

from files import utc, write  # tests/support

# ----------------------------------------------------------------------------- FRED


def test_fred_old_style_with_missing_values(tmp_path):
    path = write(tmp_path, "DGS10.csv", "DATE,VALUE\n2024-01-02,3.95\n2024-01-03,3.91\n2024-01-04,.\n2024-01-05,4.05\n")
    frame, notes = read_macro(path)
    assert frame.schema == pl.Schema(MACRO_SCHEMA)
    # DGS10 is published the next business day: seen from 00:00 UTC the day after it
    assert frame.rows() == [
        ("DGS10", utc(2024, 1, 2), utc(2024, 1, 4), 3.95),
        ("DGS10", utc(2024, 1, 3), utc(2024, 1, 5), 3.91),
        ("DGS10", utc(2024, 1, 5), utc(2024, 1, 9), 4.05),  # Friday -> Monday release -> Tuesday
    ]
    assert any("dropped 1 missing" in n for n in notes)
    assert any("DGS10" in n and "next US business day" in n and "revisions may leak" in n for n in notes)


def test_fred_new_style_monthly(tmp_path):
    text = "observation_date,CPIAUCSL\n2024-01-01,308.417\n2024-02-01,310.326\n2024-03-01,.\n"
    path = write(tmp_path, "fredgraph.csv", text)
    read = read_macro_file(path)
    assert read.frame["series"].unique().to_list() == ["CPIAUCSL"]
    # CPI's own default: 62 days (September 2013's CPI came out 59 days after 2013-09-01)
    assert read.frame["available"].to_list() == [utc(2024, 3, 3), utc(2024, 4, 3)]
    assert read.series["CPIAUCSL"] == SeriesInfo(vintage=False, lag="62 days after the observation date",
                                                 note=REVISIONS_MAY_LEAK)


def test_fred_us_dates_like_the_bar_reader(tmp_path):
    # a `Date,vix` file saved by a spreadsheet: US m/d/Y dates (refused before: "expected %Y-%m-%d")
    path = write(tmp_path, "vix.csv", "Date,vix\n1/3/2014,13.76\n1/6/2014,13.55\n1/7/2014,12.92\n")
    frame, notes = read_macro(path)
    assert frame["series"].unique().to_list() == ["vix"]
    assert frame["observed"].to_list() == [utc(2014, 1, 3), utc(2014, 1, 6), utc(2014, 1, 7)]
    assert frame["value"].to_list() == [13.76, 13.55, 12.92]
    assert any("daily" in n for n in notes)
    for text in ("Date,x\n20140103,1\n20140106,2\n", "Date,x\n2014-01-03 00:00:00,1\n2014-01-06 00:00:00,2\n"):
        assert read_macro(write(tmp_path, "x.csv", text))[0]["observed"].to_list() == [utc(2014, 1, 3), utc(2014, 1, 6)]
    with pytest.raises(InvalidInput) as info:
        read_macro(write(tmp_path, "y.csv", "Date,y\n1/3/2014,1\n2014-13-45,2\n"))
    assert (info.value.rule, info.value.row, info.value.column) == ("unparseable-timestamp", 3, "Date")


def test_fred_explicit_lag_and_bad_values(tmp_path):
    path = write(tmp_path, "X.csv", "observation_date,X\n2024-01-01,1\n2024-01-02,2\n")
    frame, _notes = read_macro(path, lag=timedelta(hours=6))
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
    ("step", "days"),
    [
        (timedelta(days=7), 14),
        (timedelta(days=30), 120),
        (timedelta(days=91), 185),
        (timedelta(days=365), 640),
    ],
)
def test_default_lag_per_frequency_errs_late(step, days):
    lag = default_lag(series([utc(2020, 1, 1) + i * step for i in range(6)]))
    assert lag == Lag(after=timedelta(days=days))


def test_daily_default_is_the_day_after_the_next_business_day():
    weekdays = [utc(2024, 1, d) for d in (1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 15)]
    lag = default_lag(series(weekdays))
    assert lag == NEXT_BUSINESS_DAY
    seen = lag.available(series([utc(2024, 1, 8), utc(2024, 1, 12), utc(2024, 1, 11), utc(2024, 7, 3)]))
    # Monday -> Wednesday; Friday before MLK day -> Tuesday release -> Wednesday;
    # Thursday -> Saturday; July 3 -> July 5 release (after Independence Day) -> July 6
    assert seen.to_list() == [utc(2024, 1, 10), utc(2024, 1, 17), utc(2024, 1, 13), utc(2024, 7, 6)]
    assert seen.dtype == TS_DTYPE


def test_default_lag_of_real_months_and_quarters():
    months = [utc(2023, m, 1) for m in range(1, 13)]
    assert default_lag(series(months)) == Lag(after=timedelta(days=120))
    quarters = [utc(2023, m, 1) for m in (1, 4, 7, 10)]
    assert default_lag(series(quarters)) == Lag(after=timedelta(days=185))
    with pytest.raises(InvalidInput):
        default_lag(series([utc(2024, 1, 1)]))


@pytest.mark.parametrize(
    ("name", "at_least"),
    [("PCE", 60), ("PCEPI", 60), ("PI", 60), ("JTSJOL", 70), ("GDP", 121), ("GDPC1", 121), ("CPIAUCSL", 45),
     ("UNRATE", 38), ("PAYEMS", 38), ("INDPRO", 48), ("M2SL", 59), ("ICSA", 6), ("WALCL", 2)],
)
def test_per_series_defaults_err_late(name, at_least):
    months = series([utc(2023, m, 1) for m in range(1, 13)])
    lag = default_lag(months, name)
    assert lag.business_days == 0 and lag.after >= timedelta(days=at_least)
    assert series_lag(name.lower()) == lag  # FRED ids in any case


def test_per_series_defaults_are_used_by_the_reader(tmp_path):
    text = "observation_date,PCE,JTSJOL,GDPC1\n2024-01-01,1,2,3\n2024-02-01,1,2,.\n2024-03-01,1,2,.\n"
    path = write(tmp_path, "f.csv", text)
    read = read_macro_file(path)
    first = read.frame.filter(pl.col("observed") == utc(2024, 1, 1))
    lags = {s: (a - o).days for s, o, a in first.select("series", "observed", "available").iter_rows()}
    assert lags == {"PCE": 120, "JTSJOL": 105, "GDPC1": 180}
    assert any("PCE" in n and "default for FRED series PCE" in n for n in read.notes)
    for name in ("DGS10", "VIXCLS", "DFF", "SOFR"):
        assert series_lag(name) == NEXT_BUSINESS_DAY
    assert series_lag("DEXUSEU") == series_lag("DEXJPUS") == Lag(after=timedelta(days=10))  # H.10: weekly
    assert series_lag("MYSERIES") is None


def test_us_holidays():
    days = {str(d) for d in us_holidays(2024, 2024)}
    assert {"2024-01-01", "2024-01-15", "2024-02-19", "2024-05-27", "2024-06-19", "2024-07-04",
            "2024-09-02", "2024-10-14", "2024-11-11", "2024-11-28", "2024-12-25"} == days
    assert "2021-12-31" in {str(d) for d in us_holidays(2022, 2022)}  # New Year 2022 on a Saturday


# ----------------------------------------------------------------------------- COT

COT_HEADER = (
    '"Market and Exchange Names","As of Date in Form YYMMDD","As of Date in Form YYYY-MM-DD",'
    '"CFTC Contract Market Code","CFTC Market Code in Initials","Open Interest (All)",'
    '"Noncommercial Positions-Long (All)","Noncommercial Positions-Short (All)",'
    '"Noncommercial Positions-Spreading (All)","Commercial Positions-Long (All)",'
    '"Commercial Positions-Short (All)"\n'
)
COT_ROWS = (
    '"EURO FX - CHICAGO MERCANTILE EXCHANGE",240102,2024-01-02,"099741","CME",'
    ' 700000, 200000, 100000, 5000, 300000, 420000\n'
    '"BITCOIN - CHICAGO MERCANTILE EXCHANGE",240102,2024-01-02,"133741","CME",'
    ' 20000, 9000, 12000, 100, 1000, 500\n'
    '"EURO FX - CHICAGO MERCANTILE EXCHANGE",240109,2024-01-09,"099741","CME",'
    ' 710000, 210000, 90000, 5000, 290000, 430000\n'
    '"BITCOIN - CHICAGO MERCANTILE EXCHANGE",240109,2024-01-09,"133741","CME",'
    ' 21000, 9500, 12500, 100, 1100, 600\n'
)


def test_cot_two_markets(tmp_path):
    path = write(tmp_path, "annual.txt", COT_HEADER + COT_ROWS)
    with pytest.raises(InvalidInput) as info:
        read_macro(path)
    assert info.value.rule == "ambiguous-market" and "EURO FX" in str(info.value)
    assert "--cot-market" in str(info.value.fix)
    frame, notes = read_macro(path, cot_market="bitcoin")
    by_code, _ = read_macro(path, cot_market="133741")
    assert frame.equals(by_code)
    assert sorted(frame["series"].unique().to_list()) == [
        "cot_133741_net_commercial",
        "cot_133741_net_noncommercial",
        "cot_133741_open_interest",
    ]
    first = frame.filter(pl.col("observed") == utc(2024, 1, 2))
    assert dict(zip(first["series"], first["value"], strict=True)) == {
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
        for ts, got in zip(out["ts"], out[f"macro_{name}"], strict=True):
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
