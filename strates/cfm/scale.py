"""The causal scale of every bar: the unit of Strate III's futures and the scale features
that condition the flow beside the JEPA state.

A market's volatility moves by a factor of several between years; a flow that learns
returns in one fixed unit learns the training period's scale and carries it into calmer
(or wilder) years. So the futures are scale-free: returns are modelled in units of a
causal trailing volatility of their own asset, and rescaled when sampled.

Per asset and bar t (every quantity uses bars t and earlier only):

- unit `sigma_t`: RMS of the last `unit_window` log returns r_{t-w+1..t} (fewer bars at the
  start), at least `floor` x the RMS of all returns up to t, so stale prices cannot make it ~0.
- `vol_<w>`: log(RMS of the last w returns / sigma_t), for each w in `windows`.
- `range_<w>`: log(Parkinson volatility of the last w bars / sigma_t); Parkinson (1980):
  sigma^2 = mean(log(high/low)^2) / (4 log 2). 0 where the window holds no range (close-only data).
- `last`: r_t / sigma_t, the standardised latest return (its sign and size: the ARCH term).

All features are log ratios or ratios of the asset's own scales, so they do not depend on
the level of volatility either. They are standardised with their training-period mean and
standard deviation (`Conditioner`, stored in the cfm artifact's `scales.json`) and divided
by sqrt(k) (k features) so that the feature block, like the unit-norm JEPA state, has a
squared norm of about 1: the C²OT coupling's condition distance weighs the two evenly.

The *observation* of a bar is what every consumer of the flow reads (`observation`):
`[h_t (D), scaled features (k), log sigma_t]`, one array `[N, D + k + 1]`; the flow's
condition is its first D + k columns, the unit its last.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from strates.core.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class ScaleConfig:
    """Windows in bars (the data may be hourly or daily): `unit_window` the futures' unit,
    `windows` the other trailing volatilities, `range_window` the Parkinson estimator;
    `floor` the unit's lower bound as a share of the expanding RMS."""

    unit_window: int = 24
    windows: tuple[int, ...] = (6, 120)
    range_window: int = 24
    floor: float = 0.1

    def __post_init__(self):
        for name, w in (("unit_window", self.unit_window), ("range_window", self.range_window),
                        *(("windows", w) for w in self.windows)):
            if w < 2:
                raise ConfigError(f"scale.{name} must be at least 2 bars, got {w}", field=f"scale.{name}")
        if not 0.0 < self.floor < 1.0:
            raise ConfigError(f"scale.floor must be in (0, 1), got {self.floor}", field="scale.floor")

    @property
    def names(self) -> tuple[str, ...]:
        """The scale features, in column order."""
        return (*(f"vol_{w}" for w in self.windows), f"range_{self.range_window}", "last")


def trailing_rms(x: np.ndarray, window: int) -> np.ndarray:
    """sqrt(mean of x_{t-w+1..t}^2) per t `[N]` (fewer terms at the start)."""
    sq = np.concatenate([[0.0], np.cumsum(np.asarray(x, np.float64) ** 2)])
    t = np.arange(1, len(sq))
    lo = np.maximum(0, t - window)
    return np.sqrt((sq[t] - sq[lo]) / (t - lo))


def unit(r: np.ndarray, config: ScaleConfig) -> np.ndarray:
    """The futures' unit sigma_t of one asset's log returns `r [N]` -> `[N]` (> 0)."""
    r = np.asarray(r, np.float64)
    sigma = trailing_rms(r, config.unit_window)
    expanding = trailing_rms(r, len(r) + 1)
    floor = np.maximum(config.floor * expanding, 1e-12)
    return np.maximum(sigma, floor)


def raw_features(r: np.ndarray, log_range: np.ndarray, config: ScaleConfig) -> tuple[np.ndarray, np.ndarray]:
    """One asset's (unit sigma `[N]`, unscaled features `[N, k]` in `config.names` order)."""
    r = np.asarray(r, np.float64)
    sigma = unit(r, config)
    cols = [np.log(np.maximum(trailing_rms(r, w), 1e-12) / sigma) for w in config.windows]
    rng = np.nan_to_num(np.asarray(log_range, np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    park = trailing_rms(rng, config.range_window) / math.sqrt(4.0 * math.log(2.0))
    # a window without any range (close-only data) measures nothing: 0, decided bar by bar
    cols.append(np.where(park > 0, np.log(np.maximum(park, 1e-3 * sigma) / sigma), 0.0))
    cols.append(r / sigma)
    return sigma, np.stack(cols, axis=1)


@dataclasses.dataclass(frozen=True)
class Conditioner:
    """The features' training-period mean and std (`scales.json`)."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, features: np.ndarray, config: ScaleConfig) -> Conditioner:
        """Fit on the training period's rows `[M, k]`."""
        f = np.asarray(features, np.float64)
        return cls(config.names, tuple(float(v) for v in f.mean(0)),
                   tuple(float(v) for v in np.maximum(f.std(0), 1e-6)))

    def apply(self, features: np.ndarray) -> np.ndarray:
        """Standardise and divide by sqrt(k): `[..., k]` -> `[..., k]` float32."""
        k = len(self.names)
        z = (np.asarray(features, np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        return (np.clip(z, -8.0, 8.0) / math.sqrt(k)).astype(np.float32)


def observation(h: np.ndarray, r: np.ndarray, log_range: np.ndarray, config: ScaleConfig,
                conditioner: Conditioner) -> np.ndarray:
    """One asset's observations `[N, D + k + 1]`: h_t, the scaled scale features, log sigma_t."""
    sigma, feats = raw_features(r, log_range, config)
    return np.concatenate([np.asarray(h, np.float32), conditioner.apply(feats),
                           np.log(sigma)[:, None].astype(np.float32)], axis=1)


def split(obs, state_dim: int):
    """`[..., D + k + 1]` -> (h `[..., D]`, condition `[..., D + k]`, sigma `[..., 1]`); numpy or jax."""
    if isinstance(obs, np.ndarray):
        return obs[..., :state_dim], obs[..., :-1], np.exp(obs[..., -1:])
    import jax.numpy as jnp

    return obs[..., :state_dim], obs[..., :-1], jnp.exp(obs[..., -1:])
