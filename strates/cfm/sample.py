"""Drawing futures from a trained vector field: fixed-step ODE integration from s = 0 to 1.

`x' = v(x, s | h)`, `x(0) ~ N(0, I)`, `x(1)` a future. `nfe` is the number of vector-field
evaluations in total: Euler takes `nfe` steps of size `1/nfe`; Heun (explicit trapezoid) and
the explicit midpoint rule take `nfe/2` steps of two evaluations each, so `nfe` must be even
for them. The straight paths of (OT-)CFM make a few steps enough (Tong et al. 2024).
Functions here are pure and jit-friendly with `n`, `nfe` and `method` static (`sample_jit`);
the model enters through `nnx.split` / `nnx.merge` so the step loop is a `lax.fori_loop`
whose compile time does not grow with `nfe`.

Dimension letters: B states, N futures per state, D future dims, C condition dims,
K ensemble members.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import ArrayLike

from strates.cfm.config import Method
from strates.cfm.model import VectorField, source

METHODS = tuple(Method)


def steps(nfe: int, method: str) -> int:
    """Integration steps for `nfe` evaluations with `method`; raises on a bad combination."""
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    if nfe < 1:
        raise ValueError(f"nfe must be >= 1, got {nfe}")
    if method == "euler":
        return nfe
    if nfe % 2:
        raise ValueError(f"nfe {nfe} must be even for {method} (2 evaluations a step); use {nfe + 1}")
    return nfe // 2


def integrate(model: nnx.Module, x0: jax.Array, h: jax.Array, *, nfe: int, method: str = "euler") -> jax.Array:
    """Integrate `x' = model(x, s, h)` from s = 0 to 1. `x0: [M, D], h: [M, C] -> x1: [M, D]`."""
    n_steps = steps(nfe, method)
    graphdef, state = nnx.split(model)
    ds = 1.0 / n_steps

    def v(x, s):
        return nnx.merge(graphdef, state)(x, jnp.full(x.shape[:1], s, jnp.float32), h)

    def body(i, x):
        s = i * ds
        if method == "euler":
            return x + ds * v(x, s)
        k1 = v(x, s)
        if method == "heun":
            return x + 0.5 * ds * (k1 + v(x + ds * k1, s + ds))
        return x + ds * v(x + 0.5 * ds * k1, s + 0.5 * ds)  # midpoint

    return jax.lax.fori_loop(0, n_steps, body, jnp.asarray(x0, jnp.float32))


def sample_from(model: VectorField, x0: jax.Array, h: ArrayLike, *, nfe: int, method: str = "euler") -> jax.Array:
    """Futures from given noise (shared random numbers across calls).

    `x0: [B, N, D]` noise, `h: [B, C]` states -> `x1: [B, N, D]`; all B*N paths run in one
    batch, future j of state b starting from `x0[b, j]`.
    """
    b, n, d = x0.shape
    hh = jnp.repeat(jnp.asarray(h, jnp.float32), n, axis=0)  # [B*N, C], row b*N + j = h[b]
    return integrate(model, x0.reshape(b * n, d), hh, nfe=nfe, method=method).reshape(b, n, d)


def sample(
    model: VectorField, h: ArrayLike, *, key: jax.Array, n: int, nfe: int, method: str = "euler"
) -> jax.Array:
    """`n` futures for each state. `h: [B, C] -> x1: [B, n, D]` (`D = model.x_dim`).

    Consumes `key` for the noise `x0 [B, n, D]` (`model.source`: Gaussian, Student-t in the
    return dims); the same key gives the same futures.
    """
    x0 = source(key, (jnp.shape(h)[0], n, model.x_dim), model)
    return sample_from(model, x0, h, nfe=nfe, method=method)


sample_jit = nnx.jit(sample, static_argnames=("n", "nfe", "method"))


def ensemble_sample(
    models: Sequence[VectorField], h: ArrayLike, *, key: jax.Array, n: int, nfe: int, method: str = "euler"
) -> jax.Array:
    """Futures from each of K members. `h: [B, C] -> [K, B, n, D]`.

    Consumes `key` once: every member integrates the same noise `[B, n, D]` (common random
    numbers), so differences between members come from the members alone.
    """
    x0 = source(key, (jnp.shape(h)[0], n, models[0].x_dim), models[0])
    return jnp.stack([sample_from(m, x0, h, nfe=nfe, method=method) for m in models])


def disagreement(samples: ArrayLike) -> jax.Array:
    """Epistemic spread of an ensemble. `samples: [K, B, N, D] -> [B]`.

    Each member's mean future `m_k = mean_N samples[k]` `[K, B, D]`; the result is the
    variance across members (population variance, over K) of `m_k`, averaged over the D
    dims. Zero when all members agree on the mean future; it ignores the spread within a
    member (aleatoric), which the N futures carry.
    """
    means = jnp.mean(samples, axis=2)
    return jnp.mean(jnp.var(means, axis=0), axis=-1)
