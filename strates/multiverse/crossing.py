"""Multiverse Crossing: the canonical definitions (DESIGN.md), one function each.

- Geodesic perturbation: for a unit state u draw e ~ N(0, I), project it onto the tangent
  plane, v = e - (e·u)u, normalise, and move along the great circle by the angle σ:
  u' = cos(σ)u + sin(σ)v̂. Then ||u'|| = 1 and the geodesic distance from u is σ.
- Universes: M perturbed states plus the unperturbed one (universe 0); each gets N futures
  from Strate III and a decision from Strate IV, with shared random numbers across them.
- Direction of a decision: short (-1), flat (0) or long (+1); flat when |position| is
  below `band`.
- Consensus: the share of the M + 1 universes whose direction equals the majority
  direction. An asset is contested when consensus is below a threshold (default 2/3).
- Bifurcation index: the share of the M perturbed universes whose direction differs from
  the unperturbed decision's (0 = none).
- Effective number of future modes: exp(entropy of the normalised eigenvalues of the
  covariance, across universes, of the universe-mean futures); 1 when they all agree.
- Lyapunov proxy (finite time): λ = (1/H) mean_m log(d_m(H) / d_m(0)), with d_m(t) the
  distance between universe m's mean future state and the unperturbed one at step t
  (d_m(0): between the perturbed and the unperturbed state). λ < 0: perturbations
  shrink; λ > 0: they grow. Without a perturbation (σ = 0) it is 0. The stage takes the
  mean future state on the sphere (the mean of the N unit states, projected back onto
  it): a plain mean of diffuse futures is shorter than 1, which would shrink d_m(H) and
  bias λ towards stability for reasons unrelated to the dynamics.

Dimension letters: U = M + 1 universes (index 0 unperturbed), D state dims, H steps,
F future dims; leading dims broadcast.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def perturb(u: jax.Array, *, key: jax.Array, m: int, sigma: float) -> jax.Array:
    """Universes around unit states. `u [..., D] -> [..., m + 1, D]`, index 0 = `u` itself.
    Consumes `key` (the tangent directions)."""
    e = jax.random.normal(key, (*u.shape[:-1], m, u.shape[-1]), u.dtype)
    uu = u[..., None, :]
    v = e - jnp.sum(e * uu, -1, keepdims=True) * uu
    v = v / jnp.linalg.norm(v, axis=-1, keepdims=True)
    moved = jnp.cos(sigma) * uu + jnp.sin(sigma) * v
    return jnp.concatenate([uu, moved], axis=-2)


def directions(actions: jax.Array, *, band: float) -> jax.Array:
    """`[...] -> int8 [...]`: -1 short, 0 flat (|a| < band), +1 long."""
    return (jnp.where(actions >= band, 1, 0) - jnp.where(actions <= -band, 1, 0)).astype(jnp.int8)


def vote(dirs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`dirs [..., U]` -> (majority direction [...], consensus [...]). Ties go to the
    direction of the unperturbed universe when it is among them, else to flat, then long."""
    counts = jnp.stack([(dirs == d).sum(-1) for d in (-1, 0, 1)], -1)  # [..., 3]
    top = counts.max(-1, keepdims=True)
    tied = counts == top
    ref = jax.nn.one_hot(dirs[..., 0] + 1, 3, dtype=bool)
    order = jnp.array([1, 3, 2])  # flat before long before short
    pick = jnp.where((tied & ref).any(-1, keepdims=True), tied & ref, tied)
    majority = jnp.argmax(pick * order, -1) - 1
    return majority.astype(jnp.int8), top[..., 0] / dirs.shape[-1]


def bifurcation(dirs: jax.Array) -> jax.Array:
    """`dirs [..., U] -> [...]`: share of universes 1..U-1 whose direction differs from 0's."""
    return jnp.mean(dirs[..., 1:] != dirs[..., :1], axis=-1)


def effective_modes(means: jax.Array) -> jax.Array:
    """`means [..., U, F]` (universe-mean futures) -> `[...]` in [1, min(U - 1, F)]:
    exp(entropy) of the normalised eigenvalues of their covariance across universes,
    computed from the singular values of the centred matrix (same non-zero eigenvalues)."""
    x = means - means.mean(-2, keepdims=True)
    s2 = jnp.linalg.svd(x, compute_uv=False) ** 2
    total = s2.sum(-1, keepdims=True)
    p = s2 / jnp.where(total > 0, total, 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), -1)
    return jnp.where(total[..., 0] > 1e-20, jnp.exp(entropy), 1.0)


def lyapunov(states: jax.Array, paths: jax.Array) -> jax.Array:
    """Finite-time Lyapunov proxy. `states [..., U, D]` (the universes' states at t),
    `paths [..., U, H, D]` (their mean future states at t+1..t+H) -> `[...]`.
    λ = (1/H) mean_m log(d_m(H) / d_m(0)); 0 where there is no perturbation."""
    h = paths.shape[-2]
    d0 = jnp.linalg.norm(states[..., 1:, :] - states[..., :1, :], axis=-1)  # [..., M]
    dh = jnp.linalg.norm(paths[..., 1:, -1, :] - paths[..., :1, -1, :], axis=-1)
    ok = (d0 > 0) & (dh > 0)
    logs = jnp.where(ok, jnp.log(jnp.where(ok, dh, 1.0) / jnp.where(ok, d0, 1.0)), 0.0)
    count = ok.sum(-1)
    return jnp.where(count > 0, logs.sum(-1) / jnp.maximum(count, 1), 0.0) / h
