"""Reading bar files in the formats people have: exact values, notes, row numbers."""

from __future__ import annotations

import gzip
import json
import os
import pathlib
from datetime import UTC, datetime

import pandas as pd
import polars as pl
import pytest

from strates.core.errors import InvalidInput
from strates.data.schema import BAR_COLUMNS, BAR_SCHEMA
from strates.data.sources import SourceOptions, list_source_files, read_all, read_bars


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def read(path: str, **options) -> tuple[pl.DataFrame, list[str]]:
    return read_all([path], SourceOptions(**options))


def rejected(paths, **options) -> InvalidInput:
    with pytest.raises(InvalidInput) as info:
        read_all(paths if isinstance(paths, list) else [paths], SourceOptions(**options))
    return info.value


def has_note(notes: list[str], text: str) -> bool:
    return any(text in n for n in notes)


# ----------------------------------------------------------------------------- generic CSV

YF = (
    "Date,Open,High,Low,Close,Adj Close,Volume\n"
    "2024-01-02,187.15,188.44,183.89,185.64,184.29,82488700\n"
    "2024-01-03,184.22,185.88,183.43,184.25,182.91,58414500\n"
)


def test_yfinance_csv_drops_or_keeps_adj_close(tmp_path):
    path = write(tmp_path, "AAPL.csv", YF)
    frame, notes = read(path)
    assert frame.columns == list(BAR_COLUMNS) and frame.schema == pl.Schema(BAR_SCHEMA)
    assert frame["asset"].to_list() == ["AAPL", "AAPL"]
    assert frame["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 1, 3)]
    assert frame.row(0)[2:] == (187.15, 188.44, 183.89, 185.64, 82488700.0)
    assert has_note(notes, "detected format csv")
    assert has_note(notes, "dropped extra column 'Adj Close' (use --keep-extra to keep it)")
    assert has_note(notes, "assumed UTC for naive timestamps")
    kept, notes = read(path, keep_extra=True)
    assert kept.columns == [*BAR_COLUMNS, "adj_close"]
    assert kept["adj_close"].to_list() == [184.29, 182.91]
    assert has_note(notes, "kept extra column 'Adj Close' as 'adj_close'")


def test_yfinance_three_line_header(tmp_path):
    path = write(
        tmp_path,
        "download.csv",
        "Price,Adj Close,Close,High,Low,Open,Volume\n"
        "Ticker,MSFT,MSFT,MSFT,MSFT,MSFT,MSFT\n"
        "Date,,,,,,\n"
        "2024-01-02,367.94,370.87,375.9,366.77,373.86,25258600\n"
        "2024-01-03,366.66,370.6,373.26,368.51,369.01,-1\n",
    )
    err = rejected(path)
    assert (err.rule, err.row, err.column) == ("negative-volume", 5, "Volume")
    text = pathlib.Path(path).read_text().replace(",-1\n", ",23083500\n")
    frame, notes = read(write(tmp_path, "ok.csv", text))
    assert frame["asset"].unique().to_list() == ["MSFT"]
    assert frame["open"].to_list() == [373.86, 369.01]
    assert frame["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 1, 3)]
    assert has_note(notes, "yfinance three-line header")


def test_pandas_to_csv_unnamed_index_with_offsets(tmp_path):
    index = pd.DatetimeIndex(
        ["2024-03-08 09:30", "2024-03-11 09:30"], tz="America/New_York"
    )  # EST (-05:00) then EDT (-04:00)
    df = pd.DataFrame(
        {"open": [1.0, 2.0], "high": [1.5, 2.5], "low": [0.5, 1.5], "close": [1.2, 2.2], "volume": [10, 20]},
        index=index,
    )
    path = str(tmp_path / "SPY.csv")
    df.to_csv(path)
    assert pathlib.Path(path).read_text().startswith(",open")
    frame, notes = read(path)
    assert frame["ts"].to_list() == [utc(2024, 3, 8, 14, 30), utc(2024, 3, 11, 13, 30)]
    assert has_note(notes, "unnamed index column")
    assert has_note(notes, "UTC offsets, converted to UTC")


def test_aliases_any_case_and_short_names(tmp_path):
    path = write(tmp_path, "x.csv", "TIME,O,H,L,C,Vol\n2024-01-01T10:00,1,2,0.5,1.5,3\n")
    frame, _ = read(path)
    assert frame.row(0) == ("x", utc(2024, 1, 1, 10), 1.0, 2.0, 0.5, 1.5, 3.0)


def test_us_dates(tmp_path):
    path = write(tmp_path, "us.csv", "Date,Open,High,Low,Close,Volume\n1/2/2024,1,2,0.5,1.5,3\n"
                                     "12/31/2024,1,2,0.5,1.5,3\n")
    frame, notes = read(path)
    assert frame["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 12, 31)]
    assert has_note(notes, "US month/day/year")
    path = write(tmp_path, "ust.csv", "Date,Open,High,Low,Close,Volume\n01/02/2024 09:30,1,2,0.5,1.5,3\n"
                                      "1/2/2024 9:31:15,1,2,0.5,1.5,3\n")
    frame, _ = read(path)
    assert frame["ts"].to_list() == [utc(2024, 1, 2, 9, 30), utc(2024, 1, 2, 9, 31, 15)]


def test_day_month_year_is_refused(tmp_path):
    path = write(tmp_path, "eu.csv", "Date,Open,High,Low,Close,Volume\n31/01/2024,1,2,0.5,1.5,3\n")
    err = rejected(path)
    assert (err.rule, err.row, err.column) == ("unparseable-timestamp", 2, "Date")


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (1704067200, "seconds"),
        (1704067200000, "milliseconds"),
        (1704067200000000, "microseconds"),
        (1704067200000000000, "nanoseconds"),
    ],
)
def test_epoch_units_from_magnitude(tmp_path, value, unit):
    step = value // 1704067200 * 60
    path = write(tmp_path, "e.csv", f"timestamp,open,high,low,close,volume\n{value},1,2,0.5,1.5,3\n"
                                    f"{value + step},1,2,0.5,1.5,3\n")
    frame, notes = read(path)
    assert frame["ts"].to_list() == [utc(2024, 1, 1), utc(2024, 1, 1, 0, 1)]
    assert has_note(notes, f"epoch {unit}")


def test_epoch_unit_cannot_change_within_a_file(tmp_path):
    path = write(tmp_path, "e.csv", "ts,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,3\n"
                                    "1704067260,1,2,0.5,1.5,3\n")
    err = rejected(path)
    assert (err.rule, err.row, err.column) == ("unparseable-timestamp", 3, "ts")
    assert "milliseconds" in str(err)


def test_small_integers_are_not_timestamps(tmp_path):
    path = write(tmp_path, "e.csv", "ts,open,high,low,close,volume\n0,1,2,0.5,1.5,3\n")
    assert rejected(path).rule == "unparseable-timestamp"


def test_yyyymmdd_integers(tmp_path):
    path = write(tmp_path, "d.csv", "date,open,high,low,close,volume\n20240102,1,2,0.5,1.5,3\n")
    assert read(path)[0]["ts"].to_list() == [utc(2024, 1, 2)]


def test_iso_variants_and_fallback_layouts(tmp_path):
    rows = [
        "2024-01-01T00:00:00.000Z",  # sets a literal '.000Z' layout
        "2024-01-01T00:01:00.250Z",  # other fraction: fallback layout
        "2024-01-01T01:02:00+01:00",  # an offset: fallback, converted exactly
        "2024-01-01 00:03:00Z",  # space instead of T
    ]
    text = "timestamp,open,high,low,close,volume\n" + "".join(f"{r},1,2,0.5,1.5,3\n" for r in rows)
    frame, _ = read(write(tmp_path, "iso.csv", text))
    assert frame["ts"].to_list() == [
        utc(2024, 1, 1, 0, 0),
        utc(2024, 1, 1, 0, 1, 0, 250000),
        utc(2024, 1, 1, 0, 2),
        utc(2024, 1, 1, 0, 3),
    ]


def test_offsets_converted_exactly_across_dst(tmp_path):
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-03-09 23:00:00-05:00,1,2,0.5,1.5,3\n"
        "2024-03-10 03:00:00-04:00,1,2,0.5,1.5,3\n"
        "2024-03-10 12:30:00+05:30,1,2,0.5,1.5,3\n"
    )
    # the third row equals the second in UTC: 12:30+05:30 = 07:00Z, a duplicate
    err = rejected(write(tmp_path, "o2.csv", text))
    assert (err.rule, err.row) == ("duplicate-timestamp", 4)
    frame, _ = read(write(tmp_path, "o3.csv", text.replace("12:30:00+05:30", "13:30:00+05:30")))
    assert frame["ts"].to_list() == [utc(2024, 3, 10, 4), utc(2024, 3, 10, 7), utc(2024, 3, 10, 8)]


