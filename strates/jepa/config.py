"""Strate II config: the Mamba-2 JEPA, its loss, the EMA target, data windows, probes, and
the devices it trains on.

Presets: `debug` (seconds), `small` (default on CPU, minutes on 2 cores), `base` (one GPU),
and TPU scaling presets, each sized for a kind of slice (`SIZED_FOR`): `v5e-12m` (about 12M
parameters) for single-host slices, `v6e-36m` (about 36M) for multi-host ones such as
v6e-64; both use head and state dims of 128 (TPU lanes), bf16 activations and fp32 SSD
accumulators. `preset_for(topology)` is the preset `chaos train-jepa --topology T` uses when
no `--preset` is given; inspect any of them anywhere with
`chaos train-jepa --topology v6e-64 --dry-run`.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING

from strates.core.config import coerce_choices
from strates.core.errors import ConfigError
from strates.core.train import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from strates.core.topology import Topology

DEFAULT_PRESET = "small"


class Dtype(enum.StrEnum):
    """Activation dtype; parameters and SSD accumulators stay float32."""

    FLOAT32 = "float32"
    BFLOAT16 = "bfloat16"


class SsdImpl(enum.StrEnum):
    """The SSD scan's form (`kernels.ssd.dispatch`): `auto` is Pallas on TPU/GPU, the
    chunked XLA form elsewhere."""

    AUTO = "auto"
    XLA = "xla"
    PALLAS = "pallas"
    REFERENCE = "reference"


class Distance(enum.StrEnum):
    """The prediction distance between normalised predicted and target states."""

    MSE = "mse"
    SMOOTH_L1 = "smooth_l1"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    d_model: int = 64
    n_layers: int = 4
    horizon: int = 8  # K future bars predicted from each context state
    d_pred: int | None = None  # predictor width (default max(head_dim, d_model // 2))
    pred_layers: int = 1
    d_state: int = 32
    head_dim: int = 32
    expand: int = 2
    macro_heads: int = 2
    macro_every: int = 2  # a macro cross-attention layer after every this many Mamba-2 blocks
    chunk: int = 64  # SSD chunk length
    dtype: Dtype = Dtype.FLOAT32  # activations; parameters and SSD accumulators stay float32
    ssd_impl: SsdImpl = SsdImpl.AUTO

    def __post_init__(self):
        coerce_choices(self, "model.")
        if (self.expand * self.d_model) % self.head_dim:
            raise ConfigError(
                f"expand * d_model = {self.expand * self.d_model} is not a multiple of head_dim = {self.head_dim}",
                fix="choose d_model and head_dim so that head_dim divides expand * d_model", field="model.head_dim",
            )


@dataclasses.dataclass(frozen=True)
class LossConfig:
    n_spans: int = 8  # span starts per sequence
    ctx_min: int = 16  # no span starts before this many bars of context
    pred_weight: float = 1.0
    var_weight: float = 1.0  # VICReg variance
    cov_weight: float = 0.04  # VICReg covariance (VICReg's 25:1 ratio to variance)
    distance: Distance = Distance.MSE

    def __post_init__(self):
        coerce_choices(self, "loss.")


@dataclasses.dataclass(frozen=True)
class EmaConfig:
    """Target encoder = EMA of the context encoder, tau rising from tau_start to tau_end
    along a cosine over training (BYOL, I-JEPA)."""

    tau_start: float = 0.99
    tau_end: float = 1.0

    def __post_init__(self):
        if not 0.0 <= self.tau_start <= self.tau_end <= 1.0:
            raise ConfigError(
                f"need 0 <= ema.tau_start ({self.tau_start}) <= ema.tau_end ({self.tau_end}) <= 1", field="ema"
            )


@dataclasses.dataclass(frozen=True)
class DataConfig:
    window: int = 256  # bars per training window


@dataclasses.dataclass(frozen=True)
class ProbeConfig:
    """The probes' targets and baselines (`strates.jepa.probe`). The volatility target is
    log realised volatility over the next `horizon` bars minus log RMS of the last
    `vol_window` returns up to t: with both 24, the next day's against the last day's on
    hourly bars, measured with the same number of returns on each side."""

    horizon: int = 24  # bars ahead for realised volatility and return sign
    raw_window: int = 24  # bars of raw features in the trailing-window baseline
    vol_window: int = 24  # bars in the trailing volatility level the volatility target is relative to

    def __post_init__(self):
        if self.vol_window < 2:
            raise ConfigError(
                f"probe.vol_window must be >= 2 bars (a trailing RMS of returns), got {self.vol_window}",
                fix="e.g. --set probe.vol_window=24", field="probe.vol_window",
            )


@dataclasses.dataclass(frozen=True)
class SelectConfig:
    """The validation period is cut in two at `share` of its length: the checkpoint is
    chosen on the first part (recorded as `selected` in the manifest), and the probes and
    RankMe reported as results are measured on the second, which chose nothing."""

    share: float = 0.5

    def __post_init__(self):
        if not 0.0 < self.share < 1.0:
            raise ConfigError(
                f"select.share {self.share} must be strictly between 0 and 1 (the share of the validation period "
                "that chooses the checkpoint; the rest is kept for the diagnostics)",
                fix="use e.g. --set select.share=0.5", field="select.share",
            )


@dataclasses.dataclass(frozen=True)
class DeviceConfig:
    """Where it trains: a `--topology` name (`cpu`, `auto`, `v6e-64`, ...) and an optional
    mesh override (`data=2,fsdp=4`). Not part of the artifact's id: a sharded run trains
    the same model (tests/jepa/test_stage.py); the summary records where it ran."""

    topology: str = "cpu"
    mesh: str | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    loss: LossConfig = LossConfig()
    ema: EmaConfig = EmaConfig()
    data: DataConfig = DataConfig()
    probe: ProbeConfig = ProbeConfig()
    select: SelectConfig = SelectConfig()
    train: TrainConfig = dataclasses.field(default_factory=lambda: TrainConfig(
        steps=300, batch_size=16, learning_rate=1e-3, warmup_steps=30, checkpoint_every=100, log_every=10,
        max_to_keep=3,
    ))
    device: DeviceConfig = DeviceConfig()

    def __post_init__(self):
        if self.data.window <= self.loss.ctx_min + self.model.horizon:
            raise ConfigError(
                f"data.window ({self.data.window}) must exceed loss.ctx_min + model.horizon "
                f"({self.loss.ctx_min} + {self.model.horizon})", field="data.window",
            )


PRESETS: dict[str, dict] = {
    "debug": {
        "model.d_model": 32, "model.n_layers": 2, "model.d_state": 16, "model.head_dim": 16, "model.horizon": 4,
        "model.chunk": 16, "data.window": 64, "loss.ctx_min": 8, "loss.n_spans": 4,
        "train.steps": 12, "train.batch_size": 8, "train.warmup_steps": 2, "train.checkpoint_every": 6,
        "train.log_every": 3,
    },
    "small": {},
    # `chaos bench lyapunov`: one small JEPA per system, a few seconds on 2 cores
    "bench": {
        "model.d_model": 32, "model.n_layers": 2, "model.d_state": 16, "model.head_dim": 16, "model.horizon": 4,
        "model.chunk": 16, "data.window": 64, "loss.ctx_min": 8, "loss.n_spans": 4,
        "train.steps": 200, "train.batch_size": 16, "train.warmup_steps": 10, "train.checkpoint_every": 100,
        "train.log_every": 50,
    },
    "base": {
        "model.d_model": 256, "model.n_layers": 8, "model.d_state": 64, "model.head_dim": 64,
        "model.macro_heads": 4, "data.window": 512, "train.steps": 5000, "train.batch_size": 64,
        "train.warmup_steps": 250, "train.checkpoint_every": 500, "train.log_every": 50,
    },
    # ~12M parameters for a single-host TPU slice (v5e-8: 8 chips of 16 GB): head, state
    # and macro-head dims of 128 (TPU lanes), bf16 activations, fp32 SSD accumulation,
    # 8 sequences of 1024 bars per chip.
    "v5e-12m": {
        "model.d_model": 512, "model.n_layers": 5, "model.d_state": 128, "model.head_dim": 128,
        "model.macro_heads": 4, "model.chunk": 128, "model.dtype": "bfloat16",
        "model.horizon": 16, "data.window": 1024, "loss.ctx_min": 64, "loss.n_spans": 16,
        "train.steps": 10000, "train.batch_size": 64, "train.learning_rate": 8e-4, "train.warmup_steps": 500,
        "train.checkpoint_every": 1000, "train.log_every": 100,
    },
    # ~36M parameters for a v6e-64 slice: head_dim a multiple of 128 (TPU lanes), bf16
    # activations, fp32 SSD accumulation; the global batch spreads over the data x fsdp axes.
    "v6e-36m": {
        "model.d_model": 768, "model.n_layers": 7, "model.d_state": 128, "model.head_dim": 128,
        "model.macro_heads": 6, "model.pred_layers": 2, "model.chunk": 128, "model.dtype": "bfloat16",
        "model.horizon": 16, "data.window": 1024, "loss.ctx_min": 64, "loss.n_spans": 16,
        "train.steps": 20000, "train.batch_size": 256, "train.learning_rate": 6e-4, "train.warmup_steps": 1000,
        "train.checkpoint_every": 1000, "train.log_every": 100,
    },
}


def identity(config: Config) -> dict:
    """What enters the artifact id: the whole config but `device` (where it ran)."""
    from strates.core.config import to_dict

    return {k: v for k, v in to_dict(config).items() if k != "device"}


@dataclasses.dataclass(frozen=True)
class Sizing:
    """What a preset was sized for: a `platform` (cpu, gpu, tpu), slices of `min_chips` to
    `max_chips` chips (the default pick for them), and the sequences per device its global
    batch gives on `chips` chips (`per_device`)."""

    platform: str
    min_chips: int
    max_chips: int
    chips: int
    per_device: int

    def describe(self) -> str:
        """E.g. 'a 64-chip TPU slice', 'CPU'."""
        return f"a {self.chips}-chip TPU slice" if self.platform == "tpu" else self.platform.upper()


SIZED_FOR: dict[str, Sizing] = {
    "small": Sizing("cpu", 1, 1 << 30, 1, 16),
    "base": Sizing("gpu", 1, 1 << 30, 1, 64),
    "v5e-12m": Sizing("tpu", 1, 8, 8, 8),
    "v6e-36m": Sizing("tpu", 9, 1 << 30, 64, 4),
}


def preset_for(topology: Topology) -> str:
    """The preset sized for `topology` (see `SIZED_FOR`): `small` on CPU, `base` on GPUs,
    `v5e-12m` on single-host TPU slices (up to 8 chips), `v6e-36m` on larger slices."""
    for name, sizing in SIZED_FOR.items():
        if sizing.platform == topology.platform and sizing.min_chips <= topology.chips <= sizing.max_chips:
            return name
    return DEFAULT_PRESET


def choose_presets(names: list[str] | tuple[str, ...] | None, topology: str) -> tuple[tuple[str, ...], bool]:
    """(presets, picked): the `--preset` names when given (they win), else the preset
    sized for `topology` (`preset_for`; `cpu` and `auto` look at the devices present)."""
    if names:
        return tuple(names), False
    from strates.core.topology import get_topology

    return (preset_for(get_topology(topology)),), True
