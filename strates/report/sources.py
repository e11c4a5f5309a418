"""What a report is built from: the multiverse artifact, every artifact upstream of it,
and their Parquet files, read from the workspace (local or `gs://`) as bytes."""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from strates.core import artifacts
from strates.core.errors import ArtifactNotFound
from strates.core.workspace import Workspace
from strates.report.config import Config

STAGES = ("dataset", "tokenizer", "tokens", "jepa", "cfm", "agent", "multiverse")


@dataclasses.dataclass
class Sources:
    """`manifests`: the artifact of each stage in `STAGES` that the multiverse artifact
    descends from (a stage missing from the chain is absent). `problems` collects what
    could not be read, for the report to say so."""

    ws: Workspace
    config: Config
    manifests: dict[str, artifacts.Manifest]
    problems: list[str] = dataclasses.field(default_factory=list)

    def get(self, stage: str) -> artifacts.Manifest | None:
        return self.manifests.get(stage)

    @property
    def parents(self) -> dict[str, str]:
        return {stage: m.id for stage, m in self.manifests.items()}

    def frame(self, stage: str, name: str, columns: list[str] | None = None) -> Any:
        """A Parquet file of the `stage` artifact as a Polars DataFrame, or None (noted in
        `problems`) when the artifact or the file is missing."""
        import polars as pl

        m = self.manifests.get(stage)
        if m is None:
            return None
        rel = f"{m.stage}/{m.id}/{name}"
        try:
            data = self.ws.read_bytes(rel)
        except FileNotFoundError:
            self.problems.append(f"{m.ref}/{name} is missing")
            return None
        return pl.read_parquet(io.BytesIO(data), columns=columns)


def resolve_multiverse(ws: Workspace, ref: str) -> artifacts.Manifest:
    """The multiverse artifact `ref` names; with none in the workspace, an error whose fix
    is to run `chaos multiverse`."""
    if not artifacts.list_artifacts(ws, "multiverse"):
        raise ArtifactNotFound(
            f"no multiverse artifacts in workspace {ws.url}: the report is built from one",
            fix="run `chaos multiverse` first (after `chaos train-agent`), or point --workspace at the "
                "workspace that has one",
        )
    return artifacts.resolve(ws, ref, stage="multiverse")


def gather(ws: Workspace, config: Config, multiverse: str) -> Sources:
    """Resolve `multiverse` and walk its parents (and theirs) to every upstream artifact."""
    mv = resolve_multiverse(ws, multiverse)
    found = {"multiverse": mv}
    for m in artifacts.ancestors(ws, mv):
        found.setdefault(m.stage, m)
    return Sources(ws, config, {s: found[s] for s in STAGES if s in found})