def test_tz_option_for_naive_timestamps_across_dst(tmp_path):
    text = (
        "Datetime,Open,High,Low,Close,Volume\n"
        "2024-03-10 01:59:00,1,2,0.5,1.5,3\n"  # EST, UTC-5
        "2024-03-10 03:00:00,1,2,0.5,1.5,3\n"  # EDT, UTC-4 (02:xx does not exist)
        "2024-11-03 00:30:00,1,2,0.5,1.5,3\n"  # EDT
        "2024-11-03 02:30:00,1,2,0.5,1.5,3\n"  # EST
    )
    frame, notes = read(write(tmp_path, "ny.csv", text), tz="America/New_York")
    assert frame["ts"].to_list() == [
        utc(2024, 3, 10, 6, 59),
        utc(2024, 3, 10, 7, 0),
        utc(2024, 11, 3, 4, 30),
        utc(2024, 11, 3, 7, 30),
    ]
    assert has_note(notes, "America/New_York local time")
    gap = write(tmp_path, "gap.csv", text.replace("03:00:00", "02:30:00"))
    err = rejected(gap, tz="America/New_York")
    assert (err.rule, err.row, err.column) == ("ambiguous-local-time", 3, "Datetime")
    assert rejected(gap, tz="Mars/Olympus").rule == "unknown-timezone"


