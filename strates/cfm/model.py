"""Strate III vector field `v(x_s, s | h)` and the conditional flow-matching loss.

```
e   = Linear(W→W)(silu(Linear(T+C→W)([fourier(s), h])))           time + condition embedding
z   = Linear(D→W)(x_s) + e
z  ← z + Linear(W→W)(silu(Linear(W→W)(LayerNorm(z) * (1 + a_k) + b_k)))   × depth,
     (a_k, b_k) = Linear_k(W→2W)(silu(e))                              FiLM, zero-initialised
v   = Linear(W→D)(LayerNorm(z))
```

FiLM (Perez et al. 2018), as the adaptive norm of DiT (Peebles & Xie 2023), lets the
condition rescale every block rather than only enter at the input; the modulation layers
start at zero so every block starts as a plain residual MLP. LayerNorm has no scale or
bias (FiLM supplies both). Flow time `s` enters as Fourier features `sin(pi 2^k s)`,
`cos(pi 2^k s)`, k = 0..T/2-1. Everything is float32.

Dimension letters: B batch, D = x_dim future dims, C = cond_dim, W width, T time features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def time_features(s: jax.Array, n: int) -> jax.Array:
    """Fourier features of flow time. `s: [B] in [0, 1] -> [B, n]` (`n` even)."""
    k = jnp.arange(n // 2, dtype=jnp.float32)
    angles = jnp.pi * (2.0**k) * s.astype(jnp.float32)[:, None]
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)], axis=-1)


class FiLMBlock(nnx.Module):
    """`z + MLP(LayerNorm(z) * (1 + a) + b)`, `(a, b) = Linear(silu(e))`. `z, e: [B, W]`."""

    def __init__(self, width: int, *, rngs: nnx.Rngs):
        zeros = nnx.initializers.zeros
        self.norm = nnx.LayerNorm(width, use_scale=False, use_bias=False, rngs=rngs)
        self.film = nnx.Linear(width, 2 * width, kernel_init=zeros, rngs=rngs)
        self.hidden = nnx.Linear(width, width, rngs=rngs)
        self.out = nnx.Linear(width, width, rngs=rngs)

    def __call__(self, z: jax.Array, e: jax.Array) -> jax.Array:
        """`z: [B, W], e: [B, W] -> [B, W]`."""
        scale, shift = jnp.split(self.film(jax.nn.silu(e)), 2, axis=-1)
        y = self.norm(z) * (1.0 + scale) + shift
        return z + self.out(jax.nn.silu(self.hidden(y)))


class VectorField(nnx.Module):
    """`v(x_s [B, x_dim], s [B], h [B, cond_dim]) -> [B, x_dim]`: the velocity of the flow
    from noise (s = 0) to futures (s = 1) given the state h. Parameters from `rngs.params()`."""

    def __init__(
        self,
        *,
        x_dim: int,
        cond_dim: int,
        width: int = 256,
        depth: int = 3,
        time_features: int = 16,
        tail_dims: int = 0,
        tail_df: float = 0.0,
        rngs: nnx.Rngs,
    ):
        if time_features < 2 or time_features % 2:
            raise ValueError(f"time_features must be even and >= 2, got {time_features}")
        self.x_dim = x_dim
        self.cond_dim = cond_dim
        self.tail_dims = tail_dims  # the last `tail_dims` dims start from Student-t(tail_df) noise (`source`)
        self.tail_df = tail_df
        self.time_features = time_features
        self.embed_in = nnx.Linear(time_features + cond_dim, width, rngs=rngs)
        self.embed_out = nnx.Linear(width, width, rngs=rngs)
        self.inp = nnx.Linear(x_dim, width, rngs=rngs)
        self.blocks = nnx.List([FiLMBlock(width, rngs=rngs) for _ in range(depth)])
        self.norm = nnx.LayerNorm(width, use_scale=False, use_bias=False, rngs=rngs)
        self.out = nnx.Linear(width, x_dim, rngs=rngs)

    def __call__(self, x_s: jax.Array, s: jax.Array, h: jax.Array) -> jax.Array:
        """`x_s: [B, x_dim], s: [B], h: [B, cond_dim] -> v: [B, x_dim]` float32."""
        x_s = jnp.asarray(x_s, jnp.float32)
        h = jnp.asarray(h, jnp.float32)
        s = jnp.broadcast_to(jnp.asarray(s, jnp.float32), x_s.shape[:1])
        e = jnp.concatenate([time_features(s, self.time_features), h], axis=-1)
        e = self.embed_out(jax.nn.silu(self.embed_in(e)))
        z = self.inp(x_s) + e
        for block in self.blocks:
            z = block(z, e)
        return self.out(self.norm(z))


def interpolate(x0: jax.Array, x1: jax.Array, s: jax.Array) -> jax.Array:
    """Straight path `x_s = (1 - s) x0 + s x1`. `x0, x1: [B, D], s: [B] -> [B, D]`."""
    s = s[:, None]
    return (1.0 - s) * x0 + s * x1


def cfm_loss(
    model: VectorField, x0: jax.Array, x1: jax.Array, h: jax.Array, s: jax.Array, weights: jax.Array | None = None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Conditional flow-matching loss on coupled pairs (Lipman et al. 2023; Tong et al. 2024).

    `x0: [B, D]` noise, `x1: [B, D]` data already coupled to it (`ot.coupling`), `h: [B, C]`
    the data's conditions, `s: [B]` flow times in [0, 1]. Regresses `v(x_s, s, h)` on the
    straight-path velocity `x1 - x0`: `loss = mean_{b,d} w_d (v - (x1 - x0))^2` with
    `weights: [D]` of mean 1 (all ones by default). Each dim's regression has the same
    minimiser whatever its weight; the weights decide where a finite network spends its
    capacity. Returns `(loss, {"mse", "target_ms"})`; `target_ms` = the same weighted mean
    square of the target, the loss of the zero field (so `mse / target_ms` is the
    unexplained share).
    """
    x0 = jnp.asarray(x0, jnp.float32)
    x1 = jnp.asarray(x1, jnp.float32)
    w = jnp.ones(x1.shape[-1], jnp.float32) if weights is None else jnp.asarray(weights, jnp.float32)
    target = x1 - x0
    v = model(interpolate(x0, x1, jnp.asarray(s, jnp.float32)), s, h)
    mse = jnp.mean(w * jnp.square(v - target))
    return mse, {"mse": mse, "target_ms": jnp.mean(w * jnp.square(target))}


