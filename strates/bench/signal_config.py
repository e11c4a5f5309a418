"""`chaos bench signal` config."""

from __future__ import annotations

import dataclasses
import math

from strates.core.errors import ConfigError

DEFAULT_PRESET = "default"
KAPPAS = (0.0, 0.05, 0.1, 0.2, 0.4)  # the default grid: oracle test Sharpe after 5 bps of about 0, 0.5, 1, 2, 4
PIPELINE = ("tokenizer", "tokens", "jepa", "cfm", "agent", "multiverse")  # the stages each kappa goes through

# The default chain: the `small` preset of every stage with fewer steps, one coupling and a
# smaller multiverse, so that the five markets of the grid fit in 30 minutes on 2 cores (the
# `small` pipeline alone takes about 10). Each override is `stage:key=value` (the stage's
# `--set`). The JEPA keeps its steps: it is the stage that holds the edge (README).
CHAIN_SETS = (
    "tokenizer:train.steps=200",
    "cfm:coupling.compare=false",
    "cfm:train.steps=1500",
    "agent:train.steps=500",
    "multiverse:universes=8",
    "multiverse:max_bars=32",
)


@dataclasses.dataclass(frozen=True)
class Config:
    """kappas: the planted edge's strengths (`chaos ingest --signal`), each a market of its
    own through the whole pipeline; chain: the preset of every stage; sets: further
    overrides of the chain's stages, each `stage:key=value`; cost_bps: the cost level of the
    headline figures (one of the agent's `backtest.cost_levels`; every level is recorded);
    replicates and level: the stationary block bootstrap of the intervals; seed: its seed;
    assets and bars: the embedded market's size (the default market by default: its oracle
    is scaled for it, and at kappa = 0 it is `chaos ingest`'s dataset, same id);
    flow_states and flow_futures: the test states and futures per state at which the flow's
    mean is read against the planted drift (`signal.flow_drift`)."""

    kappas: tuple[float, ...] = KAPPAS
    chain: str = "small"
    sets: tuple[str, ...] = CHAIN_SETS
    cost_bps: float = 5.0
    replicates: int = 2000
    level: float = 0.95
    seed: int = 0
    assets: int = 6
    bars: int = 8760
    flow_states: int = 256
    flow_futures: int = 512

    def __post_init__(self):
        checks = [
            (len(self.kappas) >= 1, "kappas", "kappas must name at least one strength"),
            (all(math.isfinite(k) and 0 <= k <= 10 for k in self.kappas), "kappas",
             f"every kappa must be in [0, 10], got {list(self.kappas)}"),
            (len(set(self.kappas)) == len(self.kappas), "kappas", "kappas must not repeat a value"),
            (list(self.kappas) == sorted(self.kappas), "kappas", "kappas must be in ascending order"),
            (self.cost_bps >= 0, "cost_bps", f"cost_bps must be >= 0, got {self.cost_bps}"),
            (self.replicates >= 100, "replicates", f"replicates must be >= 100, got {self.replicates}"),
            (0.5 <= self.level < 1, "level", f"level must be in [0.5, 1), got {self.level}"),
            (self.assets >= 1, "assets", f"assets must be >= 1, got {self.assets}"),
            (self.flow_states >= 3 and self.flow_futures >= 2, "flow_states",
             "flow_states must be >= 3 and flow_futures >= 2"),
            (self.bars >= 2000, "bars", f"bars must be >= 2000 (a test period of a few hundred bars), got {self.bars}"),
        ]
        for ok, field, message in checks:
            if not ok:
                raise ConfigError(message, field=field)
        for s in self.sets:
            stage, _, rest = s.partition(":")
            if stage not in PIPELINE or "=" not in rest:
                raise ConfigError(f"sets entry {s!r} is not `stage:key=value` with a stage of the pipeline",
                                  field="sets", fix=f"e.g. \"jepa:train.steps=400\"; stages: {', '.join(PIPELINE)}")

    def overrides(self) -> dict[str, list[str]]:
        """`sets` as {stage: ["key=value", ...]} (what `pipeline.run` takes)."""
        out: dict[str, list[str]] = {}
        for s in self.sets:
            stage, _, rest = s.partition(":")
            out.setdefault(stage, []).append(rest)
        return out


PRESETS: dict[str, dict] = {
    "default": {},
    # two small markets through the debug chain: seconds per kappa, figures meaningless (for tests)
    "debug": {"kappas": [0.0, 0.4], "chain": "debug", "sets": [], "replicates": 200, "assets": 2, "bars": 3000,
              "flow_states": 64, "flow_futures": 64},
}
