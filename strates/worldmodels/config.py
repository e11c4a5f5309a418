"""World Models config: the per-bar features, V (the VAE), M (the MDN-RNN), C (the linear
controller searched by CMA-ES in the dream), the regimes and the backtest.

Presets compose like every stage's: `debug` (seconds, for tests), `small` (the default),
`base`.
"""

from __future__ import annotations

import dataclasses
import enum

from strates.agent.config import BacktestConfig  # one backtest: the same settings as the TD-MPC2 agent's
from strates.core.config import coerce_choices
from strates.core.errors import ConfigError
from strates.core.train import TrainConfig

DEFAULT_PRESET = "small"


class Fitness(enum.StrEnum):
    """What CMA-ES maximises over the dreams: the `mean` dream PnL, or its lower-tail `cvar`
    at `controller.cvar_alpha` (the same CVaR as the TD-MPC2 planner)."""

    MEAN = "mean"
    CVAR = "cvar"


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=field)


@dataclasses.dataclass(frozen=True)
class FeaturesConfig:
    """V reads a window of `window` bars, each bar the tokenizer's six causal features
    (`strates.fsq.features`: ret_z, range_z, body, wicks, rel_volume; trailing levels over
    `vol_window` / `volume_window` bars) plus the dataset's macro series as of each bar,
    clipped to the training quantiles (`clip_quantile`) and standardised on the training
    period."""

    window: int = 8
    vol_window: int = 64
    volume_window: int = 24
    clip_quantile: float = 0.001

    def __post_init__(self):
        _check(self.window >= 1, "features.window", f"features.window must be >= 1 bar, got {self.window}")
        _check(0 <= self.clip_quantile < 0.5, "features.clip_quantile",
               f"features.clip_quantile must be in [0, 0.5), got {self.clip_quantile}")


@dataclasses.dataclass(frozen=True)
class VaeConfig:
    """V: Gaussian encoder and decoder MLPs of `width`, latent z of `latent` dims. The loss is
    the negative ELBO: squared reconstruction error (a unit-variance Gaussian decoder, in
    nats) + `kl_weight` x KL, where each latent dim's KL counts at least `free_bits` nats
    (Kingma et al. 2016's free bits: below that, the dim is not pushed to the prior)."""

    latent: int = 16
    width: int = 128
    kl_weight: float = 1.0
    free_bits: float = 0.1
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=1500, batch_size=256, learning_rate=1e-3, warmup_steps=50, checkpoint_every=500, log_every=100))

    def __post_init__(self):
        _check(self.latent >= 1 and self.width >= 1, "vae.latent", "vae.latent and vae.width must be >= 1")
        _check(self.kl_weight >= 0, "vae.kl_weight", f"vae.kl_weight must be >= 0, got {self.kl_weight}")
        _check(self.free_bits >= 0, "vae.free_bits", f"vae.free_bits must be >= 0 nats, got {self.free_bits}")


@dataclasses.dataclass(frozen=True)
class MdnConfig:
    """M: an LSTM of `hidden` units over (z_t, a_t), a mixture of `mixtures` diagonal
    Gaussians over (z_{t+1}, ρ_{t+1}) with ρ the next bar's log return over the training
    period's return std, trained on sequences of `seq_len` bars by negative log-likelihood;
    `reward_weight` weighs ρ's dimension in the NLL against z's."""

    hidden: int = 64
    mixtures: int = 5
    seq_len: int = 64
    reward_weight: float = 4.0
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=1500, batch_size=64, learning_rate=1e-3, warmup_steps=50, checkpoint_every=500, log_every=100))

    def __post_init__(self):
        _check(self.hidden >= 1, "mdn.hidden", f"mdn.hidden must be >= 1, got {self.hidden}")
        _check(self.mixtures >= 1, "mdn.mixtures", f"mdn.mixtures must be >= 1, got {self.mixtures}")
        _check(self.seq_len >= 2, "mdn.seq_len", f"mdn.seq_len must be >= 2 bars, got {self.seq_len}")
        _check(self.reward_weight > 0, "mdn.reward_weight", f"mdn.reward_weight must be > 0, got {self.reward_weight}")


