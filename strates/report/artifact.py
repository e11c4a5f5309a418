"""The `report` artifact, typed: what `chaos report` records (`report.html`, `report.md`,
`figures/<name>.png`) and the table its CLI prints.

`read(manifest)` types a manifest already held; `load(ws, ref)` resolves and types one;
`export` copies the pages and figures out of the workspace.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.core.workspace import Workspace, open_url
from strates.report.config import Config

KIND = "report"
COMMAND = "report"
HTML = "report.html"
MARKDOWN = "report.md"


@dataclasses.dataclass(frozen=True)
class Summary:
    """The page's `title`, the multiverse artifact it reports on (`multiverse/ID`), its
    files (`html`, `markdown`, the `figures` the Markdown links), and the files of its
    inputs that could not be read (`problems`; the page says so in their place)."""

    title: str
    multiverse: str
    html: str
    markdown: str
    figures: tuple[str, ...]
    problems: tuple[str, ...]
    bench: str = ""  # the bench artifact a benchmark report is built from (`multiverse` is then "")


@dataclasses.dataclass(frozen=True)
class Metrics:
    """The section ids in page order, the figures, the size of the HTML page (bytes), and
    the seconds the stage took."""

    sections: tuple[str, ...]
    figures: int
    html_bytes: int
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class ReportArtifact(Typed[Config, Summary, Metrics]):
    """A report artifact: its `manifest`, resolved `config`, typed `summary` and `metrics`."""

    KIND = KIND
    COMMAND = COMMAND

    def uri(self, ws: Workspace, name: str) -> str:
        """Where a file of the report is (`HTML`, `MARKDOWN`, a figure)."""
        return ws.uri(self.manifest.stage, self.id, name)


read = ReportArtifact.read
load = ReportArtifact.load


def export(ws: Workspace, report: ReportArtifact, out: str) -> dict[str, str]:
    """Copy the report out of the workspace: `report.html` to `out` (a file path, or a
    folder that gets `report.html`), `report.md` beside it with the stem of the HTML, and
    the figures the Markdown links into `figures/` beside them. Local paths or `gs://`.
    Returns where the HTML and the Markdown went ({html, markdown})."""
    fs, path = open_url(out)
    if path.endswith("/") or fs.isdir(path) or not path.lower().endswith((".html", ".htm")):
        folder, stem = path.rstrip("/"), "report"
    else:
        folder, _, name = path.rpartition("/")
        stem = name.rsplit(".", 1)[0]
    base = f"{report.manifest.stage}/{report.id}"
    html_path, md_path = f"{folder}/{stem}.html", f"{folder}/{stem}.md"
    fs.makedirs(folder, exist_ok=True)
    fs.pipe_file(html_path, ws.read_bytes(f"{base}/{report.summary.html}"))
    fs.pipe_file(md_path, ws.read_bytes(f"{base}/{report.summary.markdown}"))
    for rel in report.summary.figures:
        fs.makedirs(f"{folder}/figures", exist_ok=True)
        fs.pipe_file(f"{folder}/{rel}", ws.read_bytes(f"{base}/{rel}"))
    prefix = "" if "://" not in out else out.split("://", 1)[0] + "://"
    return {"html": prefix + html_path, "markdown": prefix + md_path}


def files_table(ws: Workspace, report: ReportArtifact, copied: Mapping[str, str] | None = None) -> Table:
    """Where the pages are (and where they were copied), titled with what the page holds;
    the caption names the inputs that could not be read."""
    s, m = report.summary, report.metrics
    rows = [("html", report.uri(ws, s.html)), ("markdown", report.uri(ws, s.markdown))]
    if copied:
        rows += [("copied", f"{copied['html']} and {copied['markdown']}")]
    notes = "; ".join(s.problems)
    return table(("file", "where"), rows, f"Missing pieces (noted in the page): {notes}." if notes else "", left=2,
                 title=f"{s.title}: {len(m.sections)} sections ({', '.join(m.sections)}), {m.figures} figures, "
                       f"{m.html_bytes / 1e6:.1f} MB of HTML")


def tables(ws: Workspace, report: ReportArtifact, copied: Mapping[str, str] | None = None) -> list[Table]:
    """What `chaos report` prints."""
    return [files_table(ws, report, copied)]