def test_tz_option_ignored_for_offsets(tmp_path):
    path = write(tmp_path, "z.csv", "ts,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n")
    frame, notes = read(path, tz="Asia/Tokyo")
    assert frame["ts"].to_list() == [utc(2024, 1, 1)]
    assert has_note(notes, "--tz Asia/Tokyo ignored")


def test_multi_asset_with_symbol_sorted_with_note(tmp_path):
    text = (
        "time,symbol,open,high,low,close,volume\n"
        "2024-01-01 00:01:00,ETH,3,4,2,3.5,1\n"
        "2024-01-01 00:00:00,BTC,30,40,20,35,1\n"
        "2024-01-01 00:00:00,ETH,3,4,2,3.5,2\n"
        "2024-01-01 00:01:00,BTC,30,40,20,35,2\n"
    )
    path = write(tmp_path, "m.csv", text)
    frame, notes = read(path)
    assert frame.select("asset", "ts", "volume").rows() == [
        ("BTC", utc(2024, 1, 1, 0, 0), 1.0),
        ("BTC", utc(2024, 1, 1, 0, 1), 2.0),
        ("ETH", utc(2024, 1, 1, 0, 0), 2.0),
        ("ETH", utc(2024, 1, 1, 0, 1), 1.0),
    ]
    assert has_note(notes, f"sorted 2 out-of-order rows in {path}")
    assert has_note(notes, "--asset ignored") is False
    _, notes = read(path, asset="X")
    assert has_note(notes, "--asset ignored")


def test_asset_from_option_or_stem(tmp_path):
    path = write(tmp_path, "BTC-daily.csv", "date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,3\n")
    assert read(path)[0]["asset"].to_list() == ["BTC-daily"]
    assert read(path, asset="BTC")[0]["asset"].to_list() == ["BTC"]


def test_csv_gz(tmp_path):
    path = tmp_path / "AAPL.csv.gz"
    with gzip.open(path, "wt") as f:
        f.write(YF)
    frame, _ = read(str(path))
    assert frame["asset"].to_list() == ["AAPL", "AAPL"]
    assert frame["close"].to_list() == [185.64, 184.25]


def test_row_numbers_are_editor_lines(tmp_path):
    text = ("date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,3\n\n2024-01-02,1,2,0.5,1.5,3\n"
            "2024-01-03,1,2,0.5,1.5,3\n\n")
    path = write(tmp_path, "b.csv", text)
    frame, notes = read_bars(path, SourceOptions())
    assert frame["__row"].to_list() == [2, 4, 5]
    assert has_note(notes, "skipped")
    err = rejected(write(tmp_path, "c.csv", text.replace("2024-01-03,1,2", "2024-01-03,1,0.1")))
    assert (err.rule, err.row) == ("high-below-low", 5)


def test_read_bars_keeps_file_order_and_row(tmp_path):
    path = write(tmp_path, "r.csv", "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,3\n"
                                    "2024-01-01,1,2,0.5,1.5,3\n")
    frame, _ = read_bars(path, SourceOptions())
    assert frame.columns == [*BAR_COLUMNS, "__row"]
    assert frame["ts"].to_list() == [utc(2024, 1, 2), utc(2024, 1, 1)]
    assert frame["__row"].to_list() == [2, 3]


