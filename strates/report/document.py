"""The report as data: sections of blocks (text, tables, figures, code), built once from
the artifacts and rendered twice (HTML and Markdown, `render.py`), so both carry the same
content. Also the number formatting every section shares.

Text in blocks is plain (never markup): the renderers escape it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from strates.core.table import Table, table  # noqa: F401  (re-exported for the sections)
from strates.data.split import Period

MISSING = "not recorded"


@dataclasses.dataclass(frozen=True)
class Text:
    """A paragraph; `muted` for side notes."""

    text: str
    muted: bool = False


@dataclasses.dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section (h3)."""

    text: str


@dataclasses.dataclass(frozen=True)
class Facts:
    """A short list of (label, value) pairs."""

    items: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Figure:
    """A PNG (`png` bytes) saved as `figures/<name>.png`."""

    name: str
    png: bytes
    caption: str


@dataclasses.dataclass(frozen=True)
class Code:
    """A block of code (`language`: toml, json, text), collapsed under `summary` in HTML."""

    summary: str
    code: str
    language: str = "toml"


Block = Text | Heading | Facts | Table | Figure | Code


@dataclasses.dataclass(frozen=True)
class Section:
    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclasses.dataclass(frozen=True)
class Report:
    """`meta`: (label, value) pairs shown under the title."""

    title: str
    meta: tuple[tuple[str, str], ...]
    sections: tuple[Section, ...]

    @property
    def figures(self) -> list[Figure]:
        return [b for s in self.sections for b in s.blocks if isinstance(b, Figure)]


def facts(pairs: Sequence[tuple[str, Any]]) -> Facts:
    return Facts(tuple((k, v if isinstance(v, str) else text(v)) for k, v in pairs))


# -- formatting ------------------------------------------------------------------------------
def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def num(value: Any, digits: int = 3) -> str:
    """A number with `digits` significant digits (fixed notation where sensible)."""
    x = _finite(value)
    if x is None:
        return MISSING if value is None else str(value)
    if x == 0:
        return "0"
    if abs(x) >= 1e5 or abs(x) < 1e-4:
        return f"{x:.{max(digits - 1, 0)}e}"
    decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
    return f"{x:,.{decimals}f}"


def fixed(value: Any, decimals: int = 2) -> str:
    x = _finite(value)
    if x is None:
        return MISSING if value is None else str(value)
    if x != 0 and abs(x) < 0.5 * 10 ** -decimals:
        return f"{x:.1e}"
    return f"{x:,.{decimals}f}"


def pct(value: Any, decimals: int = 1) -> str:
    """A share as a percentage; tiny non-zero shares keep two significant digits."""
    x = _finite(value)
    if x is None:
        return MISSING if value is None else str(value)
    if x != 0 and abs(100 * x) < 10 ** -decimals:
        return f"{num(100 * x, 2)}%"
    return f"{100 * x:,.{decimals}f}%"


def integer(value: Any) -> str:
    x = _finite(value)
    return MISSING if x is None else f"{round(x):,}"


def when(value: Any, *, minutes: bool = True) -> str:
    """A UTC datetime as `2024-11-06 06:00` (or the date alone at midnight)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if not isinstance(value, dt.datetime):
        return MISSING if value is None else str(value)
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    if not minutes or (value.hour == 0 and value.minute == 0):
        return value.strftime("%Y-%m-%d")
    return value.strftime("%Y-%m-%d %H:%M")


def span(value: Period | None) -> str:
    """A period as `start .. end` (UTC, end exclusive); `not recorded` for None."""
    if value is None:
        return MISSING
    return f"{when(value.start)} .. {when(value.end)}"


def spans(ranges: Mapping[str, Mapping[str, dt.datetime]]) -> str:
    """A manifest's `fitted` or `selected` ranges ({name: {start, end}}) as `name: start .. end; ...`."""
    return "; ".join(f"{name}: {span(Period(**r))}" for name, r in sorted(ranges.items()))


def duration(seconds: Any) -> str:
    """Seconds as `3 d 20 h 30 min` (whole units only; `12.5 s` below a minute)."""
    x = _finite(seconds)
    if x is None:
        return MISSING
    if x < 60 or x % 60:
        return f"{x:g} s"
    parts, rest = [], int(x)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if rest >= size:
            parts.append(f"{rest // size} {unit}")
            rest %= size
    return " ".join(parts)


def text(value: Any) -> str:
    """Any manifest value as a short string."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return num(value)
    if isinstance(value, dt.datetime):
        return when(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(text(v) for v in value) if value else "none"
    return str(value)


def slug(name: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in name.lower())
    return "-".join(p for p in out.split("-") if p)
