"""Bar calendars measured from the data: when an asset trades, its bars per year, its gaps.

Glossary (all times in microseconds, `int64`):

| name | meaning |
| ---- | ------- |
| local | the bar's open time as wall-clock time in `tz` (the zone of the source's naive timestamps; UTC by default) |
| slot  | a bar's place in the week: `local - Monday 00:00` modulo one week |
| open slots `S` [K] | the slots the asset trades: present in at least `OPEN_SHARE` (75%) of the weeks spanned |

**Calendar.** With bars of one day or less whose interval divides a week, and at least a
week of bars, the open slots are read off the data: a slot is open when the asset has a
bar there in at least 75% of the weeks the data spans (so holidays, which empty a
weekday slot in ~2-10% of weeks, and a DST shift of a session seen in UTC, which moves a
slot for ~35-40% of the year, do not change it). All slots open: `24/7`. Otherwise the
calendar is named from its days and hours: `weekdays`, `weekdays 09:30-16:00
America/New_York`, `Sun-Fri, 120 h a week (UTC)`. Coarser bars, or under a week of
data: a continuous clock (every interval is a bar).

**Gaps.** Between consecutive bars `a < b`, the missing bars are the open slots strictly
between them (`C(b) - C(a) - [a is open]`, with `C(t)` = open slots before `t` counted
from 1970-01-05, a Monday). Weekends and nights of a session calendar are thus never
gaps. A **closure** is a missing stretch that a market closure explains: between bars on
different local days, at most one whole day's open slots (a holiday) plus the end of the
first bar's day (an early close) or the start of the next bar's day (a late open), not
both (that is data lost overnight). Closures are counted apart and not reported as gaps,
unless there are more than `MAX_CLOSURES_PER_YEAR` (20) a year (exchanges close on 9-16
weekdays a year): then they are data losses and all count as gaps. On a continuous clock
every missing interval is a gap.

**Periods per year.** Bars observed per open slot over the span from the first to the
last bar, gaps left out, times the calendar's open slots per year (`K` x 365.25 / 7):
`bars / (open slots in [first, last] - missing bars of gaps) x K x 365.25 / 7`. So the
edges cost nothing (the span starts and ends on a bar), holidays lower the figure
(weekdays minus ~9 holidays: ~252 a year) and data holes do not (they are not trading
time). Hourly 24/7 bars: 8,766 (= 24 x 365.25).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools

import numpy as np
import polars as pl

from strates.data.schema import TS_DTYPE

DAY = 86_400_000_000
WEEK = 7 * DAY
MONDAY = 4 * DAY  # 1970-01-05 00:00, the first Monday after the epoch
YEAR = 365.25 * DAY
OPEN_SHARE = 0.75
MAX_CLOSURES_PER_YEAR = 20
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GAP_SCHEMA = {"asset": pl.String(), "after": TS_DTYPE, "before": TS_DTYPE, "missing_bars": pl.Int64()}


@dataclasses.dataclass(frozen=True)
class Calendar:
    """When bars are expected. `slots` [K]: the open slots (µs after Monday 00:00 local
    time, sorted); empty for a continuous clock (a bar every `interval_us`)."""

    name: str
    tz: str
    interval_us: int
    slots: tuple[int, ...] = ()

    @property
    def continuous(self) -> bool:
        return not self.slots

    @property
    def per_year(self) -> float:
        """Open slots in a 365.25-day year."""
        return len(self.slots) * YEAR / WEEK if self.slots else YEAR / self.interval_us

    @property
    def day_slots(self) -> int:
        """The most open slots of any one day (a whole day's closure)."""
        days = np.asarray(self.slots, dtype=np.int64) // DAY
        return int(np.bincount(days).max()) if len(days) else 1


@dataclasses.dataclass(frozen=True)
class Clock:
    """One asset's (or the union's) measured clock. `gaps`: GAP_SCHEMA rows."""

    calendar: Calendar
    bars: int
    periods_per_year: float
    gaps: pl.DataFrame
    closures: int
    closure_bars: int


def local_us(ts: pl.Series, tz: str) -> np.ndarray:
    """Wall-clock time in `tz` of Datetime(us, UTC) values, as int64 µs since 1970 [N]."""
    if tz != "UTC":
        ts = ts.dt.convert_time_zone(tz)
    return ts.dt.replace_time_zone(None).cast(pl.Int64).to_numpy()


def detect(ts: pl.Series, interval: dt.timedelta, *, tz: str = "UTC") -> Calendar:
    """The calendar of one asset's bars `ts` [N] (sorted, unique, Datetime(us, UTC))."""
    iv = int(interval / dt.timedelta(microseconds=1))
    span = int((ts[-1] - ts[0]) / dt.timedelta(microseconds=1)) + iv if len(ts) else 0
    if iv > DAY or WEEK % iv:
        return Calendar(f"every {fmt_interval(iv)}", tz, iv)
    if span < WEEK:
        return Calendar("continuous (under a week of bars)", tz, iv)
    local = local_us(ts, tz)
    slot = (local - MONDAY) % WEEK
    values, counts = np.unique(slot, return_counts=True)
    lo, hi = local[0] - MONDAY - values, local[-1] - MONDAY - values
    weeks = hi // WEEK - (-(lo // -WEEK)) + 1  # weeks in which this slot lies inside [first, last]
    slots = values[counts >= OPEN_SHARE * np.maximum(weeks, 1)]
    if len(slots) == 0:
        return Calendar("continuous (no weekly pattern)", tz, iv)
    if len(slots) >= WEEK // iv:
        return Calendar("24/7", tz, iv)
    return Calendar(_name(slots, iv, tz), tz, iv, tuple(int(s) for s in slots))


def measure(asset: str, ts: pl.Series, interval: dt.timedelta, *, tz: str = "UTC",
            calendar: Calendar | None = None) -> Clock:
    """Gaps, closures and periods per year of `ts` [N] (sorted, unique) on its calendar."""
    cal = calendar or detect(ts, interval, tz=tz)
    iv = cal.interval_us
    n = len(ts)
    utc = ts.cast(pl.Int64).to_numpy()
    step = np.diff(utc)
    if cal.continuous:
        missing = np.where(step > iv, step // iv - 1, 0)
        expected = (utc[-1] - utc[0]) // iv + 1 if n else 0
        closure = np.zeros(len(step), dtype=bool)
    else:
        local = local_us(ts, cal.tz)
        before, is_open = _count_before(cal, local)  # C(t) [N], [t is an open slot] [N]
        missing = np.where(step > iv, np.maximum(np.diff(before) - is_open[:-1], 0), 0)
        expected = int(before[-1] + is_open[-1] - before[0])
        closure = _closures(cal, local, before, is_open, missing)
        years = max((utc[-1] - utc[0]) / YEAR, 0.25)
        if closure.sum() > MAX_CLOSURES_PER_YEAR * years:
            closure[:] = False
    gap = (missing > 0) & ~closure
    idx = np.flatnonzero(gap)
    gaps = pl.DataFrame(
        {"asset": [asset] * len(idx), "after": ts.gather(idx), "before": ts.gather(idx + 1),
         "missing_bars": missing[idx].astype(np.int64)},
        schema=GAP_SCHEMA,
    )
    observed = max(int(expected) - int(missing[gap].sum()), 1)
    return Clock(cal, n, n / observed * cal.per_year, gaps, int(closure.sum()), int(missing[closure].sum()))


def _count_before(cal: Calendar, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """C(t): open slots from 1970-01-05 up to (not including) each local time [N], and
    whether each time is itself an open slot [N]."""
    s = np.asarray(cal.slots, dtype=np.int64)
    week, rest = np.divmod(local - MONDAY, WEEK)
    pos = np.searchsorted(s, rest, side="left")
    is_open = (pos < len(s)) & (s[np.minimum(pos, len(s) - 1)] == rest)
    return week * len(s) + pos, is_open


def _closures(cal: Calendar, local: np.ndarray, before: np.ndarray, is_open: np.ndarray,
              missing: np.ndarray) -> np.ndarray:
    """Which missing stretches [N-1] a market closure explains: between bars on different
    local days, made of at most one whole trading day plus either the end of the first
    bar's day (an early close) or the start of the next bar's day (a late open), not both
    (that is data lost overnight)."""
    day_a, day_b = local[:-1] // DAY, local[1:] // DAY
    end_a, _ = _count_before(cal, (day_a + 1) * DAY)
    start_b, _ = _count_before(cal, day_b * DAY)
    tail = end_a - before[:-1] - is_open[:-1]  # open slots left on the first bar's day
    head = before[1:] - start_b  # open slots before the next bar on its day
    whole = missing - np.maximum(tail, 0) - np.maximum(head, 0)
    return (missing > 0) & (day_b > day_a) & ~((tail > 0) & (head > 0)) & (whole <= cal.day_slots)


def given(kind: str, ts: pl.Series, interval: dt.timedelta, *, tz: str = "UTC") -> Calendar:
    """A calendar named by the user instead of measured: `24/7` (every interval a bar) or
    `weekdays` (every interval of Monday to Friday, local time in `tz`, at the phase of the
    first bar, so daily bars stamped 16:00 expect 16:00). Bars coarser than a day, or an
    interval that does not divide a day, can only be `24/7`."""
    iv = int(interval / dt.timedelta(microseconds=1))
    if kind == "24/7":
        return Calendar("24/7 (given)", tz, iv)
    if iv > DAY or DAY % iv:
        from strates.core.errors import ConfigError

        raise ConfigError(f"a weekdays calendar needs bars that divide a day; these bars are {fmt_interval(iv)}",
                          fix="use --calendar 24/7 or auto", field="calendar")
    phase = int((local_us(ts[:1], tz)[0] - MONDAY) % iv) if len(ts) else 0
    slots = tuple(day * DAY + phase + k * iv for day in range(5) for k in range(DAY // iv))
    return Calendar("weekdays (given)", tz, iv, slots)


def measure_all(bars: pl.DataFrame, interval: dt.timedelta, *, tz: str = "UTC",
                calendar: str | None = None) -> dict[str, Clock]:
    """`measure` for every asset of `bars` (sorted by asset, ts), in asset order, on its
    measured calendar or on the one named by `calendar` (see `given`)."""
    out = {}
    for (asset,), part in bars.select("asset", "ts").partition_by("asset", maintain_order=True, as_dict=True).items():
        cal = given(calendar, part["ts"], interval, tz=tz) if calendar else None
        out[asset] = measure(asset, part["ts"], interval, tz=tz, calendar=cal)
    return dict(sorted(out.items()))


def union_clock(bars: pl.DataFrame, interval: dt.timedelta, *, tz: str = "UTC",
                start: dt.datetime, end: dt.datetime, calendar: str | None = None) -> tuple[Clock, dict]:
    """The clock of the union of every asset's bar times (the clock an equal-weight
    portfolio is valued on), measured in [start, end) (a training period), and where it
    was measured (`start`, `end`, `bars`, `measured_on`). When that period holds under a
    week of bars (too short to tell a calendar), the whole data is measured instead."""
    ts = bars["ts"].unique().sort()
    inside = ts.filter((ts >= start) & (ts < end))
    what = "the union of the assets' bar times in the first fold's training period"
    if len(inside) < 2 or inside[-1] - inside[0] + interval < dt.timedelta(days=7):
        inside, start, end = ts, ts[0], ts[-1] + interval
        what = "the union of the assets' bar times over all the data (the training period holds under a week)"
    cal = given(calendar, inside, interval, tz=tz) if calendar else None
    clock = measure("<union>", inside, interval, tz=tz, calendar=cal)
    return clock, {"start": start, "end": end, "bars": len(inside), "measured_on": what}


def _name(slots: np.ndarray, iv: int, tz: str) -> str:
    days = sorted({int(s // DAY) for s in slots})
    label = _days_label(days)
    if iv >= DAY:
        return label
    hours = {d: tuple(int(s % DAY) for s in slots if s // DAY == d) for d in days}
    shapes = set(hours.values())
    if len(shapes) == 1:
        times = shapes.pop()
        if len(times) * iv == DAY:
            return label
        if all(b - a == iv for a, b in itertools.pairwise(times)):
            return f"{label} {_hhmm(times[0])}-{_hhmm(times[-1] + iv)} {tz}"
    return f"{label}, {len(slots) * iv / 3_600_000_000:g} h a week ({tz})"


def _days_label(days: list[int]) -> str:
    if days == [0, 1, 2, 3, 4]:
        return "weekdays"
    if len(days) == 7:
        return "every day"
    for start in days:  # a run of consecutive days, possibly across Sunday -> Monday
        run = [(start + i) % 7 for i in range(len(days))]
        if sorted(run) == days and len(days) >= 3:
            return f"{DAY_NAMES[run[0]]}-{DAY_NAMES[run[-1]]}"
    return ", ".join(DAY_NAMES[d] for d in days)


def _hhmm(us: int) -> str:
    minutes = us // 60_000_000
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def fmt_interval(us: int) -> str:
    seconds = us // 1_000_000
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
