"""`chaos train-jepa --dry-run`: what a run would need, without training or the devices.

- Parameters: counted from the abstract model (`nnx.eval_shape`: nothing is allocated).
- Per-device parameter memory: each parameter's bytes divided by the mesh axes its logical
  axes map onto (the same rules training uses), summed; the EMA target encoder is included.
- Optimizer: AdamW keeps two float32 moments per trainable parameter, sharded like it.
- Activations: measured, not guessed: one training step (forward + backward) for the
  per-device batch is compiled on this host's XLA and its temporary memory read from the
  compiled memory analysis. On CPU this approximates the accelerator's figure (fusion and
  layouts differ); the number is labelled with the backend it came from.
"""

from __future__ import annotations

import math
from typing import Any

from strates.jepa.config import Config


def dry_run(config: Config, *, topology: str, mesh: str | None = None, n_assets: int = 8, n_macro: int = 3,
            vocab: int = 1024, measure_activations: bool = True) -> dict[str, Any]:
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from strates.core import topology as topo
    from strates.jepa.layers import fit_spec
    from strates.jepa.jepa_loss import target_mask
    from strates.jepa.model import build_model
    from strates.jepa.stage import make_loss

    plan = topo.plan(topology, mesh=mesh)
    sizes = dict(zip(plan.axes, plan.shape))
    abstract = nnx.eval_shape(lambda: build_model(config, n_assets=n_assets, n_macro=n_macro, vocab=vocab, seed=0))
    graphdef, params = nnx.split(abstract, nnx.Param)

    def per_device_bytes(variable) -> float:
        spec = fit_spec(variable.shape, variable.get_metadata()["out_sharding"], sizes, plan.rules)
        shards = 1
        for entry in spec:
            for axis in (entry if isinstance(entry, tuple) else (entry,)):
                if axis is not None:
                    shards *= sizes[axis]
        return math.prod(variable.shape) * jnp.dtype(variable.dtype).itemsize / shards

    leaves = jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nnx.Variable))
    frozen = jax.tree.leaves(target_mask(params))
    total = sum(math.prod(v.shape) for v in leaves)
    trainable = sum(math.prod(v.shape) for v, f in zip(leaves, frozen, strict=True) if not f)
    param_bytes = sum(per_device_bytes(v) for v in leaves)
    opt_bytes = 2 * sum(per_device_bytes(v) for v, f in zip(leaves, frozen, strict=True) if not f)
    data_shards = sizes.get("data", 1) * sizes.get("fsdp", 1)
    per_device_batch = max(1, config.train.batch_size // data_shards)
    out: dict[str, Any] = {
        "plan": plan.to_dict(),
        "params": {"total": int(total), "trainable": int(trainable),
                   "context_encoder": int(sum(math.prod(v.shape) for v in jax.tree.leaves(
                       nnx.state(abstract.context, nnx.Param), is_leaf=lambda x: isinstance(x, nnx.Variable))))},
        "batch": {"global": config.train.batch_size, "per_device": per_device_batch, "window": config.data.window},
        "per_device_gib": {"params": param_bytes / 2**30, "optimizer": opt_bytes / 2**30},
    }
    if measure_activations:
        loss_fn = make_loss(graphdef, config, interval_s=3600.0)
        batch = {
            "tokens": jax.ShapeDtypeStruct((per_device_batch, config.data.window), jnp.int32),
            "assets": jax.ShapeDtypeStruct((per_device_batch,), jnp.int32),
            "macro": jax.ShapeDtypeStruct((per_device_batch, config.data.window, n_macro), jnp.float32),
        }
        grad = jax.jit(jax.grad(lambda p, b, k: loss_fn(p, b, k)[0]))
        compiled = grad.lower(params, batch, jax.ShapeDtypeStruct((), jax.random.key(0).dtype)).compile()
        temp = compiled.memory_analysis().temp_size_in_bytes
        out["per_device_gib"]["activations"] = temp / 2**30
        out["activations_measured_on"] = jax.default_backend()
    out["per_device_gib"]["total"] = sum(out["per_device_gib"].values())
    hbm = plan.topology.hbm_gib_per_device
    if hbm:
        out["per_device_gib"]["hbm"] = hbm
        out["fits"] = out["per_device_gib"]["total"] < 0.9 * hbm
    return out
