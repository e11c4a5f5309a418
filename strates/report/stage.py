"""`chaos report`: one self-contained HTML page (and its Markdown twin) built from the
artifacts alone: the multiverse artifact, everything upstream of it, and their files.

Artifact `report` (parents: multiverse, agent, cfm, jepa, tokens, tokenizer, dataset; the
multiverse is given, the rest follow from its lineage): `report.html` (figures embedded as
base64 PNG, inline CSS, no external resource), `report.md` (GitHub Markdown) and
`figures/<name>.png` (linked from the Markdown). The manifest lists the sections and
counts the figures (`artifact.py`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping

import strates
from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace
from strates.report import bench, bench_signal, render, sections, trading, worldmodels
from strates.report.artifact import COMMAND, HTML, KIND, MARKDOWN, Metrics, Summary
from strates.report.config import DEFAULT_PRESET, PRESETS, Config
from strates.report.document import Report, Section
from strates.report.provenance import provenance
from strates.report.sources import Sources, gather

SECTIONS: tuple[tuple[str, Callable[[Sources], Section]], ...] = (
    ("data", sections.data),
    ("tokenizer", sections.tokenizer),
    ("jepa", sections.jepa),
    ("cfm", sections.cfm),
    ("agent", trading.agent),
    ("multiverse", trading.multiverse),
)
# shown after the pipeline's sections when the report has a World Models artifact (`Config.worldmodels`)
WORLDMODELS_SECTION: tuple[str, Callable[[Sources], Section]] = ("worldmodels", worldmodels.section)
FUTURES_SECTIONS: tuple[tuple[str, Callable[[Sources], Section]], ...] = (
    *((sid, make) for sid, make in SECTIONS if sid not in ("agent", "multiverse")),
    ("multiverse", trading.futures_only),
)
BENCH_SECTIONS: tuple[tuple[str, Callable[[Sources], Section]], ...] = (
    ("bench", lambda src: bench.section(src.bench)),  # pyright: ignore[reportArgumentType]
)
SIGNAL_SECTIONS: tuple[tuple[str, Callable[[Sources], Section]], ...] = (
    ("bench", lambda src: bench_signal.section(src.signal)),  # pyright: ignore[reportArgumentType]
)
SECTION_IDS = (*(s for s, _ in SECTIONS), "provenance")  # a report of the pipeline; a benchmark's: bench, provenance
SIZE_WARNING = 5_000_000  # bytes of HTML past which the reporter says so


def compose(src: Sources, *, report_id: str, report_config: dict, reporter: Reporter | None = None) -> Report:
    """The report's content, section by section. An artifact the sources lack gets a "not
    recorded" note in its section; a file that cannot be read, a note in `src.problems`."""
    rep = reporter or NullReporter()
    out = []
    chosen = (BENCH_SECTIONS if src.bench is not None else SIGNAL_SECTIONS if src.signal is not None
              else FUTURES_SECTIONS if src.futures is not None else SECTIONS)
    if chosen is SECTIONS and src.worldmodels is not None:
        chosen = (*SECTIONS, WORLDMODELS_SECTION)
    for sid, make in chosen:
        with rep.task(f"section {sid}"):
            out.append(make(src))
    out.append(provenance(src, report_id=report_id, report_config=report_config))
    meta = [("generated", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")), ("report", f"{KIND}/{report_id}")]
    meta += [(kind, m.ref) for kind, m in reversed(src.manifests.items())]
    meta.append(("chaos version", strates.__version__))
    title = "chaos report" + (f": {src.multiverse.metrics.period.name} period" if src.multiverse else "")
    if src.futures is not None:
        title = f"chaos report: the futures alone, {src.futures.metrics.period.name} period"
    if src.bench is not None:
        title = "chaos benchmark: Lyapunov exponents of known systems"
    if src.signal is not None:
        title = "chaos benchmark: a planted edge of known strength"
    return Report(title, tuple(meta), tuple(out))


def build(job: template.Job[Config]) -> template.Output:
    src = gather(job.ws, job.config, job.parents)
    report = compose(src, report_id=job.id, report_config=to_dict(job.config), reporter=job.reporter)
    page = render.to_html(report).encode()
    if len(page) > SIZE_WARNING:
        job.reporter.info(f"report.html is {len(page) / 1e6:.1f} MB; lower --set dpi or max_points for a smaller page")
    for fig in report.figures:
        job.writer.write_bytes(f"figures/{fig.name}.png", fig.png)
    job.writer.write_bytes(HTML, page)
    job.writer.write_bytes(MARKDOWN, render.to_markdown(report).encode())
    metrics = Metrics(sections=tuple(s.id for s in report.sections), figures=len(report.figures), html_bytes=len(page))
    crossed = job.parents.get("multiverse") or job.parents.get("multiverse-futures")
    summary = Summary(title=report.title, multiverse=crossed.ref if crossed is not None else "",
                      bench=next((job.parents[k].ref for k in BENCH_KINDS if k in job.parents), ""), html=HTML,
                      markdown=MARKDOWN,
                      figures=tuple(f"figures/{f.name}.png" for f in report.figures), problems=tuple(src.problems))
    return template.Output(to_dict(metrics), to_dict(summary))  # the template sets metrics.seconds


def _discover(config: Config, parents: Mapping[str, artifacts.Manifest], ws: Workspace) -> Config:
    """The most recent World Models artifact on the report's dataset (and its most recent
    dream) join a pipeline report, and its id, unless the config names them."""
    if config.worldmodels or "dataset" not in parents:
        return config
    from strates.report.sources import latest_worldmodels

    wm, dream = latest_worldmodels(ws, parents["dataset"].id)
    return dataclasses.replace(config, worldmodels=wm, dream=dream)


STAGE: template.Stage[Config] = template.Stage(
    kind=KIND, command=COMMAND, config=Config, build=build,
    parents=("multiverse", "agent", "cfm", "jepa", "tokens", "tokenizer", "dataset"),
    presets=PRESETS, default_preset=DEFAULT_PRESET, discover=_discover,
)
# the same report of a futures-only multiverse (no agent: e.g. a generic series), and of a benchmark
FUTURES_STAGE: template.Stage[Config] = dataclasses.replace(
    STAGE, parents=("multiverse-futures", "cfm", "jepa", "tokens", "tokenizer", "dataset"), discover=None)
BENCH_STAGE: template.Stage[Config] = dataclasses.replace(STAGE, parents=("bench",), discover=None)
SIGNAL_STAGE: template.Stage[Config] = dataclasses.replace(STAGE, parents=("bench-signal",), discover=None)
BENCH_KINDS = ("bench", "bench-signal")  # what `--bench` may name: chaos bench lyapunov, chaos bench signal


def resolve_bench(ws: Workspace, ref: str) -> artifacts.Manifest:
    """The benchmark artifact `ref` names, of either kind (`BENCH_KINDS`): `latest` (the
    most recent of either), an id or unique prefix, or `KIND/ID`."""
    from strates.core.errors import ArtifactNotFound

    if "/" in ref:
        kind = ref.partition("/")[0]
        if kind not in BENCH_KINDS:
            raise ArtifactNotFound(f"reference {ref} names a {kind} artifact where a benchmark is needed",
                                   fix="pass a bench or bench-signal artifact (see `chaos ls bench`, "
                                       "`chaos ls bench-signal`)")
        return artifacts.resolve(ws, ref)
    found, errors = [], []
    for kind in BENCH_KINDS:
        try:
            found.append(artifacts.resolve(ws, ref, stage=kind))
        except ArtifactNotFound as err:
            errors.append(err)
    if not found:
        raise ArtifactNotFound(f"no benchmark artifact matches {ref!r} in workspace {ws.url}",
                               fix="run `chaos bench lyapunov` or `chaos bench signal` first, or list them with "
                                   "`chaos ls bench` and `chaos ls bench-signal`")
    if len(found) > 1 and ref != "latest":
        raise ArtifactNotFound(f"{ref!r} matches {found[0].ref} and {found[1].ref}",
                               fix="give more characters of the id, or KIND/ID")
    return max(found, key=lambda m: m.created)


def run(config: Config, ws: Workspace, *, multiverse: str | artifacts.Manifest = "latest",
        futures: str | artifacts.Manifest | None = None, bench: str | artifacts.Manifest | None = None,
        force: bool = False, reporter: Reporter | None = None) -> template.Result:
    """Build the report of the multiverse artifact `multiverse` (a reference or a manifest)
    and everything upstream of it; given `futures`, of a futures-only multiverse
    (`multiverse-futures`, no agent: no trading sections); given `bench`, of a benchmark."""
    if bench is not None:
        m = resolve_bench(ws, bench) if isinstance(bench, str) else bench
        stage = SIGNAL_STAGE if m.stage == "bench-signal" else BENCH_STAGE
        return template.run(stage, config, ws, parents={m.stage: m}, force=force, reporter=reporter)
    if futures is not None:
        return template.run(FUTURES_STAGE, config, ws, parents={"multiverse-futures": futures}, force=force,
                            reporter=reporter)
    return template.run(STAGE, config, ws, parents={"multiverse": multiverse}, force=force, reporter=reporter)
