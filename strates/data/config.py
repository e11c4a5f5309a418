"""The ingest config: which files, how to read them, which macro series, how to split.

With no sources the embedded dataset (`strates.data.embedded`) is used, so every command
works offline. The config saved in the manifest (and hashed into the id) is *resolved*:
absolute paths with the sha256 of each file's content, so the same bytes give the same id
and a changed file gives a new one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re

from strates.core.config import coerce_choices
from strates.core.errors import ConfigError
from strates.data.embedded import EmbeddedSpec
from strates.data.split import parse_split

FORMATS = ("auto", "csv", "parquet", "bybit-json", "binance-csv", "series")
SERIES_START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the first row's time of a regular index (`--dt`)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)", re.IGNORECASE)
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> dt.timedelta:
    """`45d`, `3d20h30m`, `36h`, `1w` -> timedelta. Raises ConfigError."""
    cleaned = text.strip().replace(" ", "")
    parts = _DURATION.findall(cleaned)
    if not cleaned or "".join(f"{n}{u}" for n, u in parts).lower() != cleaned.lower():
        raise ConfigError(
            f"cannot read duration {text!r}",
            fix="write it as a sum of <number><unit> with units w, d, h, m, s, e.g. 45d or 3d20h30m",
        )
    return dt.timedelta(seconds=sum(float(n) * _UNITS[u.lower()] for n, u in parts))


_STEP = re.compile(r"(\d+(?:\.\d+)?)\s*(min|sec|w|d|h|m|s)?", re.IGNORECASE)
_STEP_UNITS = {"w": 604800, "d": 86400, "h": 3600, "min": 60, "m": 60, "sec": 1, "s": 1}


def parse_step(text: str) -> dt.timedelta:
    """The step of a regular index (`--dt`): `1h`, `15min` (or `15m`), `1d`, `1h30min`, or
    a plain number of seconds (`60`, `0.5`). Raises ConfigError."""
    cleaned = text.strip().replace(" ", "")
    parts = _STEP.findall(cleaned)
    fix = "write it as seconds (60) or <number><unit> with units w, d, h, min (or m), s, e.g. 1h or 15min"
    if not cleaned or "".join(f"{n}{u}" for n, u in parts).lower() != cleaned.lower():
        raise ConfigError(f"cannot read the step {text!r}", fix=fix, field="dt")
    if len(parts) > 1 and any(not u for _, u in parts):
        raise ConfigError(f"cannot read the step {text!r}: a number without a unit among others", fix=fix,
                          field="dt")
    return dt.timedelta(seconds=sum(float(n) * _STEP_UNITS[(u or "s").lower()] for n, u in parts))


@dataclasses.dataclass(frozen=True)
class SeriesSpec:
    """How generic series are read (`--format series`, `strates.data.series`).

    `step` (`--dt`): the step of a regular index: the rows of each system are `step` apart from `start`
    (default `SERIES_START`, 2000-01-01 00:00 UTC), and the files carry no timestamp
    column. None: every file has a timestamp column. The step is a whole number of
    seconds, at least one (the dataset records its interval in seconds)."""

    step: dt.timedelta | None = None
    start: dt.datetime | None = None

    def __post_init__(self):
        if self.step is not None:
            us = self.step / dt.timedelta(microseconds=1)
            if us < 1_000_000 or us % 1_000_000:
                raise ConfigError(
                    f"the step --dt must be a whole number of seconds, at least 1; got {self.step.total_seconds():g} s",
                    fix="give e.g. --dt 1 (a second), --dt 15min or --dt 1h; for a faster system, map one sample "
                        "to a longer time unit (the exponents are compared per period, not per second)",
                    field="dt",
                )
        if self.start is not None:
            if self.step is None:
                raise ConfigError("--start sets the first time of a regular index, which needs --dt",
                                  fix="give --dt too, or drop --start (the files' timestamp column is used)",
                                  field="start")
            if self.start.tzinfo is None:
                object.__setattr__(self, "start", self.start.replace(tzinfo=dt.UTC))

    @property
    def first(self) -> dt.datetime:
        """The time of each system's first row on a regular index."""
        return self.start or SERIES_START


