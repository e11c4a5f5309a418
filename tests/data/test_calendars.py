"""Calendars, periods per year and gaps, measured from the data (not assumed 24/7)."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core.workspace import Workspace
from strates.data import calendars
from strates.data.config import Config
from strates.data.ingest import run

UTC = dt.UTC


def _easter(year: int) -> dt.date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def _nth(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th `weekday` of the month (n = -1: the last)."""
    if n > 0:
        first = dt.date(year, month, 1)
        return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _nyse_holidays(year: int) -> list[dt.date]:
    """NYSE-like full closures of a year (~9-10): fixed dates moved off weekends, Monday
    holidays, Good Friday and Thanksgiving."""
    fixed = [dt.date(year, 1, 1), dt.date(year, 7, 4), dt.date(year, 12, 25)]
    fixed += [dt.date(year, 6, 19)] if year >= 2022 else []
    moved = [d - dt.timedelta(days=1) if d.weekday() == 5 else d + dt.timedelta(days=1) if d.weekday() == 6 else d
             for d in fixed]
    return [*moved, _nth(year, 1, 0, 3), _nth(year, 2, 0, 3), _nth(year, 5, 0, -1), _nth(year, 9, 0, 1),
            _nth(year, 11, 3, 4), _easter(year) - dt.timedelta(days=2)]


def nyse_days(start: str, end: str) -> np.ndarray:
    """Weekdays in [start, end) minus NYSE-like holidays. datetime64[D] [N]."""
    holidays = [d for y in range(int(start[:4]), int(end[:4]) + 1) for d in _nyse_holidays(y)]
    days = np.arange(np.datetime64(start), np.datetime64(end))
    return days[np.is_busday(days, holidays=np.array(sorted(holidays), dtype="datetime64[D]"))]


def ohlcv(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 1000 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return {"Open": close, "High": close * 1.01, "Low": close * 0.99, "Close": close, "Adj Close": close,
            "Volume": rng.integers(1_000, 9_000, n).astype(float)}


@pytest.fixture(scope="module")
def daily_index(tmp_path_factory) -> str:
    """A 20-year daily index file as yfinance saves it: US dates, weekdays minus holidays."""
    days = nyse_days("2005-01-01", "2025-01-01")
    dates = pl.Series(days.astype("datetime64[ms]")).dt.strftime("%-m/%-d/%Y")
    path = tmp_path_factory.mktemp("src") / "GSPC.csv"
    pl.DataFrame({"Date": dates, **ohlcv(len(days))}).write_csv(path)
    return str(path)


def test_daily_index_file_has_252_bars_a_year_and_no_weekend_gaps(daily_index, tmp_path):
    lines = pathlib.Path(daily_index).read_text().splitlines()
    assert lines[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    assert lines[1].startswith("1/3/2005,")
    m = run(Config(sources=(daily_index,)), Workspace(tmp_path / "ws")).manifest
    s = m.summary
    a = s["assets"]["GSPC"]
    assert a["rows"] == len(nyse_days("2005-01-01", "2025-01-01")) > 5000
    assert a["calendar"] == s["calendar"] == "weekdays"
    assert 251 < a["periods_per_year"] < 253 and isinstance(a["periods_per_year"], float)
    assert 251 < s["periods_per_year"] < 253 and isinstance(s["periods_per_year"], float)
    # ~1,040 weekends were counted as gaps before; the ~180 holidays are closures, not gaps
    assert a["gaps"] == a["missing_bars"] == s["gaps"]["count"] == 0
    assert 170 < a["closures"] < 200
    assert any("calendar weekdays: GSPC" in n and "closures" in n for n in s["notes"])


def test_cli_json_prints_periods_per_year_and_gaps_per_asset(daily_index, tmp_path):
    res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "--json", "ingest", "--source", daily_index],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    asset = json.loads(res.stdout)["summary"]["assets"]["GSPC"]
    assert 251 < asset["periods_per_year"] < 253 and asset["gaps"] == 0 and asset["calendar"] == "weekdays"
    res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "ingest", "--source", daily_index])
    assert res.exit_code == 0 and "bars a year (weekdays)" in res.stdout


def test_embedded_dataset_is_8766_bars_a_year(tmp_path):
    res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "--json", "ingest"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    s = json.loads(res.stdout)["summary"]
    assert s["calendar"] == "24/7" and s["periods_per_year"] == pytest.approx(8766, abs=1)
    assert all(a["periods_per_year"] == pytest.approx(8766, abs=1) for a in s["assets"].values())
    assert all(a["calendar"] == "24/7" and a["gaps"] == 0 for a in s["assets"].values())


def _session_times(days: np.ndarray) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(str(d)) + dt.timedelta(hours=9, minutes=30 + 60 * h)
            for d in days for h in range(7)]


def test_hourly_session_file_has_the_session_calendar(tmp_path):
    """Hourly bars 09:30-15:30 New York time on trading days: ~7 x 252 = 1,764 bars a year."""
    local = _session_times(nyse_days("2022-01-01", "2024-01-01"))
    naive = tmp_path / "naive" / "SPY.csv"
    naive.parent.mkdir()
    pl.DataFrame({"Datetime": [t.strftime("%Y-%m-%d %H:%M:%S") for t in local], **ohlcv(len(local))}).write_csv(naive)
    m = run(Config(sources=(str(naive),), tz="America/New_York"), Workspace(tmp_path / "ws")).manifest
    a = m.summary["assets"]["SPY"]
    assert a["calendar"] == "weekdays 09:30-16:30 America/New_York"
    assert 1740 < a["periods_per_year"] < 1785 and a["gaps"] == 0
    assert 1740 < m.summary["periods_per_year"] < 1785
    # the same bars with UTC offsets, read without --tz: the session moves with DST in UTC
    offsets = tmp_path / "offsets" / "SPY.csv"
    offsets.parent.mkdir()
    aware = pl.Series(local).dt.replace_time_zone("America/New_York").dt.strftime("%Y-%m-%dT%H:%M:%S%:z")
    pl.DataFrame({"Datetime": aware, **ohlcv(len(local))}).write_csv(offsets)
    m = run(Config(sources=(str(offsets),)), Workspace(tmp_path / "ws")).manifest
    a = m.summary["assets"]["SPY"]
    assert a["calendar"] == "weekdays 14:30-20:30 UTC"  # the hours open all year round
    assert 1740 < a["periods_per_year"] < 1785 and a["gaps"] == 0


