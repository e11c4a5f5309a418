"""`chaos report`: one self-contained HTML page (and its Markdown twin) built from the
artifacts alone: the multiverse artifact, everything upstream of it, and their files.

Artifact `report` (parents: multiverse, agent, cfm, jepa, tokens, tokenizer, dataset):
`report.html` (figures embedded as base64 PNG, inline CSS, no external resource),
`report.md` (GitHub Markdown) and `figures/<name>.png` (linked from the Markdown). The
manifest lists the sections and counts the figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable

import strates
from strates.core import artifacts
from strates.core.config import to_dict
from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace, open_url
from strates.report import render, sections, trading
from strates.report.config import Config
from strates.report.document import Report, Section, Text
from strates.report.provenance import provenance
from strates.report.sources import Sources, gather

STAGE = "report"
HTML = "report.html"
MARKDOWN = "report.md"
SECTIONS: tuple[tuple[str, str, Callable[[Sources], Section]], ...] = (
    ("data", "Data and split", sections.data),
    ("tokenizer", "Strate I: tokenizer", sections.tokenizer),
    ("jepa", "Strate II: JEPA world model", sections.jepa),
    ("cfm", "Strate III: conditional flow matching", sections.cfm),
    ("agent", "Strate IV: agent backtest", trading.agent),
    ("multiverse", "Multiverse Crossing", trading.multiverse),
)
SECTION_IDS = tuple(s for s, _, _ in SECTIONS) + ("provenance",)
SIZE_WARNING = 5_000_000  # bytes of HTML past which the reporter says so


@dataclasses.dataclass(frozen=True)
class Result:
    manifest: artifacts.Manifest
    reused: bool


def build(src: Sources, *, report_id: str, report_config: dict, reporter: Reporter | None = None) -> Report:
    """The report's content. A section whose artifacts do not hold what it expects says so
    in its place (and in `src.problems`) instead of failing the whole report."""
    rep = reporter or NullReporter()
    out = []
    for sid, title, make in SECTIONS:
        with rep.task(f"section {sid}"):
            try:
                out.append(make(src))
            except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, AttributeError) as e:
                src.problems.append(f"section {sid}: {type(e).__name__}: {e}")
                out.append(Section(sid, title, (Text(f"This section could not be built from the artifacts "
                                                     f"({type(e).__name__}: {e}).", muted=True),)))
    out.append(provenance(src, report_id=report_id, report_config=report_config))
    mv = src.get("multiverse")
    meta = [("generated", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")), ("report", f"report/{report_id}")]
    meta += [(stage, src.manifests[stage].ref) for stage in reversed(list(src.manifests))]
    meta.append(("chaos version", strates.__version__))
    period = mv.metrics.get("period", {}) if mv else {}
    title = "chaos report" + (f": {period['name']} period" if period.get("name") else "")
    return Report(title, tuple(meta), tuple(out))


def run(config: Config, ws: Workspace, *, multiverse: str = "latest", force: bool = False,
        reporter: Reporter | None = None) -> Result:
    rep = reporter or NullReporter()
    src = gather(ws, config, multiverse)
    parents = src.parents
    resolved = to_dict(config)
    aid, existing = artifacts.lookup(ws, STAGE, resolved, parents, force=force)
    if existing is not None:
        return Result(existing, True)
    t0 = time.perf_counter()
    report = build(src, report_id=aid, report_config=resolved, reporter=rep)
    page = render.to_html(report).encode()
    markdown = render.to_markdown(report).encode()
    if len(page) > SIZE_WARNING:
        rep.info(f"report.html is {len(page) / 1e6:.1f} MB; lower --set dpi or max_points for a smaller page")
    writer = artifacts.begin(ws, STAGE, aid)
    try:
        for fig in report.figures:
            writer.write_bytes(f"figures/{fig.name}.png", fig.png)
        writer.write_bytes(HTML, page)
        writer.write_bytes(MARKDOWN, markdown)
        metrics = {"sections": [s.id for s in report.sections], "figures": len(report.figures),
                   "html_bytes": len(page), "seconds": round(time.perf_counter() - t0, 2)}
        summary = {"title": report.title, "multiverse": src.get("multiverse").ref, "html": HTML, "markdown": MARKDOWN,
                   "figures": [f"figures/{f.name}.png" for f in report.figures], "problems": list(src.problems)}
        manifest = writer.commit(config=resolved, parents=parents, metrics=metrics, summary=summary)
    except BaseException:
        writer.abort()
        raise
    return Result(manifest, False)


def export(ws: Workspace, manifest: artifacts.Manifest, out: str) -> dict[str, str]:
    """Copy the report out of the workspace: `report.html` to `out` (a file path, or a
    folder that gets `report.html`), `report.md` beside it with the stem of the HTML, and
    the figures the Markdown links into `figures/` beside them. Local paths or `gs://`."""
    fs, path = open_url(out)
    if path.endswith("/") or fs.isdir(path) or not path.lower().endswith((".html", ".htm")):
        folder, stem = path.rstrip("/"), "report"
    else:
        folder, _, name = path.rpartition("/")
        stem = name.rsplit(".", 1)[0]
    base = f"{manifest.stage}/{manifest.id}"
    html_path, md_path = f"{folder}/{stem}.html", f"{folder}/{stem}.md"
    fs.makedirs(folder, exist_ok=True)
    fs.pipe_file(html_path, ws.read_bytes(f"{base}/{HTML}"))
    fs.pipe_file(md_path, ws.read_bytes(f"{base}/{MARKDOWN}"))
    for rel in manifest.summary.get("figures", []):
        fs.makedirs(f"{folder}/figures", exist_ok=True)
        fs.pipe_file(f"{folder}/{rel}", ws.read_bytes(f"{base}/{rel}"))
    prefix = "" if "://" not in out else out.split("://", 1)[0] + "://"
    return {"html": prefix + html_path, "markdown": prefix + md_path}
