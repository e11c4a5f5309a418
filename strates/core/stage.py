"""One stage lifecycle, written once: resolve parents -> lineage -> reuse -> begin -> build ->
commit, or abort.

A stage is a `Stage` description (its artifact kind, parent kinds, config class, presets)
plus a `build(job) -> Output` function holding only the stage's own work. `run(stage,
config, ws, parents=...)` does the rest, the same way for every stage:

1. each given parent reference is resolved (`latest`, an id, a prefix, `STAGE/ID`) to a
   manifest of the declared kind;
2. lineage: every declared parent kind not given is taken from the given parents' own
   parents (a `cfm` artifact names its `jepa`, `tokens` and `dataset`), so a manifest
   records its whole chain and the id changes when any link does;
3. `prepare(config, parents)` fills what the config leaves to the parents (e.g. the fold
   name) and checks early what can be checked before any work;
4. the id is hashed from the resolved config and the parent ids; a published artifact
   with that id is returned as is (`reused`), unless `force`;
5. the folder is begun (an interrupted attempt's checkpoints are kept for `resume`
   stages), `build` runs, and the manifest is written last. On failure the half-written
   folder is removed, except a `resume` stage's checkpoints after training started: the
   next run resumes from them (`chaos gc` removes them otherwise).

The artifact's `fitted` / `selected` ranges (`Output`) are what the leakage guard reads.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any

from strates.core import artifacts
from strates.core.config import apply_overrides, merge_presets, to_dict
from strates.core.errors import ConfigError
from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace

Ranges = Mapping[str, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class Output:
    """What `build` returns: the manifest's `metrics` and `summary` (plain TOML values; the
    strate's `artifact.py` types them on reading), and the ranges the artifact was `fitted`
    / `selected` on ({name: {start, end}}, end exclusive) for the leakage guard."""

    metrics: Mapping[str, Any]
    summary: Mapping[str, Any]
    fitted: Ranges = dataclasses.field(default_factory=dict)
    selected: Ranges = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Job[C]:
    """What a `build` works with: the workspace, the resolved config, the parent manifests
    by kind (the whole declared lineage), the writer of its own artifact and the reporter."""

    ws: Workspace
    config: C
    parents: dict[str, artifacts.Manifest]
    writer: artifacts.ArtifactWriter
    reporter: Reporter
    folders: list[str] = dataclasses.field(default_factory=list)

    @property
    def id(self) -> str:
        return self.writer.id

    def parent(self, kind: str) -> artifacts.Manifest:
        return self.parents[kind]

    def folder(self, name: str = "checkpoints") -> str:
        """A folder inside this artifact for a library that writes files itself (Orbax):
        a local path, or a `gs://` URI. Every file under it is recorded at commit, and it
        marks the attempt as resumable."""
        if name.split("/")[0] not in self.folders:
            self.folders.append(name.split("/")[0])
        return self.ws.location(self.writer.rel(name))

    def upstream(self) -> list[artifacts.Manifest]:
        """The parents and everything upstream of them, each once (for the leakage guard)."""
        seen: dict[str, artifacts.Manifest] = {}
        for m in self.parents.values():
            for a in (m, *artifacts.ancestors(self.ws, m)):
                seen.setdefault(a.ref, a)
        return list(seen.values())


@dataclasses.dataclass(frozen=True)
class Stage[C]:
    """A stage: `kind` (its artifact folder, e.g. `jepa`), `command` (the CLI command that
    runs it), `parents` (parent kinds; the first ones are given, the rest follow from
    lineage), its `Config` class with `presets` and the `default_preset`, and `build`.

    `identity(config)` is what enters the id (default: the whole config); `prepare(config,
    parents)` completes the config from the parents before the id is computed, and
    `discover(config, parents, ws)` from other artifacts in the workspace (the report's World
    Models: not upstream of it, yet part of its id); `resume` keeps an interrupted attempt's
    files for the next run."""

    kind: str
    command: str
    config: type[C]
    build: Callable[[Job[C]], Output]
    parents: tuple[str, ...] = ()
    presets: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    default_preset: str | None = None
    prepare: Callable[[C, Mapping[str, artifacts.Manifest]], C] | None = None
    identity: Callable[[C], Mapping[str, Any]] = to_dict
    resume: bool = False
    discover: Callable[[C, Mapping[str, artifacts.Manifest], Workspace], C] | None = None

    def configure(self, presets: list[str] | None = None, overrides: list[str] | tuple[str, ...] = ()) -> C:
        """The config from named presets (the default one when none is named) and `--set` overrides."""
        names = (presets or ([self.default_preset] if self.default_preset else [])) if self.presets else []
        return apply_overrides(merge_presets(self.config(), self.presets, names), list(overrides))


@dataclasses.dataclass(frozen=True)
class Result:
    """A stage run: its `manifest` and whether it was `reused` rather than built."""

    manifest: artifacts.Manifest
    reused: bool
    seconds: float = 0.0

    @property
    def ref(self) -> str:
        return self.manifest.ref


def lineage(stage: Stage, given: Mapping[str, artifacts.Manifest], ws: Workspace) -> dict[str, artifacts.Manifest]:
    """Every declared parent kind of `stage`: the given ones, the rest from their parents."""
    out = dict(given)
    for kind in stage.parents:
        if kind in out:
            continue
        for m in list(out.values()):
            if kind in m.parents:
                out[kind] = _get(ws, kind, m.parents[kind], m)
                break
        else:
            raise ConfigError(
                f"{stage.command} needs a {kind} artifact and none of "
                f"{', '.join(sorted(given)) or 'its inputs'} names one",
                fix=f"pass the {kind} artifact explicitly",
            )
    return {kind: out[kind] for kind in stage.parents}


def _get(ws: Workspace, kind: str, aid: str, child: artifacts.Manifest) -> artifacts.Manifest:
    m = artifacts.get(ws, kind, aid)
    if m is None:
        from strates.core.errors import ArtifactNotFound

        raise ArtifactNotFound(f"{child.ref} names a parent {kind}/{aid} that is not in the workspace",
                               fix=f"re-run the {kind} stage, or remove {child.ref} with chaos gc")
    return m


def resolve_parents(stage: Stage, ws: Workspace, refs: Mapping[str, str | artifacts.Manifest]
                    ) -> dict[str, artifacts.Manifest]:
    """Parent references (or manifests) by kind -> the stage's whole lineage of manifests."""
    given = {kind: ref if isinstance(ref, artifacts.Manifest) else artifacts.resolve(ws, ref, stage=kind)
             for kind, ref in refs.items()}
    return {kind: artifacts.current(m) for kind, m in lineage(stage, given, ws).items()}