@dataclasses.dataclass(frozen=True)
class MacroSource:
    """One macro file; `lag` overrides the frequency-based default publication lag."""

    path: str
    lag: dt.timedelta | None = None
    sha256: str | None = None  # filled in when resolved

    @classmethod
    def parse(cls, text: str) -> MacroSource:
        """`PATH` or `PATH@LAG` (e.g. `cpi.csv@45d`)."""
        path, sep, lag = text.rpartition("@")
        if not sep or "/" in lag or not lag:
            return cls(path=text)
        return cls(path=path, lag=parse_duration(lag))


@dataclasses.dataclass(frozen=True)
class SourceFile:
    path: str
    sha256: str


class CalendarKind(enum.StrEnum):
    """A calendar given instead of measured: every interval a bar (`24/7`), or every
    interval of Monday to Friday in the source's timezone (`weekdays`)."""

    ALWAYS = "24/7"
    WEEKDAYS = "weekdays"


@dataclasses.dataclass(frozen=True)
class Config:
    """`chaos ingest` options. Every field is saved in the dataset manifest."""

    sources: tuple[str, ...] = ()
    format: str = "auto"
    ts_column: str | None = None
    asset: str | None = None
    tz: str | None = None
    keep_extra: bool = False
    macro: tuple[MacroSource, ...] = ()
    cot_market: str | None = None
    split: str = "0.7,0.15,0.15"
    calendar: CalendarKind | None = None  # None: measured from the data (strates.data.calendars)
    embedded: EmbeddedSpec | None = None
    series: SeriesSpec | None = None  # set (SeriesSpec() by default) exactly when format is "series"
    # filled in by resolve(): the files behind `sources`, with content hashes
    files: tuple[SourceFile, ...] = ()

    def __post_init__(self):
        coerce_choices(self)
        if self.format not in FORMATS:
            raise ConfigError(
                f"unknown format {self.format!r}", fix=f"use one of: {', '.join(FORMATS)}", field="format"
            )
        parse_split(self.split)
        if self.format == "series" and self.series is None:
            object.__setattr__(self, "series", SeriesSpec())
        if self.series is not None:
            self._check_series()
        if self.sources and self.embedded is not None:
            raise ConfigError(
                "both --source files and the embedded dataset were asked for",
                fix="drop --source to use the embedded data, or drop the embedded settings",
                field="sources",
            )
        if self.tz is not None:
            import zoneinfo

            try:
                zoneinfo.ZoneInfo(self.tz)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ConfigError(
                    f"unknown timezone {self.tz!r}", fix="use an IANA name such as America/New_York or UTC", field="tz"
                ) from None

    def _check_series(self) -> None:
        if self.format != "series":
            raise ConfigError(f"series options (--dt, --start) need --format series, not {self.format!r}",
                              fix="add --format series, or drop --dt and --start", field="format")
        if not self.sources and not self.files:
            raise ConfigError("--format series reads your own files, and none were given",
                              fix="give the series files with --source (CSV or Parquet, a file or a folder)",
                              field="sources")
        if self.series is not None and self.series.step is not None and self.ts_column is not None:
            raise ConfigError("--dt sets a regular index and --ts-column names a timestamp column: choose one",
                              fix="drop --dt to read the times from the column, or drop --ts-column", field="dt")
        refused = [(name, flag) for name, flag in (("macro", "--macro"), ("cot_market", "--cot-market"),
                                                   ("keep_extra", "--keep-extra"), ("embedded", "--seed"))
                   if getattr(self, name)]
        if refused:
            flags = ", ".join(flag for _, flag in refused)
            raise ConfigError(
                f"{flags} apply to bar datasets, not to --format series",
                fix="drop them: every numeric column of a series file is a channel already (add a macro series "
                    "as a channel of the file)", field=refused[0][0],
            )
