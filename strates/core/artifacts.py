"""Versioned artifacts: ids, manifests, atomic publication, references, garbage collection.

An artifact is `<workspace>/<stage>/<id>/` with its files and a `manifest.toml` written
last (with tomli-w). The id is the first 16 hex digits of sha256 over (manifest schema,
stage, resolved config, parent ids), so the same inputs give the same id and a finished
stage is reused unless forced.

References: `latest` (newest published artifact of a stage), a full id, or a unique
prefix of at least 4 characters; across stages, `STAGE/REF` or a bare id/prefix.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import json
import tomllib
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import tomli_w

import strates
from strates.core.config import to_dict
from strates.core.errors import ArtifactNotFound, ChaosError, InvalidInput
from strates.core.workspace import Workspace

MANIFEST = "manifest.toml"
MANIFEST_SCHEMA = 2  # 2: typed summaries and metrics (strates/<strate>/artifact.py); ids changed with it
ID_LENGTH = 16
MIN_PREFIX = 4


class LeakageError(ChaosError):
    """An evaluated period overlaps data an artifact was fitted or selected on."""

    exit_code = 2


@dataclasses.dataclass(frozen=True)
class FileEntry:
    sha256: str
    size: int


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What `manifest.toml` holds. `fitted` maps a name (e.g. `train`) to {start, end}
    (end exclusive) of the data the artifact was fitted on; `selected` does the same for
    the data it was chosen on (checkpoint choice, early stopping, a setting picked on
    validation; empty for a stage that chooses nothing, and in manifests written before the
    field existed); `summary` holds stage facts. Neither range enters the id."""

    stage: str
    id: str
    created: dt.datetime
    config: dict[str, Any]
    parents: dict[str, str]
    files: dict[str, FileEntry]
    metrics: dict[str, Any]
    summary: dict[str, Any]
    fitted: dict[str, dict[str, dt.datetime]]
    version: str
    schema: int = MANIFEST_SCHEMA
    selected: dict[str, dict[str, dt.datetime]] = dataclasses.field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.stage}/{self.id}"

    def to_toml(self) -> bytes:
        data = {
            "schema": self.schema,
            "stage": self.stage,
            "id": self.id,
            "created": self.created,
            "version": self.version,
            "parents": dict(sorted(self.parents.items())),
            "config": _sorted(to_dict(self.config)),
            "files": {k: dataclasses.asdict(v) for k, v in sorted(self.files.items())},
            "metrics": _sorted(to_dict(self.metrics)),
            "summary": _sorted(to_dict(self.summary)),
            "fitted": _sorted(to_dict(self.fitted)),
            "selected": _sorted(to_dict(self.selected)),
        }
        return tomli_w.dumps(data).encode()

    @classmethod
    def from_toml(cls, data: bytes, *, where: str = MANIFEST) -> Manifest:
        try:
            raw = tomllib.loads(data.decode())
            return cls(
                stage=raw["stage"],
                id=raw["id"],
                created=raw["created"],
                config=raw.get("config", {}),
                parents=raw.get("parents", {}),
                files={k: FileEntry(**v) for k, v in raw.get("files", {}).items()},
                metrics=raw.get("metrics", {}),
                summary=raw.get("summary", {}),
                fitted=raw.get("fitted", {}),
                selected=raw.get("selected", {}),
                version=raw.get("version", "unknown"),
                schema=raw.get("schema", MANIFEST_SCHEMA),
            )
        except (tomllib.TOMLDecodeError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise InvalidInput(
                f"unreadable manifest: {type(e).__name__}: {e}",
                rule="bad-manifest",
                file=where,
                fix="remove the artifact folder (or run `chaos gc` after deleting its manifest) and re-run the stage",
            ) from e

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(tomllib.loads(self.to_toml().decode()), default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _sorted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def location(ws: Workspace, manifest: Manifest, name: str) -> str:
    """Where a library that opens paths itself (Orbax) finds `name` inside `manifest`'s folder."""
    return ws.location(f"{manifest.stage}/{manifest.id}/{name}")


def current(manifest: Manifest, *, command: str | None = None) -> Manifest:
    """`manifest` if it was written with this manifest schema; else an error naming the fix.
    Every stage calls this on its parents, and every typed `load` on what it reads."""
    if manifest.schema != MANIFEST_SCHEMA:
        command = command or PRODUCERS.get(manifest.stage)
        redo = f"`chaos {command} --force`" if command else f"the {manifest.stage} stage with --force"
        raise InvalidInput(
            f"{manifest.ref} was written by chaos {manifest.version} with manifest schema {manifest.schema}; "
            f"this version reads schema {MANIFEST_SCHEMA} (typed summaries and metrics)",
            rule="old-schema", file=MANIFEST,
            fix=f"rebuild it with {redo} (or `chaos run --force`), or read it with the chaos version that wrote it",
        )
    return manifest


def artifact_id(stage: str, config: Mapping[str, Any], parents: Mapping[str, str]) -> str:
    """Stable id from (schema, stage, resolved config, parent ids)."""
    payload = {
        "schema": MANIFEST_SCHEMA,
        "stage": stage,
        "config": _sorted(to_dict(dict(config))),
        "parents": dict(sorted(parents.items())),
    }
    blob = json.dumps(payload, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:ID_LENGTH]


# -- reading -------------------------------------------------------------------------------
def list_artifacts(ws: Workspace, stage: str | None = None) -> list[Manifest]:
    """Published artifacts (with a manifest), oldest first."""
    rels = ws.glob(f"{stage or '*'}/*/{MANIFEST}")
    blobs = ws.read_many(rels)
    out = [Manifest.from_toml(blobs[r], where=ws.uri(r)) for r in rels if r in blobs]
    return sorted(out, key=lambda m: (m.created, m.stage, m.id))


def get(ws: Workspace, stage: str, artifact: str) -> Manifest | None:
    """The published artifact `stage/artifact` (a full id), or None."""
    rel = f"{stage}/{artifact}/{MANIFEST}"
    try:
        return Manifest.from_toml(ws.read_bytes(rel), where=ws.uri(rel))
    except FileNotFoundError:
        return None


def lookup(ws: Workspace, stage: str, config: Mapping[str, Any], parents: Mapping[str, str], *,
           force: bool = False) -> tuple[str, Manifest | None]:
    """(id, the published artifact with that id unless `force`): every stage's reuse check."""
    aid = artifact_id(stage, config, parents)
    return aid, None if force else get(ws, stage, aid)


def resolve(ws: Workspace, ref: str, *, stage: str | None = None) -> Manifest:
    """Find the artifact `ref` names: `latest`, an id, a unique prefix, or `STAGE/REF`."""
    if "/" in ref:
        ref_stage, _, ref = ref.partition("/")
        if stage is not None and ref_stage != stage:
            raise ArtifactNotFound(
                f"reference {ref_stage}/{ref} names a {ref_stage} artifact where a {stage} is needed",
                fix=f"pass a {stage} artifact (see `chaos ls {stage}`)",
            )
        stage = ref_stage
    where = f"{stage} " if stage else ""
    candidates = list_artifacts(ws, stage)
    if not candidates:
        raise ArtifactNotFound(
            f"no {where}artifacts in workspace {ws.url}",
            fix=_producer_hint(stage),
        )
    if ref == "latest":
        return candidates[-1]
    if len(ref) < MIN_PREFIX:
        raise ArtifactNotFound(
            f"reference {ref!r} is too short", fix=f"give at least {MIN_PREFIX} characters of the id, or 'latest'"
        )
    exact = [m for m in candidates if m.id == ref]
    matches = exact or [m for m in candidates if m.id.startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise ArtifactNotFound(
            f"no {where}artifact matches {ref!r} in workspace {ws.url}",
            fix=f"list them with `chaos ls{' ' + stage if stage else ''}`",
        )
    listed = ", ".join(m.ref for m in matches[:5])
    raise ArtifactNotFound(
        f"{ref!r} matches {len(matches)} artifacts: {listed}",
        fix="give more characters of the id, or STAGE/ID",
    )


# the command that makes each kind of artifact, for the fixes in error messages
PRODUCERS = {"dataset": "ingest", "tokenizer": "tokenize", "tokens": "tokenize", "jepa": "train-jepa",
             "cfm": "train-cfm", "agent": "train-agent", "multiverse": "multiverse", "report": "report",
             "multiverse-futures": "multiverse --futures-only", "bench": "bench lyapunov",
             "bench-signal": "bench signal", "worldmodels": "train-worldmodels", "dream": "dream"}


def _producer_hint(stage: str | None) -> str:
    if stage in PRODUCERS:
        return (f"run `chaos {PRODUCERS[stage]}` first (or `chaos run`), or point --workspace at the workspace "
                "that has them")
    return "check --workspace / CHAOS_WORKSPACE, and `chaos ls`"


def leftovers(ws: Workspace) -> list[str]:
    """Artifact folders (`stage/id`) that have no manifest: interrupted publications."""
    published = {r.rsplit("/", 1)[0] for r in ws.glob(f"*/*/{MANIFEST}")}
    folders = set()
    for stage in ws.listdir():
        for name in ws.listdir(stage):
            folders.add(f"{stage}/{name}")
    return sorted(folders - published)


def gc(ws: Workspace, *, dry_run: bool = False) -> list[str]:
    """Remove folders without a manifest; return what was (or would be) removed."""
    found = leftovers(ws)
    if not dry_run:
        ws.remove(found)
    return found


# -- writing -------------------------------------------------------------------------------
class ArtifactWriter:
    """Writes one artifact's files, then its manifest last.

    Use `publish(...)` rather than building one directly. Until `commit` the folder has no
    manifest, so a crash leaves something invisible to `ls`/`latest` that `gc` removes.
    """

    def __init__(self, ws: Workspace, stage: str, artifact: str):
        self.ws = ws
        self.stage = stage
        self.id = artifact
        self.files: dict[str, FileEntry] = {}
        self.committed = False

    def rel(self, name: str) -> str:
        return f"{self.stage}/{self.id}/{name}"

    def uri(self, name: str = "") -> str:
        return self.ws.uri(self.stage, self.id, name)

    def write_bytes(self, name: str, data: bytes) -> None:
        if name == MANIFEST:
            raise ValueError("the manifest is written by commit()")
        self.ws.write_bytes(self.rel(name), data)
        self.files[name] = FileEntry(hashlib.sha256(data).hexdigest(), len(data))

    def add_existing(self, folder: str) -> None:
        """Record every file already written below `folder` (e.g. an Orbax checkpoint that a
        library wrote itself) with its sha256 and size, by reading it back."""
        base = self.rel("")
        for rel in self.ws.find(self.rel(folder)):
            digest = hashlib.sha256()
            data = self.ws.read_bytes(rel)
            digest.update(data)
            self.files[rel.removeprefix(base)] = FileEntry(digest.hexdigest(), len(data))

    def write_parquet(self, name: str, frame: Any, *, compression: str = "zstd") -> None:
        """Write a polars DataFrame as Parquet (through a buffer: one path for both backends)."""
        buf = io.BytesIO()
        frame.write_parquet(buf, compression=compression, statistics=True)
        self.write_bytes(name, buf.getvalue())

    def commit(
        self,
        *,
        config: Mapping[str, Any],
        parents: Mapping[str, str],
        metrics: Mapping[str, Any] | None = None,
        summary: Mapping[str, Any] | None = None,
        fitted: Mapping[str, Mapping[str, dt.datetime]] | None = None,
        selected: Mapping[str, Mapping[str, dt.datetime]] | None = None,
        before_manifest: Callable[[], None] | None = None,
    ) -> Manifest:
        """Write `manifest.toml` (last), making the artifact visible; return it.

        `fitted` / `selected`: {name: {start, end}} (end exclusive) of the data the artifact
        was fitted on / chosen on (see `Manifest`); the leakage guard refuses to evaluate on
        either.

        `before_manifest` runs after every data file is written and before the manifest:
        tests use it to kill the process at exactly that point.
        """
        manifest = Manifest(
            stage=self.stage,
            id=self.id,
            created=dt.datetime.now(dt.UTC),
            config=dict(config),
            parents=dict(parents),
            files=dict(self.files),
            metrics=dict(metrics or {}),
            summary=dict(summary or {}),
            fitted={k: dict(v) for k, v in (fitted or {}).items()},
            selected={k: dict(v) for k, v in (selected or {}).items()},
            version=strates.__version__,
        )
        data = manifest.to_toml()
        if before_manifest is not None:
            before_manifest()
        self.ws.write_atomic(self.rel(MANIFEST), data)
        self.committed = True
        return manifest

    def abort(self) -> None:
        """Remove whatever was written (called when the stage fails before commit)."""
        if not self.committed:
            self.ws.remove(f"{self.stage}/{self.id}")


def begin(ws: Workspace, stage: str, artifact: str, *, resume: bool = False) -> ArtifactWriter:
    """Start writing `stage/artifact`. An earlier published copy is unpublished first
    (manifest removed, so it turns invisible before its files change) and cleared.

    With `resume=True`, the files of an interrupted, unpublished attempt are kept (a
    training stage resumes from the checkpoints in them); a published copy is still
    cleared, since being asked to redo it means starting over.
    """
    folder = f"{stage}/{artifact}"
    if ws.exists(f"{folder}/{MANIFEST}"):
        ws.remove(f"{folder}/{MANIFEST}")
        ws.remove(folder)
    elif not resume:
        ws.remove(folder)
    return ArtifactWriter(ws, stage, artifact)


# -- leakage -------------------------------------------------------------------------------
USES = ("fitted", "selected")


class Overlap(NamedTuple):
    """One recorded range of an artifact that touches an evaluated period: `ref` (stage/id),
    `name` (e.g. `train`, `validation`), `span` ({start, end}, end exclusive) and `use`:
    `fitted` or `selected`."""

    ref: str
    name: str
    span: dict
    use: str

    def describe(self) -> str:
        return (f"{self.ref} was {self.use} on '{self.name}' data "
                f"{self.span['start'].isoformat()} .. {self.span['end'].isoformat()}")


def used_ranges(manifest: Manifest) -> list[tuple[str, str, dict]]:
    """(use, name, span) of every range `manifest` was fitted or selected on."""
    return [(use, name, span) for use in USES for name, span in sorted(getattr(manifest, use).items())]


def check_fitted_before(manifest: Manifest, boundary: dt.datetime, *, period: str = "test") -> None:
    """Fail loudly if `manifest` was fitted or selected on data at or after `boundary` (the
    start of the evaluation `period`). Every evaluation calls this on each artifact it
    evaluates."""
    for use, name, span in used_ranges(manifest):
        end = span.get("end")
        if end is not None and end > boundary:
            raise LeakageError(
                f"{manifest.ref} was {use} on '{name}' data up to {end.isoformat()}, "
                f"after the {period} period starts at {boundary.isoformat()}",
                fix="re-fit it on data before the boundary (check the dataset split and --force the stage)",
            )


def ancestors(ws: Workspace, manifest: Manifest) -> list[Manifest]:
    """Every artifact upstream of `manifest` (parents, their parents, ...), each once,
    nearest first."""
    seen: dict[str, Manifest] = {}
    queue = [(stage, aid) for stage, aid in manifest.parents.items()]
    while queue:
        stage, aid = queue.pop(0)
        if f"{stage}/{aid}" in seen:
            continue
        m = get(ws, stage, aid)
        if m is None:
            raise ArtifactNotFound(f"{manifest.ref} names a parent {stage}/{aid} that is not in the workspace",
                                   fix=f"re-run the {stage} stage, or remove {manifest.ref} with chaos gc")
        seen[f"{stage}/{aid}"] = m
        queue.extend(m.parents.items())
    return list(seen.values())


def overlapping(manifests: list[Manifest], start: dt.datetime, end: dt.datetime) -> list[Overlap]:
    """Every fitted or selected range of `manifests` that overlaps [start, end)."""
    out = []
    for m in manifests:
        for use, name, span in used_ranges(m):
            s, e = span.get("start"), span.get("end")
            if s is not None and e is not None and s < end and start < e:
                out.append(Overlap(m.ref, name, span, use))
    return out


def first_unused(manifests: list[Manifest], start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """The earliest time t in [start, end] from which [t, end) overlaps none of the ranges
    `manifests` were fitted or selected on (`end` when none is left): where a stage may
    start scoring a period that upstream selection used the first part of."""
    cut = start
    for hit in overlapping(manifests, start, end):
        cut = max(cut, min(hit.span["end"], end))
    return cut


def check_disjoint(manifests: list[Manifest], start: dt.datetime, end: dt.datetime, *, period: str,
                   own: Mapping[str, Mapping[str, dt.datetime]] | None = None, ref: str = "this artifact") -> None:
    """Fail loudly if any of `manifests` was fitted or selected on data inside [start, end),
    the evaluation `period`; the error names every offending artifact, use and range.
    `own`: the ranges ({name: {start, end}}) the artifact being built (`ref`, not yet
    written) was fitted on, checked alike."""
    hits = overlapping(manifests, start, end) + [
        Overlap(ref, name, dict(span), "fitted") for name, span in sorted((own or {}).items())
        if span["start"] < end and start < span["end"]]
    if hits:
        later = max(h.span["end"] for h in hits)
        raise LeakageError(
            f"the {period} period {start.isoformat()} .. {end.isoformat()} overlaps data the models were fitted on or "
            f"selected on: {'; '.join(h.describe() for h in hits)}",
            fix=f"evaluate on a period starting at or after {later.isoformat()} (the dataset's test period of the "
                "models' fold is safe), or re-fit the upstream stages on data before it",
        )
