"""Strate I config: features, model, training; presets `debug`, `small` (default), `base`.

Presets compose (`--preset small --preset debug`) and `--set section.field=value`
overrides any field (e.g. `--set train.steps=200 --set model.width=32`). The resolved
config is saved as TOML in the tokenizer artifact.
"""

from __future__ import annotations

import dataclasses
import math

from strates.core.errors import ConfigError
from strates.core.train import TrainConfig

DEFAULT_PRESET = "small"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Encoder/decoder sizes and the FSQ levels (codebook size = product of levels)."""

    width: int = 64
    depth: int = 5  # encoder residual blocks; dilations 1, 2, 4, ... (receptive field 1 + (k-1)(2^depth - 1))
    decoder_depth: int = 3
    kernel: int = 3
    levels: tuple[int, ...] = (8, 8, 4, 4)  # 1024 codes; see strates.fsq.quantize

    def __post_init__(self):
        for name in ("width", "depth", "decoder_depth", "kernel"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} must be >= 1, got {getattr(self, name)}", field=f"model.{name}")
        if not self.levels or any(not isinstance(level, int) or level < 3 for level in self.levels):
            raise ConfigError(
                f"model.levels must be integers >= 3 (the tanh bound needs 3), got {self.levels}",
                fix="e.g. --set model.levels=[8,8,4,4] (1024 codes) or [8,5,5,5] (1000)", field="model.levels",
            )

    @property
    def codebook_size(self) -> int:
        return math.prod(self.levels)


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Reconstruction MSE minus a code-usage bonus.

    FSQ cannot collapse to a single code, but nothing in the reconstruction loss asks for
    the codes to be used evenly; on heavy-tailed features most bars fall on a few hundred
    codes. The bonus is the normalised entropy of the batch's soft code distribution:
    each position's bounded latent gives, per channel, a softmax over the channel's levels
    with logits -(z - level)^2 / temperature; their outer product is a distribution over
    all K codes, averaged over the batch. `usage_weight * (1 - H / log K)` is added to the
    loss (0 when every code is used equally).
    """

    usage_weight: float = 0.3  # measured on the embedded data: 0.1 -> 75% validation utilization, 0.3 -> 92%
    temperature: float = 0.25

    def __post_init__(self):
        if self.usage_weight < 0 or self.temperature <= 0:
            raise ConfigError(
                f"loss.usage_weight must be >= 0 and loss.temperature > 0, "
                f"got {self.usage_weight} and {self.temperature}",
                field="loss",
            )


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """How training windows are cut and features computed."""

    window: int = 256  # bars per training window
    # Bars (not days: the estimate's noise depends on the count of returns) in the trailing
    # volatility and mean range that make `ret_z` and `range_z` scale-free (strates.fsq.features).
    # 64: the RMS of 64 returns is within about 1/sqrt(2 * 64) = 9% of the level for Gaussian
    # returns, and a new volatility level is absorbed within 64 bars: about a quarter of daily
    # bars, 2.7 days of 24/7 hourly bars, shorter than the embedded regimes (150-600 bars).
    vol_window: int = 64
    volume_window: int = 24  # bars in the trailing volume mean of `rel_volume`
    clip_quantile: float = 0.001  # features clipped to training [q, 1 - q] quantiles

    def __post_init__(self):
        if self.window < 8:
            raise ConfigError(f"data.window must be >= 8 bars, got {self.window}", field="data.window")
        if self.vol_window < 4:
            raise ConfigError(
                f"data.vol_window must be >= 4 bars (features are standardised once 4 earlier bars exist), "
                f"got {self.vol_window}", fix="e.g. --set data.vol_window=64", field="data.vol_window",
            )
        if not 0.0 <= self.clip_quantile < 0.5:
            raise ConfigError(
                f"data.clip_quantile must be in [0, 0.5), got {self.clip_quantile}", field="data.clip_quantile"
            )


@dataclasses.dataclass(frozen=True)
class Config:
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    loss: LossConfig = LossConfig()
    train: TrainConfig = TrainConfig(
        steps=600, batch_size=32, learning_rate=2e-3, warmup_steps=50, checkpoint_every=200, log_every=25
    )
    fold: str | None = None  # dataset fold whose training period is used; None = the first


PRESETS: dict[str, dict] = {
    "debug": {
        "model.width": 16, "model.depth": 3, "model.decoder_depth": 2, "data.window": 64,
        "train.steps": 40, "train.batch_size": 8, "train.warmup_steps": 5,
        "train.checkpoint_every": 20, "train.log_every": 10,
    },
    "small": {},
    # `chaos bench lyapunov`: one small tokenizer per system, a few seconds on 2 cores
    "bench": {
        "model.width": 32, "model.depth": 3, "model.decoder_depth": 2, "data.window": 64,
        "train.steps": 200, "train.batch_size": 16, "train.warmup_steps": 10,
        "train.checkpoint_every": 100, "train.log_every": 50,
    },
    "base": {
        "model.width": 128, "model.depth": 6, "model.decoder_depth": 4, "data.window": 512,
        "train.steps": 4000, "train.batch_size": 64, "train.learning_rate": 1e-3, "train.warmup_steps": 200,
        "train.checkpoint_every": 500, "train.log_every": 50,
    },
}
