"""How many configurations were tried on a dataset, for the deflated Sharpe ratio.

A Sharpe ratio reported as evidence is deflated by the number of configurations tried on
the same data (Bailey & López de Prado 2014): every tokenizer, JEPA, CFM, agent and
multiverse variant a researcher built on the dataset could have been the one shown. The
census counts the *end-to-end configurations* in the workspace, i.e. the leaves of the
tree of artifacts built on the dataset:

- every agent (its deterministic policy is one strategy), this one included;
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

from strates.core import artifacts
from strates.core.workspace import Workspace

UPSTREAM = ("tokenizer", "tokens", "jepa", "cfm")
VARIANTS_PER_MULTIVERSE = 2


@dataclasses.dataclass(frozen=True)
class Census:
    """`counted`: stage -> ids counted as trials (the candidate's own under "candidate");
    `sharpes`: cost key -> per-bar Sharpe ratios of the earlier trials on the period."""

    counted: dict[str, list[str]]
    sharpes: dict[str, list[float]]

    @property
    def n_trials(self) -> int:
        return (len(self.counted.get("agent", [])) + len(self.counted.get("candidate", []))
                + VARIANTS_PER_MULTIVERSE * len(self.counted.get("multiverse", []))
                + sum(len(self.counted.get(s, [])) for s in UPSTREAM))

    def to_dict(self) -> dict:
        return {"n_trials": self.n_trials, "counted": {k: sorted(v) for k, v in sorted(self.counted.items()) if v}}


def _per_bar(sharpe: float, manifest: artifacts.Manifest) -> float | None:
    ppy = manifest.summary.get("periods_per_year")
    return None if not ppy else float(sharpe) / math.sqrt(float(ppy))


def census(ws: Workspace, dataset_id: str, *, candidate: str, chain: dict[str, str], period: str = "test",
           extra: tuple[str, ...] = ()) -> Census:
    """The trials on `dataset_id`. `candidate`: the id of the artifact being built (not yet
    published), `chain`: its parents (stage -> id), which therefore have a child; `extra`:
    the candidate's strategies when it is not one itself (a multiverse artifact: its
    filtered and sized policies; its deterministic policy is the agent's, counted there). Sharpes are read from every published
    agent's `backtest[period]` table and every multiverse artifact's comparison."""
    on_data = [m for m in artifacts.list_artifacts(ws) if m.parents.get("dataset") == dataset_id and m.id != candidate]
    has_child = {f"{s}/{i}" for s, i in chain.items()}
    for m in on_data:
        has_child.update(f"{s}/{i}" for s, i in m.parents.items())
    counted: dict[str, list[str]] = {"candidate": [f"{candidate}:{v}" for v in extra] if extra else [candidate]}
    sharpes: dict[str, list[float]] = {}

    def add(cost: str, value: float | None) -> None:
        if value is not None and math.isfinite(value):
            sharpes.setdefault(cost, []).append(value)

    for m in on_data:
        if m.stage == "agent":
            counted.setdefault("agent", []).append(m.id)
            row = m.metrics.get("backtest", {}).get(period, {}).get("table", {}).get("agent", {})
            for cost, figures in row.items():
                add(cost, _per_bar(figures["sharpe"], m))
        elif m.stage == "multiverse":
            counted.setdefault("multiverse", []).append(m.id)
            table = m.metrics.get("comparison", {})
            for policy in ("filtered", "sized"):
                for cost, figures in table.get(policy, {}).items():
                    add(cost, _per_bar(figures["sharpe"], m))
        elif m.stage in UPSTREAM and m.ref not in has_child:
            counted.setdefault(m.stage, []).append(m.id)
    return Census(counted=counted, sharpes=sharpes)