def test_slow_path_reports_the_first_problem_by_row(tmp_path):
    head = "date,open,high,low,close,volume\n"
    text = head + "2024-01-01,1,2,0.5,1.5,-3\n2024-01-02,1,abc,0.5,1.5,3\n"
    err = rejected(write(tmp_path, "a.csv", text))
    assert (err.rule, err.row, err.column) == ("negative-volume", 2, "volume")
    text = head + "2024-01-01,1,2,0.5,1.5,3\n2024-01-02,1,abc,0.5,1.5,3\n2024-01-03,1,2,0.5,1.5,-3\n"
    err = rejected(write(tmp_path, "b.csv", text))
    assert (err.rule, err.row, err.column) == ("unparseable-number", 3, "high")
    assert "'abc'" in str(err)
    # a bad timestamp after a bad price: the price (earlier row) is reported
    text = head + "2024-01-01,1,2,0.5,1.5,3\n2024-01-02,-1,2,0.5,1.5,3\nnot a date,1,2,0.5,1.5,3\n"
    err = rejected(write(tmp_path, "c.csv", text))
    assert (err.rule, err.row) == ("non-positive-price", 3)


def test_empty_cells_and_nan_strings(tmp_path):
    head = "date,open,high,low,close,volume\n"
    err = rejected(write(tmp_path, "a.csv", head + "2024-01-01,1,2,0.5,,3\n"))
    assert (err.rule, err.row, err.column) == ("non-finite", 2, "close")
    err = rejected(write(tmp_path, "b.csv", head + "2024-01-01,1,2,0.5,1.5,inf\n"))
    assert (err.rule, err.column) == ("non-finite", "volume")
    err = rejected(write(tmp_path, "c.csv", head + "2024-01-01,1,2,0.5,1.5,3\n,1,2,0.5,1.5,3\n"))
    assert (err.rule, err.row) == ("unparseable-timestamp", 3)


def test_columns_explicit_and_ambiguous(tmp_path):
    text = "Date,Time,Open,High,Low,Close,Volume\n2024-01-01,09:30,1,2,0.5,1.5,3\n"
    err = rejected(write(tmp_path, "a.csv", text))
    assert err.rule == "ambiguous-column" and "--ts-column" in str(err.fix)
    frame, _ = read(write(tmp_path, "b.csv", text), ts_column="date")
    assert frame["ts"].to_list() == [utc(2024, 1, 1)]
    err = rejected(write(tmp_path, "c.csv", text), ts_column="when")
    assert err.rule == "missing-column" and "'Date'" in str(err)


def test_headerless_numbers_are_not_guessed(tmp_path):
    err = rejected(write(tmp_path, "n.csv", "1704067200,1,2,0.5,1.5,3\n"))
    assert err.rule == "unknown-columns" and "header" in str(err.fix)


def test_tab_separated(tmp_path):
    frame, notes = read(write(tmp_path, "t.csv", "date\topen\thigh\tlow\tclose\tvolume\n"
                                                 "2024-01-01\t1\t2\t0.5\t1.5\t3\n"))
    assert frame["close"].to_list() == [1.5]
    assert has_note(notes, "tab")


# ----------------------------------------------------------------------------- Parquet


def test_parquet_from_pandas_with_datetime_index(tmp_path):
    index = pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="Date")
    df = pd.DataFrame(
        {"Open": [1.0, 2.0], "High": [1.5, 2.5], "Low": [0.5, 1.5], "Close": [1.2, 2.2], "Volume": [10, 20],
         "Dividends": [0.0, 0.1]},
        index=index,
    )
    path = str(tmp_path / "IBM.parquet")
    df.to_parquet(path)
    frame, notes = read(path)
    assert frame.rows() == [
        ("IBM", utc(2024, 1, 2), 1.0, 1.5, 0.5, 1.2, 10.0),
        ("IBM", utc(2024, 1, 3), 2.0, 2.5, 1.5, 2.2, 20.0),
    ]
    assert has_note(notes, "detected format parquet") and has_note(notes, "dropped extra column 'Dividends'")
    frame, _ = read(path, keep_extra=True, tz="America/New_York")
    assert frame["dividends"].to_list() == [0.0, 0.1]
    assert frame["ts"].to_list() == [utc(2024, 1, 2, 5), utc(2024, 1, 3, 5)]