def utc_series(values) -> pl.Series:
    return pl.Series(values).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def test_real_gaps_are_still_reported():
    days = nyse_days("2015-01-01", "2020-01-01")
    week = (days >= np.datetime64("2017-03-06")) & (days < np.datetime64("2017-03-11"))  # a whole week lost
    clock = calendars.measure("X", utc_series(days[~week].astype("datetime64[us]")), dt.timedelta(days=1))
    assert clock.calendar.name == "weekdays" and clock.gaps.height == 1
    assert clock.gaps.row(0, named=True)["missing_bars"] == 5
    assert 251 < clock.periods_per_year < 253  # a hole is not trading time
    # single missing days far more often than holidays: data losses, counted as gaps
    lossy = days[np.arange(len(days)) % 9 != 4]
    clock = calendars.measure("Y", utc_series(lossy.astype("datetime64[us]")), dt.timedelta(days=1))
    assert clock.calendar.name == "weekdays" and clock.closures == 0 and clock.gaps.height > 100
    # 24/7 hourly bars: every missing hour is a gap, and the rate stays 8,766
    hours = pl.datetime_range(dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC), "1h",
                              eager=True).cast(pl.Datetime("us", "UTC"))
    clock = calendars.measure("Z", hours.gather([i for i in range(len(hours)) if not 100 <= i < 103]),
                              dt.timedelta(hours=1))
    assert clock.calendar.name == "24/7" and clock.gaps["missing_bars"].to_list() == [3]
    assert clock.periods_per_year == pytest.approx(8766)


def test_closures_and_gaps_of_a_session():
    """Hourly bars 10:00-17:00 UTC on weekdays for 8 weeks, with holes of each kind."""
    start = dt.datetime(2024, 1, 1)
    times = [start + dt.timedelta(days=d, hours=h) for d in range(56) for h in range(10, 17)
             if (start + dt.timedelta(days=d)).weekday() < 5]
    drop = {
        *(dt.datetime(2024, 1, 11, h) for h in range(10, 17)),  # a holiday (Thursday): closure
        *(dt.datetime(2024, 1, 19, h) for h in (14, 15, 16)),  # an early close (Friday): closure
        *(dt.datetime(2024, 1, 23, h) for h in (14, 15, 16)),  # early close, then a holiday: closure
        *(dt.datetime(2024, 1, 24, h) for h in range(10, 17)),
        dt.datetime(2024, 2, 5, 15), dt.datetime(2024, 2, 5, 16),  # lost overnight: a gap
        dt.datetime(2024, 2, 6, 10), dt.datetime(2024, 2, 6, 11),
        dt.datetime(2024, 2, 14, 12), dt.datetime(2024, 2, 14, 13),  # lost within a session: a gap
    }
    ts = utc_series([t for t in times if t not in drop])
    clock = calendars.measure("X", ts, dt.timedelta(hours=1))
    assert clock.calendar.name == "weekdays 10:00-17:00 UTC"
    assert clock.closures == 3 and clock.closure_bars == 7 + 3 + 10
    assert clock.gaps["missing_bars"].to_list() == [4, 2]
    after = clock.gaps["after"].dt.replace_time_zone(None).to_list()
    assert after == [dt.datetime(2024, 2, 5, 14), dt.datetime(2024, 2, 14, 11)]


@pytest.mark.parametrize(
    ("keep", "interval", "name"),
    [
        (lambda t: t.weekday() < 5, dt.timedelta(days=1), "weekdays"),
        (lambda t: t.weekday() in (0, 2, 4), dt.timedelta(days=1), "Mon, Wed, Fri"),
        (lambda t: (t.weekday() < 4 or (t.weekday() == 4 and t.hour < 22) or (t.weekday() == 6 and t.hour >= 22)),
         dt.timedelta(hours=1), "Sun-Fri, 120 h a week (UTC)"),  # FX: Sunday 22:00 to Friday 22:00 UTC
        (lambda t: True, dt.timedelta(days=1), "24/7"),
        (lambda t: t.weekday() < 5 and 8 <= t.hour < 17, dt.timedelta(minutes=30), "weekdays 08:00-17:00 UTC"),
    ],
)
def test_calendar_names(keep, interval, name):
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    times = [start + i * interval for i in range(int(dt.timedelta(days=56) / interval))]
    ts = utc_series([t.replace(tzinfo=None) for t in times if keep(t)])
    assert calendars.detect(ts, interval).name == name
    clock = calendars.measure("X", ts, interval)
    assert clock.gaps.height == 0


def test_short_and_coarse_data_fall_back_to_a_continuous_clock():
    days = utc_series([dt.datetime(2024, 1, d) for d in (2, 3, 4)])
    assert calendars.detect(days, dt.timedelta(days=1)).continuous
    clock = calendars.measure("X", days, dt.timedelta(days=1))
    assert clock.periods_per_year == pytest.approx(365.25)
    weekly = utc_series([dt.datetime(2024, 1, 1) + dt.timedelta(weeks=w) for w in range(20)])
    assert calendars.detect(weekly, dt.timedelta(weeks=1)).name == "every 7d"
