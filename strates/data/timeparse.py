"""Reading timestamps: decide the layout from the first value, parse the column in one go.

The layout is decided from the first non-empty value of the column, never per row, and
said in a note. The whole column is then parsed with one vectorised expression; values
that do not fit come out null, and only those few are tried again with the general
layout of the same family (e.g. other UTC offsets, fractional seconds). What is still
null is explained by `TimeParser.explain`, which names the rule:

- `mixed-timezone`: a value with a UTC offset (or `Z`) among values without one, or the
  other way round. Explicit offsets that differ (a DST change) are fine: each value is
  converted exactly to UTC.
- `ambiguous-local-time`: a naive local time that happens twice or not at all in `--tz`
  because of a DST change.
- `unparseable-timestamp`: anything else, with the value.

Layouts understood:

| first value looks like | read as |
| ---------------------- | ------- |
| `2024-01-31`, `2024-01-31 14:30[:00[.123]]`, with `T` or space, `-` or `/` | ISO 8601, naive |
| the same followed by `Z` or an offset (`+01:00`, `-0500`) | ISO 8601 with offset, converted to UTC |
| `1/31/2024`, `01/31/2024 14:30[:00]` | US month/day/year, naive |
| 8 digits that form a valid date (`20240131`) | YYYYMMDD, naive |
| other integers | epoch time, unit from the magnitude (below) |

Epoch unit from the magnitude of the first value (every band covers 1973-03-03 to 5138;
every value of the column must lie in the same band, so a file cannot mix units):

| absolute value | unit |
| -------------- | ---- |
| [1e8, 1e11)  | seconds |
| [1e11, 1e14) | milliseconds |
| [1e14, 1e17) | microseconds |
| [1e17, 2^63) | nanoseconds |

Integers below 1e8 (other than YYYYMMDD dates) are rejected: they are row numbers or
dates before 1973, not a timestamp we could read without guessing.

Naive values are local time in `tz` (default UTC) and converted to UTC. Values with an
offset ignore `tz`. The result is always `Datetime("us", "UTC")`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.schema import TS_DTYPE

EPOCH_BANDS: tuple[tuple[str, int, int, int], ...] = (
    # unit, lowest, highest (exclusive), microseconds per unit as a multiplier (ns: divisor)
    ("seconds", 10**8, 10**11, 1_000_000),
    ("milliseconds", 10**11, 10**14, 1_000),
    ("microseconds", 10**14, 10**17, 1),
    ("nanoseconds", 10**17, 2**63 - 1, -1_000),
)

_ISO = re.compile(
    r"^(?P<date>\d{4}(?P<dsep>[-/])\d{1,2}(?P=dsep)\d{1,2})"
    r"(?:(?P<tsep>[T ])(?P<hm>\d{1,2}:\d{2})(?P<sec>:\d{2})?(?P<frac>\.\d+)?)?"
    r"(?P<suffix>\s*(?:Z|[+-]\d{2}(?::?\d{2})?))?$"
)
_US = re.compile(r"^\d{1,2}/\d{1,2}/\d{4}(?: (?P<hm>\d{1,2}:\d{2})(?P<sec>:\d{2})?)?$")
_INT = re.compile(r"^-?\d+$")
_AWARE = re.compile(r"\d:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_OFFSET = re.compile(r"^\s*(?P<sign>[+-])(?P<h>\d{2}):?(?P<m>\d{2})?$")


def check_tz(tz: str | None) -> str:
    """The zone name for naive timestamps ('UTC' when None); InvalidInput if unknown."""
    if tz is None:
        return "UTC"
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone '{tz}'",
            rule="unknown-timezone",
            fix="give an IANA zone name such as UTC, America/New_York or Europe/London",
        ) from None
    return tz


@dataclass(frozen=True)
class TimeParser:
    """How one timestamp column is read. `kind` is 'text', 'epoch' or 'datetime' (already
    typed, e.g. Parquet). `formats[0]` is the primary layout, the rest are fallbacks tried
    only on the values the primary could not read."""

    kind: str
    tz: str = "UTC"
    formats: tuple[str, ...] = ()
    aware: bool = False
    offset: timedelta | None = None  # a literal offset suffix in formats[0]
    band: tuple[str, int, int, int] | None = None
    first: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def raw_dtype(self) -> pl.DataType:
        """The dtype to read the raw column as (CSV fast path)."""
        return pl.Int64() if self.kind == "epoch" else pl.String()

    def expr(self, raw: pl.Expr) -> pl.Expr:
        """Parse `raw` (String, Int64 or a temporal dtype) to Datetime(us, UTC), null where
        the primary layout does not fit."""
        if self.kind == "epoch":
            assert self.band is not None
            _, lo, hi, scale = self.band
            ok = pl.when((raw >= lo) & (raw < hi))
            scaled = ok.then(raw * scale) if scale > 0 else ok.then(raw // -scale)
            return scaled.cast(TS_DTYPE)
        if self.kind == "datetime":
            return raw  # converted by the caller, who knows the dtype (see `typed_expr`)
        return self._text(raw, self.formats[0], primary=True)

    def _text(self, raw: pl.Expr, fmt: str, *, primary: bool) -> pl.Expr:
        if self.aware:
            parsed = raw.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)
            if primary and self.offset:
                parsed = parsed - pl.lit(self.offset)
            return parsed
        if self.tz == "UTC":
            return raw.str.to_datetime(fmt, time_unit="us", time_zone="UTC", strict=False)
        local = raw.str.to_datetime(fmt, time_unit="us", strict=False)
        return local.dt.replace_time_zone(self.tz, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")

    def fallback(self, raw: pl.Series, parsed: pl.Series) -> pl.Series:
        """Retry, with the fallback layouts, only the values the primary layout missed."""
        if self.kind != "text" or len(self.formats) < 2:
            return parsed
        missed = parsed.is_null() & raw.is_not_null()
        if not missed.any():
            return parsed
        idx = missed.arg_true()
        sub = pl.DataFrame({"r": raw.gather(idx)})
        out = sub.select(
            pl.coalesce([self._text(pl.col("r"), f, primary=False) for f in self.formats[1:]])
        ).to_series()
        ok = out.is_not_null()
        if not ok.any():
            return parsed
        return parsed.scatter(idx.filter(ok), out.filter(ok))

    def explain(self, value: object) -> tuple[str, str]:
        """(rule, message) for a raw value this parser could not read."""
        if value is None or (isinstance(value, str) and not value.strip()):
            return "unparseable-timestamp", "timestamp is empty"
        text = str(value)
        if self.kind == "epoch":
            assert self.band is not None
            unit, lo, hi, _ = self.band
            if not _INT.match(text.strip()):
                return "unparseable-timestamp", f"cannot read '{text}' as an integer epoch time"
            return (
                "unparseable-timestamp",
                f"'{text}' is not an epoch time in {unit} like the first row ('{self.first}'): "
                f"values in {unit} lie in [{lo:.0e}, {hi:.0e})",
            )
        if self.kind == "datetime" and self.tz != "UTC":
            return (
                "ambiguous-local-time",
                f"local time '{text}' happens twice or not at all in {self.tz} (DST change)",
            )
        if self.kind == "text":
            aware = bool(_AWARE.search(text.strip()))
            if aware != self.aware:
                has = "has a UTC offset" if aware else "has no UTC offset"
                first = "has one" if self.aware else "does not"
                return (
                    "mixed-timezone",
                    f"timestamp '{text}' {has} while the first one ('{self.first}') {first}",
                )
            if not self.aware and self.tz != "UTC" and self._reads_naive(text):
                return (
                    "ambiguous-local-time",
                    f"local time '{text}' happens twice or not at all in {self.tz} (DST change)",
                )
        return (
            "unparseable-timestamp",
            f"cannot read timestamp '{text}' (the first one, '{self.first}', set the layout "
            f"{self.formats[0] if self.formats else self.kind})",
        )

    def _reads_naive(self, text: str) -> bool:
        s = pl.Series([text])
        return any(s.str.to_datetime(f, strict=False).is_not_null().any() for f in self.formats)


def typed_expr(raw: pl.Expr, dtype: pl.DataType, tz: str) -> pl.Expr:
    """Datetime/Date column (Parquet) -> Datetime(us, UTC); naive values are local in `tz`."""
    if isinstance(dtype, pl.Date):
        raw = raw.cast(pl.Datetime("us"))
        aware = False
    else:
        aware = getattr(dtype, "time_zone", None) is not None
        raw = raw.dt.cast_time_unit("us")
    if aware:
        return raw.dt.convert_time_zone("UTC")
    return raw.dt.replace_time_zone(tz, ambiguous="null", non_existent="null").dt.convert_time_zone("UTC")


def _valid_yyyymmdd(text: str) -> bool:
    try:
        day = datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return 1900 <= day.year <= 2200


def _parse_offset(suffix: str) -> timedelta | None:
    if suffix.strip() == "Z":
        return None
    m = _OFFSET.match(suffix)
    if m is None:
        return None
    delta = timedelta(hours=int(m["h"]), minutes=int(m["m"] or 0))
    return -delta if m["sign"] == "-" else delta


def detect(values: list[object], *, tz: str, column: str, file: str | None, first_row: int) -> TimeParser:
    """Decide how to read a timestamp column from its first values (strings or integers).

    `first_row` is the row number of `values[0]`, for the error when nothing fits.
    """
    pos, first = next(((i, v) for i, v in enumerate(values) if v is not None and str(v).strip()), (-1, None))
    if first is None:
        raise InvalidInput(
            f"timestamp column '{column}' is empty in the first {len(values)} rows",
            rule="unparseable-timestamp",
            fix="fill the timestamp column, or name the right one with --ts-column",
            file=file,
            row=first_row,
            column=column,
        )
    text = str(first).strip()
    if isinstance(first, int) or _INT.match(text):
        number = int(text)
        if len(text) == 8 and _valid_yyyymmdd(text):
            return _naive_text(("%Y%m%d",), tz, text, "dates as YYYYMMDD")
        for band in EPOCH_BANDS:
            if band[1] <= abs(number) < band[2] and number > 0:
                return TimeParser(
                    kind="epoch", tz=tz, band=band, first=text, notes=(f"timestamps in epoch {band[0]}",)
                )
        raise InvalidInput(
            f"cannot read '{text}' as a timestamp: integers below 1e8 are not epoch times",
            rule="unparseable-timestamp",
            fix="give epoch seconds/milliseconds/microseconds, ISO dates, or name the timestamp "
            "column with --ts-column",
            file=file,
            row=first_row + pos,
            column=column,
        )
    iso = _ISO.match(text)
    if iso:
        d = iso["dsep"]
        ymd = f"%Y{d}%m{d}%d"
        suffix = iso["suffix"]
        t = iso["tsep"] or " "
        other = "T" if t == " " else " "
        if not iso["hm"]:
            if suffix:
                pass  # a date with an offset is odd: fall through to the general layouts
            else:
                return _naive_text((ymd, f"{ymd}{t}%H:%M", f"{ymd}{t}%H:%M:%S%.f"), tz, text, "ISO dates")
        primary = ymd + (f"{t}%H:%M" if iso["hm"] else "") + (":%S" if iso["sec"] else "")
        if iso["frac"]:
            primary += iso["frac"]  # a literal fraction ('.000') keeps polars' fast path
        if not suffix:
            general = (f"{ymd}{t}%H:%M:%S%.f", f"{ymd}{t}%H:%M", f"{ymd}{other}%H:%M:%S%.f", f"{ymd}{other}%H:%M", ymd)
            return _naive_text((primary, *general), tz, text, "ISO date-times")
        general = (f"{ymd}{t}%H:%M:%S%.f%#z", f"{ymd}{t}%H:%M%#z",
                   f"{ymd}{other}%H:%M:%S%.f%#z", f"{ymd}{other}%H:%M%#z")
        offset = _parse_offset(suffix)
        zone = "UTC (Z)" if offset is None and suffix.strip() == "Z" else "their UTC offsets"
        notes = [f"timestamps read as ISO date-times with {zone}, converted to UTC"]
        if tz != "UTC":
            notes.append(f"--tz {tz} ignored: the timestamps carry their own UTC offset")
        return TimeParser(
            kind="text",
            tz=tz,
            formats=(primary + suffix, *general),
            aware=True,
            offset=offset,
            first=text,
            notes=tuple(notes),
        )
    us = _US.match(text)
    if us:
        mdy = "%m/%d/%Y"
        primary = mdy + (" %H:%M" if us["hm"] else "") + (":%S" if us["sec"] else "")
        general = tuple(f for f in (f"{mdy} %H:%M:%S", f"{mdy} %H:%M", mdy) if f != primary)
        month = int(text.split("/")[0])
        if month > 12:
            raise InvalidInput(
                f"timestamp '{text}' looks like day/month/year, which is not read (it is "
                "ambiguous with US month/day/year)",
                rule="unparseable-timestamp",
                fix="write dates as ISO 8601 (YYYY-MM-DD)",
                file=file,
                row=first_row + pos,
                column=column,
            )
        return _naive_text((primary, *general), tz, text, "US month/day/year dates")
    raise InvalidInput(
        f"cannot read timestamp '{text}' in column '{column}'",
        rule="unparseable-timestamp",
        fix="write timestamps as ISO 8601 (2024-01-31 14:30:00, optionally with Z or an offset), "
        "US m/d/Y or integer epoch seconds/milliseconds/microseconds; or name the timestamp "
        "column with --ts-column",
        file=file,
        row=first_row + pos,
        column=column,
    )


def _naive_text(formats: tuple[str, ...], tz: str, first: str, what: str) -> TimeParser:
    zone = "assumed UTC for naive timestamps (use --tz to set their zone)" if tz == "UTC" else (
        f"naive timestamps read as {tz} local time and converted to UTC"
    )
    seen: list[str] = []
    for f in formats:
        if f not in seen:
            seen.append(f)
    return TimeParser(
        kind="text",
        tz=tz,
        formats=tuple(seen),
        aware=False,
        first=first,
        notes=(f"timestamps read as {what} (layout {formats[0]})", zone),
    )


def parse_column(
    values: pl.Series, *, column: str, file: str | None, first_row: int, tz: str = "UTC",
    fix: str = "write dates as in the download (YYYY-MM-DD, m/d/Y, ...), one layout per column",
) -> pl.Series:
    """A whole String column -> Datetime(us, UTC), read like a bar file's timestamps: the
    layout from the first value (`detect`), then the fallbacks; the first value still
    unread raises InvalidInput (its rule from `TimeParser.explain`, its row counted from
    `first_row`, the row of `values[0]`). Empty values must be dropped by the caller."""
    raw = values.cast(pl.String).str.strip_chars()
    time = detect(raw.head(200).to_list(), tz=tz, column=column, file=file, first_row=first_row)
    parsed = pl.DataFrame({"r": raw}).select(time.expr(pl.col("r"))).to_series()
    parsed = time.fallback(raw, parsed)
    bad = parsed.is_null()
    if bad.any():
        i = int(bad.arg_true()[0])
        rule, message = time.explain(raw[i])
        raise InvalidInput(message, rule=rule, fix=fix, file=file, row=first_row + i, column=column)
    return parsed.cast(TS_DTYPE).rename(values.name)
