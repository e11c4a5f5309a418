"""Small layers shared by Strate II: params that name their logical axes, a Linear, an
RMSNorm, embedding lookup, and the sharding helpers they use.

Params. Every `nnx.Param` carries `out_sharding` metadata holding its *logical* axis names
(maxtext style), created with `eager_sharding=False` so that no mesh is needed to build a
model. `model.logical_axes(params)` collects them; `model.param_shardings(params, mesh)`
maps them to `NamedSharding`s through `strates.core.topology` rules.

Explicit-sharding meshes (`jax.set_mesh`, `AxisType.Explicit`, STYLE.md convention 10).
Params are stored sharded by those rules (e.g. "embed" over `fsdp`), and each read goes
through `use`, which all-gathers the param: FSDP (ZeRO-3), with the gather placed at each
use so XLA can overlap it, and its transpose reduce-scattering the gradient. There is no
tensor parallelism: a `model` axis > 1 shards param storage only (the fused Mamba-2
in_proj would need a per-shard layout for it; see `mamba2`). Activations are resharded to
their logical axes by `constrain` (batch over `data` x `fsdp`). With no mesh set, `use`,
`constrain` and `mesh_spec` are no-ops.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import jax
import jax.numpy as jnp
from flax import nnx

f32 = jnp.float32
ACT = ("batch", "length", "embed")  # the residual stream [B, L, D]


def axes(*names: str | None) -> dict:
    """Param metadata naming the logical axes of each dim (no eager sharding)."""
    return {"out_sharding": tuple(names), "eager_sharding": False}


def param(rngs: nnx.Rngs | None, init, shape: Sequence[int], logical: Sequence[str | None]):
    """An `nnx.Param` of float32 `init(key, shape, float32)` annotated with logical axes.

    Consumes one `rngs.params()` key (none when `rngs` is None, for constant inits).
    """
    key = rngs.params() if rngs is not None else None
    return nnx.Param(init(key, tuple(shape), f32), **axes(*logical))


def ones(key, shape, dtype):
    del key
    return jnp.ones(shape, dtype)


def _mesh_axes(entry) -> tuple[str, ...]:
    return () if entry is None else ((entry,) if isinstance(entry, str) else tuple(entry))


def fit_spec(shape: Sequence[int], logical: Sequence[str | None], sizes: dict[str, int],
             rules=None) -> jax.sharding.PartitionSpec:
    """PartitionSpec for `shape` with these logical axes on a mesh of axis `sizes`.

    Rules: `rules`, else flax's `logical_axis_rules` context if set, else
    `topology.DEFAULT_RULES`. Mesh axes the mesh lacks, or whose size does not divide the
    dim, are dropped (that dim is replicated over them).
    """
    from flax.core import spmd

    from strates.core.topology import logical_to_mesh_axes

    spec = logical_to_mesh_axes(logical, rules or cast(Any, spmd.get_logical_axis_rules()) or None)
    out = []
    for dim, entry in zip(shape, spec, strict=False):
        kept = tuple(a for a in _mesh_axes(entry) if a in sizes)
        kept = kept if dim % math.prod(sizes[a] for a in kept) == 0 else ()
        out.append(kept if len(kept) > 1 else (kept[0] if kept else None))
    return jax.sharding.PartitionSpec(*out)


def mesh_spec(shape: Sequence[int], logical: Sequence[str | None]):
    """`fit_spec` under the current mesh (`jax.set_mesh`), or None when none is set."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return None
    return fit_spec(shape, logical, dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True)))


def constrain(x: jax.Array, logical: Sequence[str | None]) -> jax.Array:
    """Reshard `x` to its logical axes under the current mesh; a no-op with no mesh set."""
    spec = mesh_spec(x.shape, logical)
    return x if spec is None else jax.sharding.reshard(x, spec)


def use(p: nnx.Param | jax.Array) -> jax.Array:
    """A param's value for compute: all-gathered (replicated) under a mesh, else as is."""
    x = p[...] if isinstance(p, nnx.Variable) else p
    if jax.sharding.get_abstract_mesh().empty:
        return x
    if all(e is None for e in jax.typeof(x).sharding.spec):
        return x
    return jax.sharding.reshard(x, jax.sharding.PartitionSpec())


def lookup(table: nnx.Param, idx: jax.Array, logical: Sequence[str | None]) -> jax.Array:
    """Embedding rows `table[idx]`: `[V, D]`, int `[...]` -> float32 `[..., D]` with
    logical axes `logical` (explicit meshes need the gather's output sharding spelled out)."""
    t = use(table)
    spec = mesh_spec((*idx.shape, t.shape[-1]), logical)
    return jnp.take(t, idx, axis=0) if spec is None else t.at[idx].get(out_sharding=spec)


class Linear(nnx.Module):
    """`y = x @ W (+ b)`: W [d_in, d_out] float32 with lecun-normal init times `scale`,
    computed in `dtype`; `logical` names W's two dims (the bias takes the second)."""

    def __init__(self, d_in: int, d_out: int, logical: tuple[str | None, str | None], *,
                 dtype=f32, scale: float = 1.0, bias: bool = False, rngs: nnx.Rngs):
        init = nnx.initializers.variance_scaling(scale**2, "fan_in", "truncated_normal")
        self.dtype = dtype
        self.kernel = param(rngs, init, (d_in, d_out), logical)
        self.bias = param(None, nnx.initializers.zeros, (d_out,), logical[1:]) if bias else None

    def __call__(self, x: jax.Array) -> jax.Array:
        """`x: [..., d_in] -> [..., d_out]` in `dtype`. Without a mesh, as one 2-D matmul (on
        XLA CPU the backward pass of a 3-D dot_general is about 2x slower); under a mesh, as
        an einsum whose output keeps the sharding of x's leading dims."""
        x, w = x.astype(self.dtype), use(self.kernel).astype(self.dtype)
        if jax.sharding.get_abstract_mesh().empty:
            y = (x.reshape(-1, x.shape[-1]) @ w).reshape(*x.shape[:-1], -1)
        else:
            y = jnp.einsum("...i,io->...o", x, w)
        return y if self.bias is None else y + use(self.bias).astype(self.dtype)


class RMSNorm(nnx.Module):
    """RMSNorm with a learned scale (init 1), computed in float32. `[..., D] -> dtype`."""

    def __init__(self, dim: int, *, eps: float = 1e-5, dtype=f32, logical=("embed",)):
        self.eps, self.dtype = eps, dtype
        self.scale = param(None, ones, (dim,), logical)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = x.astype(f32)
        y = x * jax.lax.rsqrt(jnp.mean(x * x, axis=-1, keepdims=True) + self.eps)
        return (y * use(self.scale)).astype(self.dtype)
