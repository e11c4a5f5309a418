"""ALFRED vintage files: each revision is seen only from its own vintage date on."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import polars as pl
import pytest

from strates.core.errors import InvalidInput
from strates.core.workspace import Workspace
from strates.data.config import Config, MacroSource
from strates.data.ingest import load_bars, run
from strates.data.macro import asof_join, read_macro_file, seen_values
from strates.data.schema import BAR_SCHEMA, MACRO_SCHEMA

from files import utc, write  # tests/support

# Q4 2023 first released 2024-01-25 (100.0), revised 2024-02-28 (100.5), then again 2024-05-10 (101.0),
# after Q1 2024 was first released (2024-04-25, 200.0); Q1 revised 2024-05-30 (201.0).
LONG = (
    "realtime_start,realtime_end,date,value\n"
    "2024-01-25,2024-02-27,2023-10-01,100.0\n"
    "2024-02-28,2024-05-09,2023-10-01,100.5\n"
    "2024-05-10,9999-12-31,2023-10-01,101.0\n"
    "2024-04-25,2024-05-29,2024-01-01,200.0\n"
    "2024-05-30,9999-12-31,2024-01-01,201.0\n"
)
WIDE = (
    "observation_date,GDPC1_20240125,GDPC1_20240228,GDPC1_20240425,GDPC1_20240510,GDPC1_20240530\n"
    "2023-10-01,100.0,100.5,100.5,101.0,101.0\n"
    "2024-01-01,.,.,200.0,200.0,201.0\n"
)
EXPECTED = {  # bar time -> what it may see
    utc(2024, 1, 25, 23): None,  # released during the 25th, seen from 00:00 UTC the next day
    utc(2024, 1, 26): 100.0,
    utc(2024, 2, 28, 12): 100.0,  # the revision is not seen on its release day
    utc(2024, 2, 29): 100.5,
    utc(2024, 4, 26): 200.0,  # Q1 released: the newest observation date
    utc(2024, 5, 11): 200.0,  # Q4's later revision does not replace the newer Q1 value
    utc(2024, 5, 31): 201.0,  # Q1's own revision does
}


def bars_at(times: list[datetime]) -> pl.DataFrame:
    return pl.DataFrame([("A", t, 1.0, 1.0, 1.0, 1.0, 1.0) for t in times], schema=BAR_SCHEMA, orient="row")


@pytest.mark.parametrize(("layout", "text"), [("long", LONG), ("wide", WIDE)])
def test_a_revision_is_not_seen_before_its_vintage_date(tmp_path, layout, text):
    read = read_macro_file(write(tmp_path, "GDPC1.csv", text))
    assert read.frame.schema == pl.Schema(MACRO_SCHEMA)
    assert read.series["GDPC1"].vintage and read.series["GDPC1"].note is None
    assert any(f"({layout} layout" in n for n in read.notes)
    assert any("GDPC1: 2 observations over 5 vintages (3 revisions)" in n for n in read.notes)
    # one row per first release and per revision, available the day after its vintage date
    assert read.frame.height == 5
    assert read.frame.filter(pl.col("value") == 100.5)["available"].to_list() == [utc(2024, 2, 29)]
    out = asof_join(bars_at(list(EXPECTED)), read.frame)
    assert dict(zip(EXPECTED, out["macro_GDPC1"].to_list(), strict=True)) == EXPECTED


def test_a_latest_vintage_file_leaks_the_revision(tmp_path):
    """The same data as a plain FRED download (latest values): the revised 101.0 shows at the
    first release. This is what the vintage file prevents, and what the notes warn of."""
    read = read_macro_file(write(tmp_path, "q.csv", "observation_date,GDPC1\n2023-10-01,101.0\n2024-01-01,201.0\n"),
                           lag=timedelta(days=116))
    out = asof_join(bars_at([utc(2024, 1, 26)]), read.frame)
    assert out["macro_GDPC1"].to_list() == [101.0]
    assert not read.series["GDPC1"].vintage and "may leak" in str(read.series["GDPC1"].note)


def test_long_layout_with_a_series_column_and_a_given_safety_lag(tmp_path):
    text = ("date,realtime_start,UNRATE\n"
            "2024-01-01,2024-02-02,3.7\n2024-01-01,2024-03-08,3.8\n2024-02-01,2024-03-08,3.9\n")
    read = read_macro_file(write(tmp_path, "u.csv", text), lag=timedelta(hours=14))
    assert read.frame["available"].to_list() == [utc(2024, 2, 2, 14), utc(2024, 3, 8, 14), utc(2024, 3, 8, 14)]
    seen = seen_values(read.frame)
    assert seen["seen"].to_list() == [3.7, 3.8, 3.9]  # same instant: the newer observation wins


def test_vintage_join_matches_a_brute_force_reference():
    rng = np.random.default_rng(0)
    rows = []
    for k in range(12):  # 12 monthly observations, each released after its month and revised up to 3 times
        observed = utc(2020, 1, 1) + timedelta(days=30 * k)
        first = observed + timedelta(days=int(rng.integers(25, 60)))
        rows += [("S", observed, first + timedelta(days=int(rng.integers(0, 200)) * (r > 0)), float(k * 10 + r))
                 for r in range(int(rng.integers(1, 4)))]
    macro = pl.DataFrame(rows, schema=MACRO_SCHEMA, orient="row").unique(["observed", "available"])
    times = [utc(2020, 1, 1) + timedelta(days=d, hours=12) for d in range(0, 700, 3)]
    out = asof_join(bars_at(times), macro)
    for t, got in zip(times, out["macro_S"].to_list(), strict=True):
        known = [r for r in macro.iter_rows() if r[2] <= t]
        if not known:
            assert got is None
            continue
        newest = max(r[1] for r in known)
        expect = max((r for r in known if r[1] == newest), key=lambda r: r[2])[3]
        assert got == expect, t


def test_bad_vintage_files(tmp_path):
    header = "date,realtime_start,value\n"
    with pytest.raises(InvalidInput) as info:
        read_macro_file(write(tmp_path, "a.csv", "realtime_start,value\n2024-01-01,1\n"))
    assert info.value.rule == "missing-column"
    with pytest.raises(InvalidInput) as info:
        read_macro_file(write(tmp_path, "b.csv", f"{header}2024-01-01,2024-02-01,1\n2024-02-01,soon,2\n"))
    assert (info.value.rule, info.value.row, info.value.column) == ("unparseable-timestamp", 3, "realtime_start")
    with pytest.raises(InvalidInput) as info:
        read_macro_file(write(tmp_path, "c.csv", f"{header}2024-01-01,2024-02-01,1\n2024-01-01,2024-02-01,2\n"))
    assert info.value.rule == "duplicate-timestamp"
    with pytest.raises(InvalidInput) as info:
        read_macro_file(write(tmp_path, "d.csv", "observation_date,X_20240101,X_20240201\n2024-01-01,1,abc\n"))
    assert (info.value.rule, info.value.column) == ("unparseable-number", "X_20240201")


def test_ingest_with_a_vintage_file(tmp_path):
    days = pl.date_range(datetime(2024, 1, 1), datetime(2024, 6, 28), "1d", eager=True)
    days = days.filter(days.dt.weekday() <= 5)
    n = len(days)
    close = np.linspace(10, 12, n)
    pl.DataFrame({"Date": days.dt.strftime("%Y-%m-%d"), "Open": close, "High": close + 1, "Low": close - 1,
                  "Close": close, "Volume": np.full(n, 100.0)}).write_csv(tmp_path / "ACME.csv")
    vintages = write(tmp_path, "GDPC1.csv", LONG)
    latest = write(tmp_path, "GDP.csv", "observation_date,GDP\n2023-10-01,1.0\n2024-01-01,2.0\n")
    ws = Workspace(tmp_path / "ws")
    cfg = Config(sources=(str(tmp_path / "ACME.csv"),), macro=(MacroSource(vintages), MacroSource(latest)))
    m = run(cfg, ws).manifest
    bars = load_bars(ws, m)
    seen = dict(zip(bars["ts"].dt.date(), bars["macro_GDPC1"], strict=True))
    assert seen[datetime(2024, 2, 28).date()] == 100.0 and seen[datetime(2024, 2, 29).date()] == 100.5
    assert seen[datetime(2024, 5, 13).date()] == 200.0 and seen[datetime(2024, 5, 31).date()] == 201.0
    entry = m.summary["macro"]["GDPC1"]
    assert entry["vintage"] is True and entry["vintage_rows"] == 5 and entry["observations"] == 2
    assert entry["revisions_may_leak"] is False and m.summary["macro"]["GDP"]["revisions_may_leak"] is True
    assert "note" not in entry
    assert entry["lag_seconds_min"] == (utc(2024, 4, 26) - utc(2024, 1, 1)).total_seconds()  # from first releases
    assert m.summary["macro"]["GDP"]["vintage"] is False and "may leak" in m.summary["macro"]["GDP"]["note"]
    assert any("GDP:" in n and "revisions may leak" in n for n in m.summary["notes"])