def test_parquet_tz_aware_unnamed_index_and_string_ts(tmp_path):
    index = pd.DatetimeIndex(["2024-01-02 09:30", "2024-01-02 09:31"], tz="America/New_York")
    df = pd.DataFrame({"o": [1.0, 2.0], "h": [1.5, 2.5], "l": [0.5, 1.5], "c": [1.2, 2.2], "v": [1, 2]}, index=index)
    path = str(tmp_path / "X.parquet")
    df.to_parquet(path)
    frame, _ = read(path)
    assert frame["ts"].to_list() == [utc(2024, 1, 2, 14, 30), utc(2024, 1, 2, 14, 31)]
    strings = pl.DataFrame({"timestamp": ["2024-01-01 00:00:00", "bad"], "open": [1.0, 1.0], "high": [2.0, 2.0],
                            "low": [0.5, 0.5], "close": [1.5, 1.5], "volume": [1.0, 1.0]})
    bad = str(tmp_path / "s.parquet")
    strings.write_parquet(bad)
    err = rejected(bad)
    assert (err.rule, err.row, err.column) == ("unparseable-timestamp", 2, "timestamp")


def test_parquet_schema_mismatch(tmp_path):
    frame = pl.DataFrame({"ts": [utc(2024, 1, 1)], "open": [True], "high": [2.0], "low": [0.5], "close": [1.5],
                          "volume": [1.0]})
    path = str(tmp_path / "b.parquet")
    frame.write_parquet(path)
    err = rejected(path)
    assert err.rule == "unknown-columns" and "'open' (Boolean)" in str(err)


# ----------------------------------------------------------------------------- exchanges


def bybit_page(rows: list[list[str]], symbol: str = "BTCUSDT") -> dict:
    return {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "symbol": symbol, "list": rows},
            "retExtInfo": {}, "time": 1672025956592}


def test_bybit_json_two_pages_newest_first(tmp_path):
    page1 = [
        ["1670608920000", "17060", "17080", "17050", "17070", "100", "1706000"],
        ["1670608860000", "17055.5", "17065", "17040", "17060", "200", "3411000"],
    ]
    page2 = [
        ["1670608800000", "17071", "17073", "17027", "17055.5", "268611", "15.74462667"],
    ]
    path = write(tmp_path, "bybit.json", json.dumps([bybit_page(page1), bybit_page(page2)]))
    frame, notes = read(path)
    assert frame.rows() == [
        ("BTCUSDT", utc(2022, 12, 9, 18, 0), 17071.0, 17073.0, 17027.0, 17055.5, 268611.0),
        ("BTCUSDT", utc(2022, 12, 9, 18, 1), 17055.5, 17065.0, 17040.0, 17060.0, 200.0),
        ("BTCUSDT", utc(2022, 12, 9, 18, 2), 17060.0, 17080.0, 17050.0, 17070.0, 100.0),
    ]
    assert has_note(notes, "detected format bybit-json")
    assert has_note(notes, "sorted 2 out-of-order rows") and has_note(notes, "newest first")
    single = write(tmp_path, "one.json", json.dumps(bybit_page(page2)))
    frame, _ = read(single, keep_extra=True)
    assert frame["turnover"].to_list() == [15.74462667]
    raw, _ = read_bars(path, SourceOptions())
    assert raw["__row"].to_list() == [1, 2, 3]


def test_bybit_bad_value_names_the_record(tmp_path):
    rows = [["1670608860000", "1", "2", "0.5", "x", "1", "1"], ["1670608800000", "1", "2", "0.5", "1", "1", "1"]]
    err = rejected(write(tmp_path, "b.json", json.dumps(bybit_page(rows))))
    assert (err.rule, err.row, err.column) == ("unparseable-number", 1, "close")
    err = rejected(write(tmp_path, "c.json", json.dumps({"retCode": 0, "result": {"list": [[1, 2]]}})))
    assert (err.rule, err.row) == ("bad-json", 1)


BINANCE_ROWS = (
    "{t0},42283.58,42554.57,42261.02,42475.23,1271.68108,{t1},53957248.97,47134,682.57581,28957416.81,0\n"
    "{t2},42475.23,42775.00,42431.65,42613.56,1196.37856,{t3},50984893.87,50562,647.25757,27589658.74,0\n"
)
BINANCE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,"
                  "taker_buy_volume,taker_buy_quote_volume,ignore\n")


