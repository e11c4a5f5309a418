"""The report: one self-contained HTML page (and a Markdown twin) with the figures, tables
and provenance of a whole pipeline, built from its artifacts alone.

`chaos report` reads the multiverse artifact and its whole lineage as typed artifacts
(`sources.py`), builds the sections as data (`document.py`, `sections.py`, `trading.py`,
`provenance.py`) from the strates' own tables and the figures of `figures.py`, renders
them (`render.py`) and publishes the artifact (`stage.py`; what it records: `artifact.py`).
"""

from strates.report.config import PRESETS, Config
from strates.report.stage import STAGE, run

__all__ = ["PRESETS", "STAGE", "Config", "run"]
