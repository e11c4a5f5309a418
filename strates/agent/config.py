"""Strate IV config: the trading environment, the TD-MPC2-style agent, its offline
training, the MPPI planner and the backtest."""

from __future__ import annotations

import dataclasses
import enum

from strates.core.config import coerce_choices
from strates.core.errors import ConfigError
from strates.core.train import TrainConfig

DEFAULT_PRESET = "small"


class PlannerKind(enum.StrEnum):
    """`mppi`: plan on the CVaR of sampled futures; `policy`: the policy prior alone."""

    MPPI = "mppi"
    POLICY = "policy"


class Uncertainty(enum.StrEnum):
    """The signal that weights the conservative penalty per transition: `none`, or the
    spread of the Q ensemble (`q_ensemble`)."""

    NONE = "none"
    Q_ENSEMBLE = "q_ensemble"


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=field)


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Costs are charged per side on |Δposition|; `vol_scaled` divides the PnL term of the
    training reward by a causal trailing volatility (risk parity)."""

    cost_bps: float = 5.0
    vol_scaled: bool = False
    vol_window: int = 24

    def __post_init__(self):
        _check(0 <= self.cost_bps <= 1000, "env.cost_bps",
               f"env.cost_bps must be in [0, 1000] bps, got {self.cost_bps}")
        _check(self.vol_window >= 2, "env.vol_window", f"env.vol_window must be >= 2 bars, got {self.vol_window}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    latent_dim: int = 64
    simnorm_dim: int = 8  # SimNorm group size (TD-MPC2); latent_dim must be a multiple
    width: int = 128
    q_ensemble: int = 5

    def __post_init__(self):
        _check(self.latent_dim % self.simnorm_dim == 0, "model.latent_dim",
               f"model.latent_dim {self.latent_dim} must be a multiple of model.simnorm_dim {self.simnorm_dim}")
        _check(self.q_ensemble >= 2, "model.q_ensemble", f"model.q_ensemble must be >= 2, got {self.q_ensemble}")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Loss weights after TD-MPC2 (consistency 20, reward 0.1, value 0.1), a discount for
    hourly bars, the target-network EMA rate, and the conservative (CQL) penalty, which can
    be weighted per transition by an uncertainty signal."""

    gamma: float = 0.9
    tau: float = 0.01
    consistency: float = 20.0
    reward: float = 0.1
    value: float = 0.1
    entropy: float = 1e-4
    cql: float = 0.5
    cql_samples: int = 4  # per source (relabelling distribution, policy)
    uncertainty: Uncertainty = Uncertainty.Q_ENSEMBLE
    uncertainty_weight: float = 1.0

    def __post_init__(self):
        coerce_choices(self, "loss.")
        _check(0 < self.gamma < 1, "loss.gamma", f"loss.gamma must be in (0, 1), got {self.gamma}")
        _check(0 < self.tau <= 1, "loss.tau", f"loss.tau must be in (0, 1], got {self.tau}")


@dataclasses.dataclass(frozen=True)
class ReplayConfig:
    """Uniform replay, or prioritized replay by |TD error| (LaBER: a uniform pool of
    `pool` x batch transitions, down-sampled in the step with probability ∝ |δ|^alpha and
    importance weights (N p)^-beta, so no priority state needs checkpointing)."""

    prioritized: bool = False
    pool: int = 4
    alpha: float = 0.6
    beta: float = 0.4


@dataclasses.dataclass(frozen=True)
class PlannerConfig:
    """MPPI over position sequences (TD-MPC2's defaults: 512 samples, 64 elites, 6
    iterations, horizon 3), scored by the CVaR at `cvar_alpha` of the path PnL over the
    `futures` drawn by Strate III; `cvar_alpha = 1` is the risk-neutral mean."""

    kind: PlannerKind = PlannerKind.MPPI
    samples: int = 512
    elites: int = 64
    iterations: int = 6
    horizon: int = 3
    temperature: float = 0.5
    min_std: float = 0.05
    max_std: float = 1.0
    policy_trajectories: int = 24
    cvar_alpha: float = 0.2
    futures: int = 16
    value_grid: int = 9  # positions at which the terminal value is evaluated, then interpolated
    nfe: int = 4  # vector-field evaluations per future drawn from Strate III (Euler)

    def __post_init__(self):
        coerce_choices(self, "planner.")
        _check(0 < self.cvar_alpha <= 1, "planner.cvar_alpha",
               f"planner.cvar_alpha must be in (0, 1], got {self.cvar_alpha}")
        _check(1 <= self.elites <= self.samples, "planner.elites",
               f"planner.elites {self.elites} must be between 1 and planner.samples {self.samples}")
        _check(0 <= self.policy_trajectories < self.samples, "planner.policy_trajectories",
               f"planner.policy_trajectories {self.policy_trajectories} must be below planner.samples {self.samples}")
        _check(0 < self.min_std <= self.max_std, "planner.min_std",
               f"need 0 < planner.min_std ({self.min_std}) <= planner.max_std ({self.max_std})")
        _check(self.horizon >= 1 and self.iterations >= 1 and self.futures >= 1, "planner.horizon",
               "planner.horizon, planner.iterations and planner.futures must be >= 1")
        _check(self.value_grid >= 2, "planner.value_grid", f"planner.value_grid must be >= 2, got {self.value_grid}")


@dataclasses.dataclass(frozen=True)
class BacktestConfig:
    """Costs the same positions are charged at (stress test), the baselines' settings, the
    number of configurations tried (for the deflated Sharpe ratio; at least the agent
    artifacts already in the workspace for the same cfm), an optional cap on the bars
    per period (0 = all), and the period: "" = the test period of every fold the models
    were not fitted on, or "START,END" (ISO dates, UTC, end exclusive)."""

    cost_levels: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0)
    momentum_window: int = 24
    random_seed: int = 0
    trials: int = 1
    max_bars: int = 0
    period: str = ""

    def __post_init__(self):
        _check(len(self.cost_levels) >= 1 and all(c >= 0 for c in self.cost_levels), "backtest.cost_levels",
               f"backtest.cost_levels must be non-negative bps, got {self.cost_levels}")
        _check(self.trials >= 1, "backtest.trials", f"backtest.trials must be >= 1, got {self.trials}")


@dataclasses.dataclass(frozen=True)
class Config:
    env: EnvConfig = EnvConfig()
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    replay: ReplayConfig = ReplayConfig()
    planner: PlannerConfig = PlannerConfig()
    backtest: BacktestConfig = BacktestConfig()
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=1000, batch_size=256, learning_rate=3e-4, warmup_steps=50, checkpoint_every=500, log_every=100
    ))


PRESETS: dict[str, dict] = {
    "debug": {
        "model.latent_dim": 16, "model.width": 32, "model.q_ensemble": 2, "planner.samples": 64,
        "planner.elites": 8, "planner.iterations": 2, "planner.horizon": 2, "planner.policy_trajectories": 4,
        "planner.futures": 4, "planner.value_grid": 5, "planner.nfe": 2, "backtest.max_bars": 60,
        "train.steps": 40, "train.batch_size": 32, "train.warmup_steps": 4, "train.checkpoint_every": 20,
        "train.log_every": 10,
    },
    "small": {},
    "base": {
        "model.latent_dim": 128, "model.width": 512, "loss.cql_samples": 8, "planner.futures": 32, "planner.nfe": 8,
        "planner.value_grid": 17,
        "train.steps": 10000, "train.batch_size": 512, "train.checkpoint_every": 2000,
    },
}
