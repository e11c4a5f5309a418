"""Strate II training: the JEPA loss on batches, the EMA schedule, sharded placement, the
training loop call and the checkpoint choice on validation.

The loop itself is `strates.core.train.train`; this module gives it the JEPA's loss
(`make_loss`), its frozen target encoder and EMA update, and places params and batches on
the mesh by their logical axes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from strates.core.errors import ConfigError
from strates.jepa.config import Config

VALIDATION_BATCHES = 4


def tau_schedule(config: Config) -> Callable:
    """tau(step): cosine from ema.tau_start (step 0) to ema.tau_end (last step)."""
    import jax.numpy as jnp

    start, end, steps = config.ema.tau_start, config.ema.tau_end, max(1, config.train.steps - 1)

    def tau(step):
        frac = jnp.clip(step.astype(jnp.float32) / steps, 0.0, 1.0)
        return end - (end - start) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))

    return tau


def make_loss(graphdef, config: Config, *, interval_s: float) -> Callable:
    """`loss_fn(params, batch, key) -> (loss [], metrics)` of `jepa_loss` with the config's
    loss settings; `batch` as `data.window_sampler` gives it."""
    import jax.numpy as jnp
    from flax import nnx

    from strates.jepa.jepa_loss import jepa_loss

    loss = config.loss

    def loss_fn(params, batch, key):
        model = nnx.merge(graphdef, params)
        interval = jnp.full(batch["tokens"].shape[:1], interval_s, jnp.float32)
        return jepa_loss(
            model, batch["tokens"], batch["assets"], batch["macro"], key=key, n_spans=loss.n_spans,
            ctx_min=loss.ctx_min, pred_weight=loss.pred_weight, var_weight=loss.var_weight,
            cov_weight=loss.cov_weight, distance=loss.distance, interval_s=interval,
        )

    return loss_fn


def place(params, mesh):
    """Shard params over `mesh` by their logical axes."""
    import jax

    from strates.jepa.model import param_shardings

    return jax.device_put(params, param_shardings(params, mesh))


def batch_placer(mesh, batch_size: int) -> Callable[[dict], dict]:
    """batch dict -> arrays sharded along the batch axis over (data, fsdp)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    split = mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
    if batch_size % split:
        raise ConfigError(
            f"train.batch_size {batch_size} is not divisible by the data x fsdp mesh size {split}",
            fix=f"use --set train.batch_size={max(split, batch_size // split * split)} or another --mesh",
            field="train.batch_size",
        )
    sharding = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
    return lambda batch: {k: jax.device_put(v, sharding) for k, v in batch.items()}


def fit(config: Config, *, graphdef, params, batches, mesh, checkpoint_dir: str, interval_s: float, on_log=None):
    """Train (resuming from `checkpoint_dir`) on `mesh`; returns the core TrainResult."""
    import jax

    from strates.core.train import train
    from strates.jepa.jepa_loss import ema_target, target_mask

    tau = tau_schedule(config)
    put = batch_placer(mesh, config.train.batch_size)
    with jax.set_mesh(mesh):
        return train(
            loss_fn=make_loss(graphdef, config, interval_s=interval_s), params=place(params, mesh),
            batches=lambda s: put(batches(s)), config=config.train, checkpoint_dir=checkpoint_dir,
            key=jax.random.key(config.train.seed), on_log=on_log,
            frozen=target_mask(params), post_update=lambda p, step: ema_target(p, tau(step)),
        )


def select_checkpoint(config: Config, graphdef, abstract_params, checkpoint_dir: str, val_batches, *,
                      interval_s: float) -> tuple[dict[str, Any], Any]:
    """Of the checkpoints kept, the one with the lowest JEPA loss on `val_batches` (windows
    inside the selection part of validation; the same windows and span draws for each).
    Returns ({step, validation_loss, losses: [{step, loss}]}, its params)."""
    import jax

    from strates.core.checkpoints import all_steps, restore_params

    loss_fn = jax.jit(make_loss(graphdef, config, interval_s=interval_s))
    key = jax.random.key(config.train.seed + 1)
    batches = [val_batches(i) for i in range(VALIDATION_BATCHES)]
    losses, best = [], None
    for step in all_steps(checkpoint_dir):
        params = restore_params(checkpoint_dir, abstract_params, step=step)
        value = float(np.mean([loss_fn(params, b, jax.random.fold_in(key, i))[0] for i, b in enumerate(batches)]))
        losses.append({"step": step, "loss": value})
        if best is None or value < best[1]:
            best = (step, value, params)
    if best is None:
        raise ConfigError(f"no checkpoint in {checkpoint_dir} to choose from",
                          fix="re-run with --force to train from scratch")
    return {"step": best[0], "validation_loss": best[1], "losses": losses}, best[2]
