"""When a macro value becomes public: default publication lags, per series and per frequency.

FRED dates a value at the start of the period it refers to (January's CPI at 2024-01-01,
the first quarter's GDP at 2024-01-01), so a lag counts from the period's start. A value
is visible to a bar at `ts` only once `available <= ts`. Every default errs late: a value
seen a little late costs a little signal; one seen before its release is a leak that
invalidates a backtest. The exact alternative is a vintage file (`strates.data.vintage`),
whose release dates replace these rules.

Rules (`Lag`): a fixed number of days after the observation date, or, for daily series,
**the day after the next US business day** (00:00 UTC, i.e. 19:00-20:00 US Eastern time of
the release day): Monday's value at Wednesday 00:00 UTC, Friday's at Tuesday 00:00 UTC
(Wednesday when Monday is a federal holiday). Daily FRED series are published the next
business day (H.15 yields and the effective fed funds rate: 16:15 and 09:00 ET; SOFR
08:00 ET). US business days: weekdays except federal holidays (`us_holidays`; a few more
closed days than the markets', which only makes values later).

Per-series defaults (`SERIES_LAGS`, FRED series ids). Each is the latest release seen from
2013 to early 2026 (normal calendars of BLS, BEA, Census and the Federal Reserve, plus the
releases delayed by the 2013, 2018-19 and 2025 shutdowns), rounded up. Each line gives the
series, **the default lag**, then the latest release seen (observation date -> release):

- GDP, GDPC1, A191RL1Q225SBEA, GDPDEF, ECIALLCIV: **180 d**; normal advance <= 121 d (Q2 on Jul 31);
  Q3 2025 initial estimate on 2025-12-23: 175 d
- PCE, PCEPI, PCEPILFE, PCEC96, PI, DSPI, DSPIC96, PSAVERT, W875RX1: **120 d**; normal 56-61 d; Oct
  2025 on 2026-01-22: 113 d
- JTSJOL, JTSQUR, JTSHIL, JTSLDL, JTSTSL: **105 d**; normal ~65-70 d; Sep 2025 on 2025-12-09: 99 d
- BOPGSTB: **105 d**; normal ~66 d; Sep 2025 on 2025-12-11: 101 d
- UNRATE, PAYEMS, CIVPART, EMRATIO, U6RATE, CES0500000003, USPRIV, MANEMP: **85 d**; normal 32-38 d
  (first Friday); Sep 2025 on 2025-11-20: 80 d
- RSAFS, RSXFS: **90 d**; normal ~45 d; Dec 2018 on 2019-02-14: 75 d; Sep 2025 on 2025-11-25: 85 d
- CPIAUCSL, CPIAUCNS, CPILFESL, CPILFENS: **62 d**; normal 40-46 d; Sep 2013 on 2013-10-30: 59 d
- INDPRO, TCU (Fed G.17, built on agency data): **120 d**; normal ~48 d; Sep 2025 postponed past the
  shutdown (monthly default)
- CSUSHPINSA, CSUSHPISA (S&P Case-Shiller): **95 d**; last Tuesday two months after the month:
  <= 90 d
- TOTALSL (Fed G.19): **75 d**; fifth business day of the second month after: ~68 d
- M2SL, M1SL (Fed H.6): **65 d**; fourth Tuesday of the next month: <= 59 d
- FEDFUNDS, GS10, GS2, TB3MS (monthly averages of daily rates): **35 d**; first business days of the
  next month
- UMCSENT: **35 d**; final reading late in the same month
- WM2NS (weekly M2, Fed H.6, published monthly): **65 d**; the month's weeks, fourth Tuesday of the
  next month
- CCSA: **14 d**; week ending Saturday, released on the Thursday 12 days later
- TOTBKCR (Fed H.8): **14 d**; week ending Wednesday, released Friday of the next week: ~10 d, later
  in holiday weeks
- STLFSI4: **9 d**; week ending Friday, released the next Thursday (Friday in holiday weeks)
- NFCI, ANFCI: **8 d**; week ending Friday, released the next Wednesday (Thursday in holiday weeks)
- ICSA, IC4WSA: **7 d**; week ending Saturday, released the next Thursday 08:30 ET
- WALCL, WRESBAL, WTREGEN (Fed H.4.1): **4 d**; Wednesday level, released Thursday 16:30 ET (Friday
  in holiday weeks)
- MORTGAGE30US, MORTGAGE15US: **2 d**; dated the Thursday of release (12:00 ET)
- DEX* (H.10 exchange rates), DTWEXBGS, DTWEXAFEGS, DTWEXEMEGS: **10 d**; daily rates published
  weekly, on Monday
- DCOILWTICO, DCOILBRENTEU, DHHNGSP (EIA spot prices): **10 d**; daily prices published weekly
- DGS*, DTB3, DTB6, T10Y2Y, T10Y3M, T10YIE, T5YIE, T5YIFR, DFII5, DFII10, DFF, EFFR, SOFR, OBFR,
  DPRIME, DFEDTARU, DFEDTARL, DAAA, DBAA, VIXCLS, VXNCLS, SP500, NASDAQCOM, DJIA, BAMLH0A0HYM2,
  BAMLC0A0CM: **next business day**; as above

Defaults by frequency for other series (`LAG_TABLE`), from the median spacing of the
observation dates; each covers the slowest common series of its frequency:

| spacing (median) | frequency | default lag after the observation date |
| ---------------- | --------- | -------------------------------------- |
| <= 4 days   | daily     | the day after the next US business day |
| 5-10 days   | weekly    | 14 days (Fed H.8: ~10 d, more in holiday weeks) |
| 11-45 days  | monthly   | 120 days (PCE and industrial production after the 2025 shutdown: 113 d) |
| 46-120 days | quarterly | 185 days (GDP after the 2025 shutdown: 175 d; Fed Z.1: ~165 d) |
| > 120 days  | annual    | 640 days (Census median household income: September of the next year, ~625 d) |

Not covered: weekly releases suspended during a shutdown (claims in October 2025) and
delays beyond those listed. Pass `PATH@LAG` for another lag, or a vintage file for the
exact release dates.

CFTC Commitments of Traders (`COT_LAG`): the observation is the "as of" Tuesday and the
report is released on Friday at 15:30 US Eastern time (20:30 UTC in winter), later in
weeks with a federal holiday; the default of 7 days (the next Tuesday 00:00 UTC) covers
those weeks too.
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import numpy as np
import polars as pl

from strates.core.errors import InvalidInput
from strates.data.schema import TS_DTYPE

COT_LAG = timedelta(days=7)


@dataclasses.dataclass(frozen=True)
class Lag:
    """When a value dated `observed` is public: move `business_days` US business days
    forward from its date (0: stay), then add `after`."""

    after: timedelta = timedelta(0)
    business_days: int = 0

    def available(self, observed: pl.Series) -> pl.Series:
        """`available` [N] Datetime(us, UTC) for `observed` [N] Datetime(us, UTC)."""
        if not self.business_days:
            return (observed + self.after).cast(TS_DTYPE).rename("available")
        days = observed.dt.date().to_numpy().astype("datetime64[D]")
        if len(days) == 0:
            return pl.Series("available", [], dtype=TS_DTYPE)
        years = days.astype("datetime64[Y]").astype(int) + 1970
        holidays = us_holidays(int(years.min()), int(years.max()) + 1)
        moved = np.busday_offset(days, self.business_days, roll="forward", holidays=holidays)
        out = pl.Series("available", moved.astype("datetime64[us]")).dt.replace_time_zone("UTC")
        return (out + self.after).cast(TS_DTYPE).rename("available")

    def describe(self) -> str:
        if self.business_days:
            n = self.business_days
            head = "the next US business day" if n == 1 else f"{n} US business days later"
            return f"{fmt_duration(self.after)} after {head}" if self.after else head
        return f"{fmt_duration(self.after)} after the observation date"


NEXT_BUSINESS_DAY = Lag(after=timedelta(days=1), business_days=1)


def _days(n: int) -> Lag:
    return Lag(after=timedelta(days=n))


LAG_TABLE: tuple[tuple[str, float, Lag], ...] = (
    # frequency, largest median spacing in days, default lag
    ("daily", 4, NEXT_BUSINESS_DAY),
    ("weekly", 10, _days(14)),
    ("monthly", 45, _days(120)),
    ("quarterly", 120, _days(185)),
    ("annual", float("inf"), _days(640)),
)

_GROUPS: tuple[tuple[Lag, str], ...] = (
    (_days(180), "GDP GDPC1 A191RL1Q225SBEA GDPDEF ECIALLCIV"),
    (_days(120), "PCE PCEPI PCEPILFE PCEC96 PI DSPI DSPIC96 PSAVERT W875RX1 INDPRO TCU"),
    (_days(105), "JTSJOL JTSQUR JTSHIL JTSLDL JTSTSL BOPGSTB"),
    (_days(95), "CSUSHPINSA CSUSHPISA"),
    (_days(90), "RSAFS RSXFS"),
    (_days(85), "UNRATE PAYEMS CIVPART EMRATIO U6RATE CES0500000003 USPRIV MANEMP"),
    (_days(75), "TOTALSL"),
    (_days(65), "M2SL M1SL WM2NS"),
    (_days(62), "CPIAUCSL CPIAUCNS CPILFESL CPILFENS"),
    (_days(35), "FEDFUNDS GS10 GS2 TB3MS UMCSENT"),
    (_days(14), "CCSA TOTBKCR"),
    (_days(10), "DTWEXBGS DTWEXAFEGS DTWEXEMEGS DCOILWTICO DCOILBRENTEU DHHNGSP"),
    (_days(9), "STLFSI4"),
    (_days(8), "NFCI ANFCI"),
    (_days(7), "ICSA IC4WSA"),
    (_days(4), "WALCL WRESBAL WTREGEN"),
    (_days(2), "MORTGAGE30US MORTGAGE15US"),
    (NEXT_BUSINESS_DAY, "DGS1MO DGS3MO DGS6MO DGS1 DGS2 DGS3 DGS5 DGS7 DGS10 DGS20 DGS30 DTB3 DTB6 "
     "T10Y2Y T10Y3M T10YIE T5YIE T5YIFR DFII5 DFII10 DFF EFFR SOFR OBFR DPRIME DFEDTARU DFEDTARL "
     "DAAA DBAA VIXCLS VXNCLS SP500 NASDAQCOM DJIA BAMLH0A0HYM2 BAMLC0A0CM"),
)
SERIES_LAGS: dict[str, Lag] = {name: lag for lag, names in _GROUPS for name in names.split()}
H10_LAG = _days(10)  # every DEX* series (H.10 exchange rates, published weekly)


def series_lag(series: str) -> Lag | None:
    """The default lag of a well-known FRED series id (case-insensitive), else None."""
    key = series.strip().upper()
    if key in SERIES_LAGS:
        return SERIES_LAGS[key]
    if key.startswith("DEX") and key[3:].isalpha() and len(key) == 7:
        return H10_LAG
    return None


def frequency(observed: pl.Series, *, file: str | None = None) -> tuple[str, Lag]:
    """(frequency name, default lag) from the median spacing of the observation dates."""
    days = observed.unique().sort().diff().drop_nulls().dt.total_seconds() / 86400.0
    if days.len() == 0:
        raise InvalidInput(
            "a single observation: its frequency, hence its publication lag, is unknown",
            rule="unknown-frequency",
            fix="give the publication lag explicitly (--macro PATH@LAG, e.g. @45d)",
            file=file,
        )
    median = float(days.median())  # type: ignore[arg-type]
    for name, upper, lag in LAG_TABLE:
        if median <= upper:
            return name, lag
    raise AssertionError(median)


def default_lag(observed: pl.Series, series: str | None = None) -> Lag:
    """The default lag: the series' own (`SERIES_LAGS`) when known, else by frequency."""
    known = series_lag(series) if series else None
    return known if known is not None else frequency(observed)[1]


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th `weekday` (0 = Monday) of the month; n = -1: the last one."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: date) -> date:
    """A fixed-date holiday on a weekend is observed on the Friday before or Monday after."""
    return day - timedelta(days=1) if day.weekday() == 5 else day + timedelta(days=1) if day.weekday() == 6 else day


def us_holidays(first_year: int, last_year: int) -> np.ndarray:
    """US federal holidays (as observed) from `first_year` to `last_year`, datetime64[D]."""
    out: list[date] = []
    for y in range(first_year, last_year + 1):
        fixed = [(1, 1), (7, 4), (11, 11), (12, 25)] + ([(6, 19)] if y >= 2021 else [])
        out += [_observed(date(y, m, d)) for m, d in fixed]
        out += [
            _nth_weekday(y, 1, 0, 3),  # Martin Luther King Jr. Day
            _nth_weekday(y, 2, 0, 3),  # Washington's Birthday
            _nth_weekday(y, 5, 0, -1),  # Memorial Day
            _nth_weekday(y, 9, 0, 1),  # Labor Day
            _nth_weekday(y, 10, 0, 2),  # Columbus Day
            _nth_weekday(y, 11, 3, 4),  # Thanksgiving
        ]
    return np.array(sorted(out), dtype="datetime64[D]")


def fmt_duration(lag: timedelta) -> str:
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
