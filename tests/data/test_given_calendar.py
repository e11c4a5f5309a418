"""`--calendar`: a calendar named by the user instead of measured from the bars."""

from __future__ import annotations

import datetime as dt
import typing

import polars as pl
import pytest

from strates.core.errors import ConfigError
from strates.data import calendars
from strates.data.config import CalendarKind, Config

DAY = dt.timedelta(days=1)


def _weekdays(start: dt.datetime, days: int, *, skip: tuple[dt.date, ...] = ()) -> pl.Series:
    out = [start + i * DAY for i in range(days)]
    out = [t for t in out if t.weekday() < 5 and t.date() not in skip]
    return pl.Series("ts", out, dtype=pl.Datetime("us", "UTC"))


def test_weekdays_calendar_counts_weekends_as_closed_and_a_lost_day_as_a_closure():
    ts = _weekdays(dt.datetime(2024, 1, 1, 16, tzinfo=dt.UTC), 56, skip=(dt.date(2024, 1, 17),))
    cal = calendars.given("weekdays", ts, DAY)
    assert cal.name == "weekdays (given)" and len(cal.slots) == 5
    assert all(s % (24 * 3600 * 10**6) == 16 * 3600 * 10**6 for s in cal.slots)  # at the bars' own time of day
    clock = calendars.measure("X", ts, DAY, calendar=cal)
    assert clock.gaps.height == 0 and clock.closures == 1
    assert clock.periods_per_year == pytest.approx(39 / 40 * 5 * 365.25 / 7)  # a closure lowers it; 40 open days


def test_a_24_7_calendar_makes_every_weekend_a_gap():
    ts = _weekdays(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), 28)
    clock = calendars.measure("X", ts, DAY, calendar=calendars.given("24/7", ts, DAY))
    assert clock.calendar.name == "24/7 (given)" and clock.gaps.height == 3
    assert int(clock.gaps["missing_bars"].sum()) == 6


def test_weekdays_needs_bars_that_divide_a_day_and_the_config_lists_the_choices():
    ts = pl.Series("ts", [dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], dtype=pl.Datetime("us", "UTC"))
    with pytest.raises(ConfigError, match="divide a day"):
        calendars.given("weekdays", ts, 7 * DAY)
    as_typed = typing.cast(typing.Any, "weekdays")  # a plain string, as TOML and --set give it
    assert Config(calendar=as_typed).calendar is CalendarKind.WEEKDAYS
    with pytest.raises(ConfigError, match="24/7, weekdays"):
        Config(calendar=typing.cast(typing.Any, "weekly"))
