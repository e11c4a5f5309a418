"""What the macro readers (FRED, vintage, COT) share: reading dates and numbers, the
uniqueness check, and what is known about each series read."""

from __future__ import annotations

import dataclasses

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.schema import MACRO_SCHEMA, TS_DTYPE
from strates.data.timeparse import parse_column

REVISIONS_MAY_LEAK = "revisions may leak (latest-vintage values, not a vintage file)"


@dataclasses.dataclass(frozen=True)
class SeriesInfo:
    """How one macro series was read: `vintage` when every value carries the date it was
    published (an ALFRED vintage file), so no bar sees a later revision; `revised` when
    the source revises its values (false for synthetic series); `lag` says how
    `available` was set; `note` is what the dataset summary repeats (e.g. that revisions
    may leak)."""

    vintage: bool
    lag: str
    note: str | None = None
    revised: bool = True

    @property
    def revisions_may_leak(self) -> bool:
        return self.revised and not self.vintage


def dates(raw: pl.DataFrame, column: str, path: str) -> pl.Series:
    """A date column as Datetime(us, UTC), read like a bar file's timestamps (ISO, US
    m/d/Y, YYYYMMDD, ...: `strates.data.timeparse`). Row numbers count the header as 1."""
    return parse_column(
        raw[column], column=column, file=path, first_row=2,
        fix="keep the dates as downloaded (YYYY-MM-DD or m/d/Y, one layout per column)",
    )


def numbers(raw: pl.DataFrame, column: str, path: str, *, missing: tuple[str, ...]) -> pl.Series:
    """A value column as Float64, null where the file marks a missing value (`missing`)."""
    text = raw[column].str.strip_chars()
    values = text.cast(pl.Float64, strict=False)
    is_missing = text.is_null() | text.is_in(list(missing))
    bad = values.is_null() & ~is_missing | (values.is_not_null() & ~values.is_finite())
    if bad.any():
        i = int(bad.arg_true()[0])
        raise InvalidInput(
            f"cannot read '{text[i]}' as a number",
            rule="unparseable-number",
            fix="keep the values as downloaded ('.' marks a missing FRED value)",
            file=path,
            row=i + 2,
            column=column,
        )
    return values


def check_unique(frame: pl.DataFrame, path: str, keys: tuple[str, ...] = ("series", "observed")) -> None:
    """InvalidInput when two rows share `keys` (one value per observation, or per
    observation and vintage)."""
    dup = frame.select(pl.struct(*keys).is_duplicated().arg_true().first()).item()
    if dup is not None:
        rec = frame.row(dup, named=True)
        when = f" published {rec['available']:%Y-%m-%d}" if "available" in keys else ""
        raise InvalidInput(
            f"series {rec['series']} has two observations dated {rec['observed']:%Y-%m-%d}{when}",
            rule="duplicate-timestamp",
            fix="keep one observation per date (download the series again)",
            file=path,
            column=rec["series"],
        )


def observations(series: str, observed: pl.Series, values: pl.Series) -> pl.DataFrame:
    """(series, observed, value) rows, missing values kept (the caller drops and counts)."""
    return pl.DataFrame({"series": series, "observed": observed, "value": values},
                        schema={"series": pl.String, "observed": TS_DTYPE, "value": pl.Float64})


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=MACRO_SCHEMA)