def test_binance_without_header_ms(tmp_path):
    text = BINANCE_ROWS.format(t0=1704067200000, t1=1704070799999, t2=1704070800000, t3=1704074399999)
    path = write(tmp_path, "BTCUSDT-1h-2024-01.csv", text)
    frame, notes = read(path)
    assert frame.rows() == [
        ("BTCUSDT", utc(2024, 1, 1, 0), 42283.58, 42554.57, 42261.02, 42475.23, 1271.68108),
        ("BTCUSDT", utc(2024, 1, 1, 1), 42475.23, 42775.0, 42431.65, 42613.56, 1196.37856),
    ]
    assert has_note(notes, "detected format binance-csv") and has_note(notes, "epoch milliseconds")
    raw, _ = read_bars(path, SourceOptions())
    assert raw["__row"].to_list() == [1, 2]
    kept, _ = read(path, keep_extra=True)
    assert kept.columns == [*BAR_COLUMNS, "quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume"]
    assert kept["count"].to_list() == [47134.0, 50562.0]


def test_binance_with_header_us(tmp_path):
    text = BINANCE_HEADER + BINANCE_ROWS.format(
        t0=1735689600000000, t1=1735693199999999, t2=1735693200000000, t3=1735696799999999
    )
    path = write(tmp_path, "ETHUSDT-1h-2025-01.csv", text)
    frame, notes = read(path)
    assert frame["ts"].to_list() == [utc(2025, 1, 1, 0), utc(2025, 1, 1, 1)]
    assert frame["asset"].to_list() == ["ETHUSDT", "ETHUSDT"]
    assert has_note(notes, "epoch microseconds")
    err = rejected(write(tmp_path, "ETHUSDT-x.csv", text.replace("42775.00", "42500")))
    assert (err.rule, err.row, err.column) == ("high-below-open-close", 3, "high")


def test_explicit_format(tmp_path):
    path = write(tmp_path, "AAPL.csv", YF)
    err = rejected(path, format="binance-csv")
    assert err.rule == "unknown-columns"
    assert read(path, format="csv")[0].height == 2
    with pytest.raises(InvalidInput) as info:
        SourceOptions(format="xlsx")
    assert info.value.rule == "bad-option"


# ----------------------------------------------------------------------------- several files


def test_read_all_across_files(tmp_path):
    a = write(tmp_path, "d/BTC-2.csv", "date,open,high,low,close,volume\n2024-01-03,1,2,0.5,1.5,3\n")
    b = write(tmp_path, "d/BTC-1.csv", "date,open,high,low,close,volume,Adj Close\n2024-01-01,1,2,0.5,1.5,3,9\n"
                                       "2024-01-02,1,2,0.5,1.5,3,9\n")
    frame, notes = read_all([a, b], SourceOptions(asset="BTC", keep_extra=True))
    assert frame.columns == [*BAR_COLUMNS, "adj_close"]
    assert frame["ts"].to_list() == [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]
    assert frame["adj_close"].to_list() == [9.0, 9.0, None]
    assert has_note(notes, "not in (asset, ts) order")
    assert all(n.startswith((a, b)) or "order" in n for n in notes)


def test_duplicate_across_files_names_both(tmp_path):
    a = write(tmp_path, "A1.csv", "date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,3\n"
                                  "2024-01-02,1,2,0.5,1.5,3\n")
    b = write(tmp_path, "A2.csv", "date,open,high,low,close,volume\n2024-01-02,1,2,0.5,1.5,3\n"
                                  "2024-01-03,1,2,0.5,1.5,3\n")
    err = rejected([a, b], asset="A")
    assert (err.rule, err.file, err.row) == ("duplicate-timestamp", b, 2)
    assert a in str(err) and b in str(err) and "row 3" in str(err)


def test_list_source_files(tmp_path):
    for name in ("b/2.csv", "a.parquet", "b/c/1.json", "z.csv.gz", ".hidden.csv", "notes.txt", ".git/x.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = list_source_files(str(tmp_path))
    assert found == sorted(os.path.join(tmp_path, n) for n in ("b/2.csv", "a.parquet", "b/c/1.json", "z.csv.gz"))
    assert list_source_files(str(tmp_path / "a.parquet")) == [str(tmp_path / "a.parquet")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInput) as info:
        list_source_files(str(tmp_path / "empty"))
    assert info.value.rule == "no-source-files"
    with pytest.raises(InvalidInput) as info:
        list_source_files(str(tmp_path / "nope"))
    assert info.value.rule == "missing-file"
