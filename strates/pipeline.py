"""`chaos run`: every stage in order, each reusing its artifact when its inputs and config
are unchanged (the artifact id is a hash of both), each fed the exact artifact the stage
before it produced (not `latest`).

ingest (embedded data unless a source is given) -> tokenize -> train-jepa -> train-cfm ->
train-agent -> multiverse -> report. The same presets apply to every stage (`debug` for
a quick look, `small` by default).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace

STAGES = ("ingest", "tokenize", "train-jepa", "train-cfm", "train-agent", "multiverse", "report")


@dataclasses.dataclass(frozen=True)
class StageRun:
    stage: str
    ref: str
    reused: bool
    seconds: float


def _config(package, presets: list[str] | None, overrides: list[str] = ()):
    from strates.core.config import apply_overrides, merge_presets

    default = package.config.DEFAULT_PRESET
    return apply_overrides(merge_presets(package.Config(), package.PRESETS, presets or [default]), list(overrides))


def run(ws: Workspace, *, presets: list[str] | None = None, force: bool = False, universes: int | None = None,
        ingest_config=None, reporter: Reporter | None = None,
        on_stage: Callable[[StageRun], None] | None = None) -> list[StageRun]:
    """Run the pipeline in `ws`; returns what each stage did. `force` recomputes every stage."""
    import strates.agent as agent
    import strates.cfm as cfm
    import strates.fsq as fsq
    import strates.jepa as jepa
    import strates.multiverse as multiverse
    import strates.report as report
    from strates.data.config import Config as IngestConfig
    from strates.data.ingest import run as ingest

    rep = reporter or NullReporter()
    done: list[StageRun] = []

    def record(stage: str, manifest, reused: bool, t0: float) -> None:
        step = StageRun(stage, manifest.ref, reused, round(time.perf_counter() - t0, 2))
        done.append(step)
        rep.info(f"[{len(done)}/{len(STAGES)}] {stage}: {'reused' if reused else 'built'} {step.ref} ({step.seconds} s)")
        if on_stage is not None:
            on_stage(step)

    t0 = time.perf_counter()
    r = ingest(ingest_config or IngestConfig(), ws, force=force, reporter=rep)
    record("ingest", r.manifest, r.reused, t0)
    t0 = time.perf_counter()
    tok = fsq.run(_config(fsq, presets), ws, dataset=r.manifest.id, force=force, reporter=rep)
    record("tokenize", tok.tokens, tok.reused_tokens and tok.reused_tokenizer, t0)
    t0 = time.perf_counter()
    j = jepa.run(_config(jepa, presets), ws, tokens=tok.tokens.id, force=force, reporter=rep)
    record("train-jepa", j.manifest, j.reused, t0)
    t0 = time.perf_counter()
    c = cfm.run(_config(cfm, presets), ws, jepa=j.manifest.id, force=force, reporter=rep)
    record("train-cfm", c.manifest, c.reused, t0)
    t0 = time.perf_counter()
    a = agent.run(_config(agent, presets), ws, cfm=c.manifest.id, force=force, reporter=rep)
    record("train-agent", a.manifest, a.reused, t0)
    t0 = time.perf_counter()
    extra = [f"universes={universes}"] if universes is not None else []
    m = multiverse.run(_config(multiverse, presets, extra), ws, agent=a.manifest.id, force=force, reporter=rep)
    record("multiverse", m.manifest, m.reused, t0)
    t0 = time.perf_counter()
    rp = report.run(_config(report, presets), ws, multiverse=m.manifest.id, force=force, reporter=rep)
    record("report", rp.manifest, rp.reused, t0)
    return done
