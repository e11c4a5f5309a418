"""Strate III config: the futures to draw, the vector field, the coupling, sampling, scoring."""

from __future__ import annotations

import dataclasses
import enum

from strates.cfm.scale import ScaleConfig
from strates.core.config import coerce_choices
from strates.core.errors import ConfigError
from strates.core.train import TrainConfig

DEFAULT_PRESET = "small"


class Coupling(enum.StrEnum):
    """How noise is paired with futures in a minibatch (see `ot.coupling`)."""

    INDEPENDENT = "independent"  # I-CFM
    OT = "ot"  # minibatch optimal transport, ignoring the condition
    COT = "cot"  # condition-aware OT (C²OT)


class Method(enum.StrEnum):
    """The ODE integrator used to sample futures (see `sample.py`)."""

    EULER = "euler"
    HEUN = "heun"
    MIDPOINT = "midpoint"


@dataclasses.dataclass(frozen=True)
class FutureConfig:
    """A future x = H next JEPA states (scaled by sqrt(D)) and H next log returns in units
    of the asset's trailing volatility at t (`scale.py`). `return_share`: the share of the
    flow-matching loss carried by the H return dims (the H * D state dims carry the rest;
    with plain averaging the returns would carry H / (H * (D + 1)), about 2%). `tail_df`:
    the degrees of freedom of the Student-t source noise of the return dims (0: Gaussian;
    see `model.source`)."""

    horizon: int = 8
    return_share: float = 0.95
    tail_df: float = 4.0

    def __post_init__(self):
        if not 0.0 < self.return_share < 1.0:
            raise ConfigError(f"future.return_share must be in (0, 1), got {self.return_share}",
                              field="future.return_share")
        if self.tail_df and self.tail_df <= 2.0:
            raise ConfigError(f"future.tail_df must be above 2 (a finite variance) or 0 (Gaussian), got "
                              f"{self.tail_df}", field="future.tail_df")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    width: int = 256
    depth: int = 3


@dataclasses.dataclass(frozen=True)
class CouplingConfig:
    """independent: I-CFM; ot: minibatch OT ignoring the condition; cot: condition-aware OT
    (C²OT: the cost adds cond_weight * x_dim * ||h_i - h_j||^2; scaling by x_dim keeps the
    weight meaningful whatever the size of the future, since ||x0 - x1||^2 grows like
    2 * x_dim while unit-norm conditions differ by at most 4)."""

    kind: Coupling = Coupling.COT
    cond_weight: float = 2.0  # measured (debug preset): 1 -> 13% of rows keep their own condition, 2 -> 41%, 4 -> 91%
    compare: bool = True  # also train the other two couplings (same steps) for the comparison table

    def __post_init__(self):
        coerce_choices(self, "coupling.")

    @property
    def trained(self) -> tuple[Coupling, ...]:
        """The couplings trained: the configured one first, then (with `compare`) the others."""
        return (self.kind, *(k for k in Coupling if k != self.kind and self.compare))


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    futures: int = 32  # N futures per state when scoring
    nfe: int = 8
    method: Method = Method.HEUN

    def __post_init__(self):
        coerce_choices(self, "sample.")
        if self.method != "euler" and self.nfe % 2:
            raise ConfigError(f"sample.nfe {self.nfe} must be even for {self.method} (2 evaluations a step)",
                              field="sample.nfe")


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Scoring: `max_states` per period (evenly spaced), for speed; `vol_window` the trailing
    window of the Gaussian random walk; the GARCH(1,1)-t baseline refitted every
    `garch_refit` bars on the last `garch_window` returns (0: all the past);
    `bootstrap_replicates` of the block bootstrap of the skill intervals; `recalibrate`:
    also fit a spread factor on validation and report the futures with and without it."""

    max_states: int = 400
    vol_window: int = 24
    garch_refit: int = 250
    garch_window: int = 0
    bootstrap_replicates: int = 1000
    recalibrate: bool = True


@dataclasses.dataclass(frozen=True)
class Config:
    future: FutureConfig = FutureConfig()
    model: ModelConfig = ModelConfig()
    coupling: CouplingConfig = CouplingConfig()
    sample: SampleConfig = SampleConfig()
    eval: EvalConfig = EvalConfig()
    scale: ScaleConfig = ScaleConfig()
    ensemble: int = 1
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=3000, batch_size=128, learning_rate=1e-3, warmup_steps=50, checkpoint_every=500, log_every=100
    ))

    def __post_init__(self):
        if not 1 <= self.ensemble <= 16:
            raise ConfigError(f"ensemble must be between 1 and 16, got {self.ensemble}", field="ensemble")


PRESETS: dict[str, dict] = {
    "debug": {
        "future.horizon": 4, "model.width": 64, "model.depth": 2, "sample.futures": 8, "sample.nfe": 4,
        "eval.max_states": 40, "train.steps": 30, "train.batch_size": 32, "train.warmup_steps": 3,
        "train.checkpoint_every": 15, "train.log_every": 10,
    },
    "small": {},
    # `chaos bench lyapunov`: one small flow per system (the main coupling only), scored on few states
    "bench": {
        "future.horizon": 8, "model.width": 128, "model.depth": 2, "coupling.compare": False, "sample.futures": 16,
        "sample.nfe": 4, "eval.max_states": 60, "eval.bootstrap_replicates": 200, "train.steps": 800,
        "train.batch_size": 64, "train.warmup_steps": 20, "train.checkpoint_every": 400, "train.log_every": 100,
    },
    "base": {
        "future.horizon": 16, "model.width": 512, "model.depth": 4, "sample.futures": 64,
        "eval.max_states": 2000, "train.steps": 5000, "train.batch_size": 256,
        "train.checkpoint_every": 1000, "train.log_every": 100,
    },
}
