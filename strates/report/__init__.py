"""The report: one self-contained HTML page (and a Markdown twin) with the figures, tables
and provenance of a whole pipeline, built from its artifacts alone.

`chaos report` gathers the multiverse artifact and everything upstream of it
(`sources.py`), builds the sections as data (`document.py`, `sections.py`, `trading.py`,
`provenance.py`) with figures from `figures.py`, renders them (`render.py`) and publishes
the artifact (`stage.py`).
"""

from strates.report.config import PRESETS, Config
from strates.report.stage import run

__all__ = ["Config", "PRESETS", "run"]