def run[C](stage: Stage[C], config: C, ws: Workspace, *, parents: Mapping[str, str | artifacts.Manifest] | None = None,
        force: bool = False, reporter: Reporter | None = None,
        before_manifest: Callable[[], None] | None = None) -> Result:
    """Run `stage` on `config` with `parents` ({kind: reference or manifest}; by default
    the `latest` artifact of its first parent kind). Returns the new or reused artifact."""
    rep = reporter or NullReporter()
    t0 = time.perf_counter()
    if parents is None:
        parents = {stage.parents[0]: "latest"} if stage.parents else {}
    lineage_ = resolve_parents(stage, ws, parents)
    if stage.prepare is not None:
        config = stage.prepare(config, lineage_)
    if stage.discover is not None:
        config = stage.discover(config, lineage_, ws)
    ids = {kind: m.id for kind, m in lineage_.items()}
    resolved = dict(stage.identity(config))
    aid, existing = artifacts.lookup(ws, stage.kind, resolved, ids, force=force)
    if existing is not None:
        return Result(existing, True, round(time.perf_counter() - t0, 2))
    writer = artifacts.begin(ws, stage.kind, aid, resume=stage.resume)
    job = Job(ws=ws, config=config, parents=lineage_, writer=writer, reporter=rep)
    try:
        out = stage.build(job)
        for folder in job.folders:
            writer.add_existing(folder)
        metrics = {**out.metrics, "seconds": round(time.perf_counter() - t0, 2)}
        manifest = writer.commit(config=resolved, parents=ids, metrics=metrics, summary=out.summary,
                                 fitted=out.fitted, selected=out.selected, before_manifest=before_manifest)
    except BaseException:
        if not (stage.resume and job.folders):
            writer.abort()
        raise
    return Result(manifest, False, round(time.perf_counter() - t0, 2))
