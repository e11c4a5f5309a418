"""Training V and M with the shared loop (`strates.core.train`: Orbax checkpoints, resume,
the non-finite guard), and scoring them on held-out bars.

V trains on windows of training-period bars drawn uniformly; M on sequences of `seq_len`
consecutive training-period bars of one asset, each bar given V's posterior (μ, log σ²),
its scaled log return ρ and an action drawn uniformly in [−1, 1] (small trader: the market
does not react; see `mdn`). Batches depend on the step alone (seeded by (seed, step)), so
a resumed run sees the batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from strates.core.train import TrainResult, train
from strates.worldmodels import mdn, vae
from strates.worldmodels.config import Config


def train_vae(config: Config, x: np.ndarray, *, params: Any, checkpoint_dir: str,
              on_log: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train V on windows `x [N, X]` (the training period's) from `params`."""
    c = config.vae
    seed, batch = c.train.seed + config.seed, c.train.batch_size

    def batches(step: int) -> np.ndarray:
        return x[np.random.default_rng((seed, 1, step)).integers(0, len(x), batch)]

    def loss_fn(p, b, key):
        return vae.loss(p, b, key, kl_weight=c.kl_weight, free_bits=c.free_bits)

    return train(loss_fn=loss_fn, params=params, batches=batches, config=c.train, checkpoint_dir=checkpoint_dir,
                 key=jax.random.key(seed + 2), on_log=on_log)


def sequence_starts(masks: list[np.ndarray], length: int) -> np.ndarray:
    """`[K, 2]` (asset, first bar) of every run of `length` consecutive bars all inside the
    masks `[N_a]` (one per asset)."""
    out = []
    for a, m in enumerate(masks):
        ok = np.convolve(m.astype(np.int64), np.ones(length, np.int64), mode="valid") == length
        starts = np.nonzero(ok)[0]
        out.append(np.stack([np.full(len(starts), a), starts], axis=1))
    return np.concatenate(out) if out else np.zeros((0, 2), np.int64)


def mdn_batch(mu: list[np.ndarray], logvar: list[np.ndarray], rho: list[np.ndarray], starts: np.ndarray,
              length: int, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
    """A batch of `batch` sequences drawn from `starts` (see `mdn.loss` for the keys)."""
    pick = starts[rng.integers(0, len(starts), batch)]
    take = lambda arrs: np.stack([arrs[a][s:s + length] for a, s in pick])  # noqa: E731
    return {"mu": take(mu), "logvar": take(logvar), "rho": take(rho).astype(np.float32),
            "actions": rng.uniform(-1.0, 1.0, (batch, length)).astype(np.float32)}


def train_mdn(config: Config, mu: list[np.ndarray], logvar: list[np.ndarray], rho: list[np.ndarray],
              starts: np.ndarray, *, params: Any, checkpoint_dir: str,
              on_log: Callable[[int, dict], None] | None = None) -> TrainResult:
    """Train M on sequences starting at `starts` (`sequence_starts` of the training period)."""
    c = config.mdn
    seed = c.train.seed + config.seed

    def batches(step: int) -> dict[str, np.ndarray]:
        return mdn_batch(mu, logvar, rho, starts, c.seq_len, np.random.default_rng((seed, 3, step)),
                         c.train.batch_size)

    def loss_fn(p, b, key):
        return mdn.loss(p, b, key, reward_weight=c.reward_weight)

    return train(loss_fn=loss_fn, params=params, batches=batches, config=c.train, checkpoint_dir=checkpoint_dir,
                 key=jax.random.key(seed + 4), on_log=on_log)


def encode(v_params: Any, x: np.ndarray, *, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """V's posterior of every window `x [N, X]` -> `(μ, log σ²) [N, Z]` float32."""
    fn = jax.jit(vae.encode)
    parts = [fn(v_params, jnp.asarray(x[i:i + chunk])) for i in range(0, len(x), chunk)]
    if not parts:
        z = v_params["enc"][-1]["b"].shape[0] // 2
        return np.zeros((0, z), np.float32), np.zeros((0, z), np.float32)
    return (np.concatenate([np.asarray(p[0]) for p in parts]), np.concatenate([np.asarray(p[1]) for p in parts]))


def heldout_vae(config: Config, v_params: Any, x: np.ndarray, *, max_windows: int = 4096) -> dict[str, float]:
    """V's loss on held-out windows `x [N, X]` (at most `max_windows`, evenly spaced): the
    negative ELBO, reconstruction and KL, nats per window."""
    if not len(x):
        return {}
    idx = np.linspace(0, len(x) - 1, min(len(x), max_windows)).astype(int)
    total, m = jax.jit(lambda p, b: vae.loss(p, b, jax.random.key(0), kl_weight=config.vae.kl_weight,
                                             free_bits=config.vae.free_bits))(v_params, jnp.asarray(x[idx]))
    return {"loss": float(total), "recon": float(m["recon"]), "kl": float(m["kl"])}


def heldout_mdn(config: Config, m_params: Any, mu: list[np.ndarray], logvar: list[np.ndarray],
                rho: list[np.ndarray], starts: np.ndarray, *, sequences: int = 256) -> dict[str, float]:
    """M's NLL on held-out sequences (`starts` of a held-out period; a fixed draw): nats per
    latent dim (`nll_z`) and for the reward (`nll_reward`)."""
    if not len(starts):
        return {}
    b = mdn_batch(mu, logvar, rho, starts, config.mdn.seq_len, np.random.default_rng((config.seed, 5)), sequences)
    _, m = jax.jit(lambda p, bb: mdn.loss(p, bb, jax.random.key(0), reward_weight=config.mdn.reward_weight))(
        m_params, b)
    return {"nll_z": float(m["nll_z"]), "nll_reward": float(m["nll_reward"])}