@dataclasses.dataclass(frozen=True)
class ControllerConfig:
    """C: `a = tanh(W [z, h] + b)`, searched by CMA-ES (evosax) with `population` candidates
    a generation, initial step size `sigma0`, for `generations`. A candidate's fitness is the
    `fitness` statistic of the PnL after `cost_bps` (per side) of `dreams` dreams of `horizon`
    bars at `temperature`, started from training-period states (the same starts and dream
    noise for every candidate of a generation, new ones each generation). Every
    `select_every` generations the search mean is backtested on the validation period; the
    best of those is the controller (selection on validation). `finetune_generations` > 0
    then goes on searching on the real training period's PnL (the fitness then is that
    period's Sharpe at `cost_bps`)."""

    population: int = 64
    sigma0: float = 0.1
    generations: int = 40
    dreams: int = 256
    horizon: int = 32
    temperature: float = 1.0
    fitness: Fitness = Fitness.MEAN
    cvar_alpha: float = 0.2
    cost_bps: float = 5.0
    select_every: int = 5
    finetune_generations: int = 0

    def __post_init__(self):
        coerce_choices(self, "controller.")
        _check(self.population >= 4, "controller.population",
               f"controller.population must be >= 4 (CMA-ES needs parents), got {self.population}")
        _check(self.sigma0 > 0, "controller.sigma0", f"controller.sigma0 must be > 0, got {self.sigma0}")
        _check(self.generations >= 1 and self.select_every >= 1, "controller.generations",
               "controller.generations and controller.select_every must be >= 1")
        _check(self.dreams >= 1 and self.horizon >= 1, "controller.dreams",
               "controller.dreams and controller.horizon must be >= 1")
        _check(self.temperature > 0, "controller.temperature",
               f"controller.temperature must be > 0, got {self.temperature}")
        _check(0 < self.cvar_alpha <= 1, "controller.cvar_alpha",
               f"controller.cvar_alpha must be in (0, 1], got {self.cvar_alpha}")
        _check(0 <= self.cost_bps <= 1000, "controller.cost_bps",
               f"controller.cost_bps must be in [0, 1000] bps, got {self.cost_bps}")
        _check(self.finetune_generations >= 0, "controller.finetune_generations",
               f"controller.finetune_generations must be >= 0, got {self.finetune_generations}")


@dataclasses.dataclass(frozen=True)
class RegimesConfig:
    """Gaussian mixtures over the training period's latents, k = 1..`k_max` chosen by BIC,
    fitted on at most `max_fit` latents drawn with the seed."""

    k_max: int = 6
    max_fit: int = 8_000

    def __post_init__(self):
        _check(self.k_max >= 1, "regimes.k_max", f"regimes.k_max must be >= 1, got {self.k_max}")
        _check(self.max_fit >= 100, "regimes.max_fit", f"regimes.max_fit must be >= 100, got {self.max_fit}")


@dataclasses.dataclass(frozen=True)
class Config:
    """`fold`: the dataset fold (empty: the first). `init_from`: the id of a `worldmodels`
    artifact whose V and M start this one's training (transfer; set from `--init-from`)."""

    features: FeaturesConfig = FeaturesConfig()
    vae: VaeConfig = VaeConfig()
    mdn: MdnConfig = MdnConfig()
    controller: ControllerConfig = ControllerConfig()
    regimes: RegimesConfig = RegimesConfig()
    backtest: BacktestConfig = BacktestConfig()
    fold: str = ""
    init_from: str = ""
    seed: int = 0

    def __post_init__(self):
        _check(self.mdn.seq_len > 1, "mdn.seq_len", "mdn.seq_len must be > 1")


PRESETS: dict[str, dict] = {
    "debug": {
        "features.window": 4, "vae.latent": 4, "vae.width": 16, "mdn.hidden": 16, "mdn.mixtures": 3,
        "mdn.seq_len": 16, "controller.population": 8, "controller.generations": 4, "controller.dreams": 16,
        "controller.horizon": 8, "controller.select_every": 2, "regimes.k_max": 3, "regimes.max_fit": 2000,
        "backtest.max_bars": 200,
        "vae.train.steps": 30, "vae.train.batch_size": 64, "vae.train.warmup_steps": 3,
        "vae.train.checkpoint_every": 30, "vae.train.log_every": 10,
        "mdn.train.steps": 30, "mdn.train.batch_size": 16, "mdn.train.warmup_steps": 3,
        "mdn.train.checkpoint_every": 30, "mdn.train.log_every": 10,
    },
    "small": {},
    "base": {
        "vae.latent": 32, "vae.width": 256, "mdn.hidden": 256, "controller.generations": 150,
        "controller.dreams": 1024, "controller.horizon": 64,
        "vae.train.steps": 6000, "mdn.train.steps": 6000, "mdn.train.batch_size": 128,
    },
}
