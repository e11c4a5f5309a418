"""A table as data: defined once by the strate that owns the figures, shown by the CLI
(rich, `chaos_cli.output.print_tables`) and by the report (HTML and Markdown,
`strates.report.render`) alike."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Table:
    """`rows [R][C]` of already formatted cells under `columns`; the first `left` columns
    are text (left aligned), the others numbers (right aligned). Cells do not wrap, except
    in column `wrap`. `title` heads it in the CLI; `caption` explains it underneath."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    caption: str = ""
    left: int = 1
    wrap: int = -1  # the one column whose cells may wrap (-1: none)
    title: str = ""


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], caption: str = "", *, left: int = 1,
          wrap: int = -1, title: str = "") -> Table:
    return Table(tuple(columns), tuple(tuple(r) for r in rows), caption, left, wrap, title)