def loss_weights(*, horizon: int, state_dim: int, return_share: float):
    """Per-dim weights `[H * (D + 1)]` (mean 1) that give the H return dims `return_share`
    of the loss and the H * D state dims the rest."""
    import numpy as np

    x_dim = horizon * (state_dim + 1)
    w = np.empty(x_dim, np.float32)
    w[: horizon * state_dim] = (1.0 - return_share) * x_dim / (horizon * state_dim)
    w[horizon * state_dim :] = return_share * x_dim / horizon
    return w


def build_model(config, *, x_dim: int, cond_dim: int, seed: int) -> VectorField:
    """The vector field a `strates.cfm.config.Config` describes (its `model` section), for
    futures of `x_dim` dims given conditions of `cond_dim` dims; its source noise has
    Student-t(`future.tail_df`) return dims (the last `future.horizon` dims)."""
    return VectorField(x_dim=x_dim, cond_dim=cond_dim, width=config.model.width, depth=config.model.depth,
                       tail_dims=config.future.horizon, tail_df=config.future.tail_df, rngs=nnx.Rngs(seed))


def source(key: jax.Array, shape: tuple[int, ...], model: VectorField) -> jax.Array:
    """The flow's source noise x0 `[..., x_dim]`: N(0, 1) in every dim but the last
    `model.tail_dims` (the returns), which are Student-t(`model.tail_df`) scaled to unit
    variance (Gaussian when `tail_df` is 0).

    A flow whose vector field is Lipschitz maps light-tailed noise to light-tailed futures
    (Jaini et al. 2020, "Tails of Lipschitz triangular flows", ICML): from Gaussian noise it
    cannot draw the heavy tails of returns, and fitting their variance with a Gaussian
    shape makes its central intervals too wide. Flow matching works from any source (the
    paths stay straight), so the returns start from a heavy-tailed one."""
    x0 = jax.random.normal(key, shape, jnp.float32)
    if not model.tail_dims or not model.tail_df:
        return x0
    df = model.tail_df
    t = jax.random.t(jax.random.fold_in(key, 1), df, (*shape[:-1], model.tail_dims), jnp.float32)
    return x0.at[..., -model.tail_dims:].set(t * jnp.sqrt((df - 2.0) / df))


def source_numpy(rng, shape: tuple[int, ...], *, tail_dims: int, tail_df: float):
    """`source` for training batches, from a `numpy.random.Generator` (float32)."""
    import numpy as np

    x0 = rng.standard_normal(shape).astype(np.float32)
    if tail_dims and tail_df:
        t = rng.standard_t(tail_df, (*shape[:-1], tail_dims)) * np.sqrt((tail_df - 2.0) / tail_df)
        x0[..., -tail_dims:] = t.astype(np.float32)
    return x0
