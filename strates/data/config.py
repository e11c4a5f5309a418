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

FORMATS = ("auto", "csv", "parquet", "bybit-json", "binance-csv")
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
    # filled in by resolve(): the files behind `sources`, with content hashes
    files: tuple[SourceFile, ...] = ()

    def __post_init__(self):
        coerce_choices(self)
        if self.format not in FORMATS:
            raise ConfigError(
                f"unknown format {self.format!r}", fix=f"use one of: {', '.join(FORMATS)}", field="format"
            )
        parse_split(self.split)
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
