"""`chaos run`: every stage in order, each reusing its artifact when its inputs and config
are unchanged (the artifact id is a hash of both), each fed the exact artifact the stage
before it produced (not `latest`).

dataset (ingest: the embedded data, the user's files, or an existing dataset) -> tokenizer
-> tokens -> jepa -> cfm -> agent -> multiverse -> report. The same presets apply to every
stage (`debug` for a quick look, `small` by default); on a short history the window
lengths are fitted to the data (`fit_windows`), and the run says what it changed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from strates.core import artifacts
from strates.core import stage as template
from strates.core.errors import ConfigError
from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace

STAGES = ("dataset", "tokenizer", "tokens", "jepa", "cfm", "agent", "multiverse", "report")
WINDOWS_PER_PERIOD = 8  # a training window is at most 1/8 of the training bars of the longest asset


@dataclasses.dataclass(frozen=True)
class StageRun:
    """One stage of a run: its artifact `kind`, the artifact `ref`, whether it was `reused`,
    and the wall time it took."""

    stage: str
    ref: str
    reused: bool
    seconds: float


def stages() -> tuple[template.Stage, ...]:
    """The stage descriptions in pipeline order (imported here so `chaos --help` stays fast)."""
    import strates.agent as agent
    import strates.cfm as cfm
    import strates.fsq as fsq
    import strates.jepa as jepa
    import strates.multiverse as multiverse
    import strates.report as report
    from strates.data.ingest import STAGE as INGEST

    out = (INGEST, fsq.TOKENIZER_STAGE, fsq.TOKENS_STAGE, jepa.STAGE, cfm.STAGE, agent.STAGE, multiverse.STAGE,
           report.STAGE)
    assert tuple(s.kind for s in out) == STAGES
    return out


@dataclasses.dataclass(frozen=True)
class Adapted:
    """One setting `fit_windows` changed: the stage `kind`, the `--set` override, and why."""

    kind: str
    override: str
    reason: str


def _pow2_at_most(n: int) -> int:
    return 1 << max(n, 1).bit_length() - 1


def _bars_in(ws: Workspace, dataset: artifacts.Manifest, periods) -> list[int]:
    """For each period ({start, end}), the most bars any one asset has inside it."""
    from strates.data.ingest import load_bars

    series = [part["ts"].dt.replace_time_zone(None).to_numpy()
              for part in load_bars(ws, dataset).select("asset", "ts").partition_by("asset")]
    out = []
    for period in periods:
        a, b = period.bounds64()
        out.append(max((int(((t >= a) & (t < b)).sum()) for t in series), default=0))
    return out


def fit_windows(dataset: artifacts.Manifest, configs: Mapping[str, Any], ws: Workspace) -> list[Adapted]:
    """The lengths in `configs` ({kind: config}) that do not fit `dataset`'s first fold,
    shrunk to fit:

    - a training window (tokenizer, JEPA) is at most 1/WINDOWS_PER_PERIOD of the longest
      asset's training bars, a power of two (so the SSD chunk still divides it; the chunk
      shrinks with it), and never below what the stage needs (16 bars for the tokenizer,
      more than context plus horizon for the JEPA);
    - the JEPA's probe horizon leaves at least half of the diagnostic part of validation
      (after the context it skips) as rows to score.

    A 20-year daily index (~3,500 training bars) keeps every default; a 2-year one gets
    32-bar windows. Returns what changed, with the reason."""
    from strates.data.artifact import read

    fold = read(dataset).fold()
    train, validation = _bars_in(ws, dataset, (fold.train, fold.validation))
    cap = _pow2_at_most(train // WINDOWS_PER_PERIOD)
    out = []

    def change(kind: str, override: str, reason: str) -> None:
        out.append(Adapted(kind, override, reason))

    for kind, need in (("tokenizer", lambda c: 16), ("jepa", _jepa_need)):
        config = configs.get(kind)
        if config is None or config.data.window <= cap:
            continue
        window = config.data.window
        new = max(cap, need(config))
        if new < window:
            change(kind, f"data.window={new}",
                   f"{train:,} training bars in the longest asset of fold {fold.name}: a {window}-bar window fits "
                   f"{train // window} times, {WINDOWS_PER_PERIOD} wanted")
            chunk = getattr(getattr(config, "model", None), "chunk", None)
            if chunk is not None and chunk > new:
                change(kind, f"model.chunk={new}", f"the SSD chunk must divide the {new}-bar window")
    jepa = configs.get("jepa")
    if jepa is not None:
        diagnostic = int(validation * (1 - jepa.select.share))
        room = diagnostic // 2 - jepa.loss.ctx_min
        if jepa.probe.horizon > room >= 1:
            change("jepa", f"probe.horizon={room}",
                   f"the diagnostic part of validation holds {diagnostic} bars; after {jepa.loss.ctx_min} bars of "
                   f"context a {jepa.probe.horizon}-bar probe target would leave under half of them to score")
    return out


def _jepa_need(config) -> int:
    """The shortest power-of-two JEPA window: it must exceed context plus horizon."""
    return 2 * _pow2_at_most(config.loss.ctx_min + config.model.horizon)


def _futures_only(stage: template.Stage) -> template.Stage:
    """The stage that replaces `stage` on a series dataset (the multiverse and the report
    without an agent); the others unchanged."""
    if stage.kind == "multiverse":
        from strates.multiverse import FUTURES_STAGE

        return FUTURES_STAGE
    if stage.kind == "report":
        from strates.report.stage import FUTURES_STAGE

        return FUTURES_STAGE
    return stage


def run(ws: Workspace, *, presets: list[str] | None = None, force: bool = False, universes: int | None = None,
        ingest_config=None, dataset: str | None = None, overrides: Mapping[str, Sequence[str]] | None = None,
        fit: bool = True, reporter: Reporter | None = None, on_stage: Callable[[StageRun], None] | None = None,
        on_adapt: Callable[[Adapted], None] | None = None, until: str | None = None) -> list[StageRun]:
    """Run the pipeline in `ws`; returns what each stage did. `force` recomputes every stage.

    The data: `dataset` (a reference to an existing dataset), else `ingest_config` (files or
    the embedded data; the embedded data by default). `overrides` ({kind: ["a.b=v", ...]})
    apply after the presets; `universes` sets the multiverse's M. With `fit`, windows too
    long for the data are shrunk (see `fit_windows`); `on_adapt` hears of each change.
    `until` (a stage kind of `STAGES`) stops after that stage. On a series dataset
    (`chaos ingest --format series`) the agent is skipped and the multiverse runs
    futures-only (λ, sensitivity and modes): there are no bars to trade."""
    from strates.data.config import Config as IngestConfig

    rep = reporter or NullReporter()
    extra = {k: list(v) for k, v in (overrides or {}).items()}
    if universes is not None:
        extra.setdefault("multiverse", []).append(f"universes={universes}")
    all_stages = stages()
    if until is not None and until not in STAGES:
        raise ConfigError(f"until {until!r} is not a stage", field="until", fix=f"one of {', '.join(STAGES)}")
    done: list[StageRun] = []
    previous: artifacts.Manifest | None = None
    series = False
    for i, stage in enumerate(all_stages):
        kind = stage.kind  # what --until names (the multiverse of a series is a multiverse-futures artifact)
        if series:  # a generic series has no bars to trade: no agent, the futures-only multiverse and its report
            if stage.kind == "agent":
                rep.info("agent: skipped (a series dataset has no bars to trade; the multiverse runs futures-only)")
                continue
            stage = _futures_only(stage)
        if i == 0 and dataset is not None:
            result = template.Result(artifacts.current(artifacts.resolve(ws, dataset, stage="dataset")), True)
        else:
            if i == 0:
                from strates.data.ingest import run as ingest

                t0 = time.perf_counter()
                got = ingest(ingest_config or IngestConfig(), ws, force=force, reporter=rep)
                result = template.Result(got.manifest, got.reused, round(time.perf_counter() - t0, 2))
            else:
                config = stage.configure(presets, extra.get(stage.kind, ()))
                parents = {stage.parents[0]: previous} if previous is not None else None
                result = template.run(stage, config, ws, parents=parents, force=force, reporter=rep)
        if i == 0 and fit:
            sized = {s.kind: s.configure(presets, extra.get(s.kind, ())) for s in all_stages[1:4]}
            for change in fit_windows(result.manifest, sized, ws):
                rep.info(f"fitted to the data: {change.kind} {change.override} ({change.reason})")
                extra.setdefault(change.kind, []).insert(0, change.override)
                if on_adapt is not None:
                    on_adapt(change)
        if i == 0:
            from strates.data.artifact import read as read_dataset

            series = read_dataset(result.manifest).is_series
        previous = result.manifest
        step = StageRun(stage.kind, result.manifest.ref, result.reused, result.seconds)
        done.append(step)
        rep.info(f"[{len(done)}/{len(all_stages)}] {stage.kind}: {'reused' if step.reused else 'built'} {step.ref} "
                 f"({step.seconds} s)")
        if on_stage is not None:
            on_stage(step)
        if kind == until:
            break
    return done
