"""How many configurations were tried on a dataset, for the deflated Sharpe ratio.

A Sharpe ratio reported as evidence is deflated by the number of configurations tried on
the same data (Bailey & López de Prado 2014): every tokenizer, JEPA, CFM, agent and
multiverse variant a researcher built on the dataset could have been the one shown. The
census counts the *end-to-end configurations* in the workspace, i.e. the leaves of the
tree of artifacts built on the dataset:

- every agent (its deterministic policy is one strategy), this one included, and every
  World Models controller (`worldmodels`);
- two per multiverse artifact (its filtered and its consensus-sized policies);
- every tokenizer, tokens, JEPA or CFM artifact that nothing downstream was built on (a
  variant tried and dropped before a backtest).

The trial Sharpe ratios (for the variance of the trials' Sharpes) are those of the agents
and multiverse variants already backtested on the same period, each at the same cost level
as the row it deflates; the candidate's own Sharpe is added by `backtest.evaluate`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable

from strates.agent.artifact import Performance, Trials, read
from strates.core import artifacts
from strates.core.workspace import Workspace

UPSTREAM = ("tokenizer", "tokens", "jepa", "cfm")
VARIANTS_PER_MULTIVERSE = 2


@dataclasses.dataclass(frozen=True)
class Census:
    """`counted`: stage -> ids counted as trials (the candidate's own under "candidate");
    `sharpes`: cost level (bps) -> per-bar Sharpe ratios of the earlier trials on the period."""

    counted: dict[str, list[str]]
    sharpes: dict[float, list[float]]

    @property
    def n_trials(self) -> int:
        return (len(self.counted.get("agent", [])) + len(self.counted.get("candidate", []))
                + len(self.counted.get("worldmodels", []))
                + VARIANTS_PER_MULTIVERSE * len(self.counted.get("multiverse", []))
                + sum(len(self.counted.get(s, [])) for s in UPSTREAM))

    def trials(self) -> Trials:
        """As recorded in a manifest's summary."""
        return Trials(self.n_trials, {k: tuple(sorted(v)) for k, v in sorted(self.counted.items()) if v})


def census(ws: Workspace, dataset_id: str, *, candidate: str, chain: dict[str, str], period: str = "test",
           extra: tuple[str, ...] = ()) -> Census:
    """The trials on `dataset_id`. `candidate`: the id of the artifact being built (not yet
    published), `chain`: its parents (stage -> id), which therefore have a child; `extra`:
    the candidate's strategies when it is not one itself (a multiverse artifact: its
    filtered and sized policies; its deterministic policy is the agent's, counted there).
    Sharpes are read from every published agent's and World Models' backtest of `period`
    and every multiverse artifact's comparison."""
    from strates.multiverse import artifact as multiverse_artifact
    from strates.worldmodels import artifact as worldmodels_artifact

    on_data = [m for m in artifacts.list_artifacts(ws) if m.parents.get("dataset") == dataset_id and m.id != candidate]
    has_child = {f"{s}/{i}" for s, i in chain.items()}
    for m in on_data:
        has_child.update(f"{s}/{i}" for s, i in m.parents.items())
    counted: dict[str, list[str]] = {"candidate": [f"{candidate}:{v}" for v in extra] if extra else [candidate]}
    sharpes: dict[float, list[float]] = {}

    def add(rows: Iterable[Performance], strategies: tuple[str, ...], periods_per_year: float) -> None:
        for r in rows:
            if r.strategy in strategies and periods_per_year > 0 and math.isfinite(r.sharpe):
                sharpes.setdefault(r.cost_bps, []).append(r.sharpe / math.sqrt(periods_per_year))

    for m in on_data:
        if m.stage == "agent":
            counted.setdefault("agent", []).append(m.id)
            agent = read(m)
            done = [b for b in agent.metrics.backtest if b.name == period]
            add(done[0].rows if done else (), ("agent",), agent.summary.periods_per_year)
        elif m.stage == "worldmodels":
            counted.setdefault("worldmodels", []).append(m.id)
            wm = worldmodels_artifact.read(m)
            done = [b for b in wm.metrics.backtest if b.name == period]
            add(done[0].rows if done else (), (worldmodels_artifact.STRATEGY,), wm.summary.periods_per_year)
        elif m.stage == "multiverse":
            counted.setdefault("multiverse", []).append(m.id)
            mv = multiverse_artifact.read(m)
            add(mv.metrics.comparison, ("filtered", "sized"), mv.summary.periods_per_year)
        elif m.stage in UPSTREAM and m.ref not in has_child:
            counted.setdefault(m.stage, []).append(m.id)
    return Census(counted=counted, sharpes=sharpes)
