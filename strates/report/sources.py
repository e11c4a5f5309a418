"""What a report is built from: the typed artifacts of the multiverse's whole lineage (each
read by its own strate's `artifact` module) and their Parquet files, read from the
workspace (local or `gs://`) as bytes."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable, Mapping
from typing import Any

from strates.agent import artifact as agent_artifact
from strates.bench import artifact as bench_artifact
from strates.bench import signal_artifact
from strates.cfm import artifact as cfm_artifact
from strates.core import artifacts
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.fsq import artifact as fsq_artifact
from strates.jepa import artifact as jepa_artifact
from strates.multiverse import artifact as multiverse_artifact
from strates.report.config import Config

KINDS = ("dataset", "tokenizer", "tokens", "jepa", "cfm", "agent", "multiverse")  # upstream first
# what a report of the futures alone (no agent) or of a benchmark is built from instead
OTHER_KINDS = {"multiverse-futures": "futures", "bench": "bench", "bench-signal": "signal"}
READERS: dict[str, Callable[[artifacts.Manifest], Any]] = {
    "dataset": data_artifact.read,
    "tokenizer": fsq_artifact.read_tokenizer,
    "tokens": fsq_artifact.read_tokens,
    "jepa": jepa_artifact.read,
    "cfm": cfm_artifact.read,
    "agent": agent_artifact.read,
    "multiverse": multiverse_artifact.read,
    "multiverse-futures": multiverse_artifact.read_futures,
    "bench": bench_artifact.Bench.read,
    "bench-signal": signal_artifact.SignalBench.read,
}


@dataclasses.dataclass
class Sources:
    """The typed artifact of each kind in `KINDS` (None where the report was given none:
    its sections then say "not recorded"). `problems` collects the files that could not be
    read, for the report to say so."""

    ws: Workspace
    config: Config
    dataset: data_artifact.Dataset | None = None
    tokenizer: fsq_artifact.Tokenizer | None = None
    tokens: fsq_artifact.Tokens | None = None
    jepa: jepa_artifact.Jepa | None = None
    cfm: cfm_artifact.Cfm | None = None
    agent: agent_artifact.Agent | None = None
    multiverse: multiverse_artifact.Multiverse | None = None
    futures: multiverse_artifact.FuturesOnly | None = None
    bench: bench_artifact.Bench | None = None
    signal: signal_artifact.SignalBench | None = None
    worldmodels: Any = None  # strates.worldmodels.artifact.WorldModels, shown beside the agent
    dream: Any = None  # strates.worldmodels.dream.Dream, its market hallucination
    problems: list[str] = dataclasses.field(default_factory=list)

    @property
    def manifests(self) -> dict[str, artifacts.Manifest]:
        """The manifests given, upstream first."""
        out = {kind: a.manifest for kind in KINDS if (a := getattr(self, kind)) is not None}
        out.update({kind: a.manifest for kind, field in OTHER_KINDS.items() if (a := getattr(self, field)) is not None})
        return out

    @property
    def pipeline(self) -> bool:
        """A report of the whole pipeline (rather than of the futures alone or of a benchmark)."""
        return self.futures is None and self.bench is None and self.signal is None

    def frame(self, kind: str, name: str, columns: list[str] | None = None) -> Any:
        """A Parquet file of the `kind` artifact as a Polars DataFrame, or None (noted in
        `problems`) when the artifact or the file is missing."""
        import polars as pl

        a = getattr(self, kind)
        if a is None:
            return None
        m = a.manifest
        try:
            data = self.ws.read_bytes(f"{m.stage}/{m.id}/{name}")
        except FileNotFoundError:
            self.problems.append(f"{m.ref}/{name} is missing")
            return None
        return pl.read_parquet(io.BytesIO(data), columns=columns)


def gather(ws: Workspace, config: Config, parents: Mapping[str, artifacts.Manifest]) -> Sources:
    """The typed view of every parent manifest ({kind: manifest}). A manifest of an older
    schema fails here, with the error naming the command that rebuilds it."""
    src = Sources(ws, config, **{OTHER_KINDS.get(kind, kind): READERS[kind](m) for kind, m in parents.items()})
    if config.worldmodels not in ("", "none"):
        from strates.worldmodels import artifact as worldmodels_artifact
        from strates.worldmodels import dream

        src.worldmodels = worldmodels_artifact.load(ws, config.worldmodels)
        if config.dream not in ("", "none"):
            src.dream = dream.load(ws, config.dream)
    return src


def latest_worldmodels(ws: Workspace, dataset_id: str) -> tuple[str, str]:
    """The ids of the most recent `worldmodels` artifact built on `dataset_id` and of its most
    recent `dream` ("" where there is none)."""
    every = artifacts.list_artifacts(ws)
    found = [m for m in every if m.stage == "worldmodels" and m.parents.get("dataset") == dataset_id]
    if not found:
        return "", ""
    wm = max(found, key=lambda m: m.created)
    dreams = [m for m in every if m.stage == "dream" and m.parents.get("worldmodels") == wm.id]
    return wm.id, (max(dreams, key=lambda m: m.created).id if dreams else "")
