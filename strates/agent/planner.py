"""MPPI over position sequences, scored on sampled futures by the CVaR of the path PnL.

Model predictive path integral control as TD-MPC2 uses it (Hansen et al., ICLR 2024,
Alg. 1; Williams et al. 2015): keep a Gaussian over H-step action sequences; each
iteration draws candidates, scores them, keeps the elites, and refits mean and std to the
elites weighted by `exp(score / temperature)`. The departures, for markets:

- The learned latent dynamics are not rolled out; each candidate is scored on the N
  futures Strate III drew for this state (the log-return paths `returns [B, N, H]`), with
  the exact PnL of the environment in simple returns (`env.path_rewards`, i.e.
  `accounting.path_pnl`: position x (e^r - 1) - cost x |Δposition|).
- The objective is the CVaR at level `alpha` of the per-future value (discounted PnL plus
  the discounted terminal value), not the mean: `env.cvar`, `alpha = 1` is the mean.
- The terminal value V(h_{t+H}, p) depends on a candidate only through its last position
  p, a scalar; it is evaluated once per future on a grid of `G` positions in [-1, 1]
  (`values [B, N, G]`) and linearly interpolated, so scoring costs no network evaluation.
- Elite scores are divided by their spread before the softmax, so `temperature` does not
  depend on the units of the returns.
- Besides the Gaussian samples, the candidates include the policy-prior trajectories
  (`prior [B, P, H]`) and holding the current position; the decision is the refined mean
  unless holding scores at least as well (a no-trade rule: the weighted mean is never
  exactly the held position, and trading a little at every bar pays costs for nothing).

Dimension letters: B states (assets), N futures, H planning horizon, S candidates, E elites,
P policy-prior trajectories, G value-grid points.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from strates.agent.env import cvar
from strates.core import accounting


@dataclasses.dataclass(frozen=True)
class Plan:
    """action [B] (the first position of the chosen plan), mean [B, H] (the chosen plan: the
    refined mean, or holding; it warm-starts the next decision), std [B, H] (the final
    sampling std), value [B] (the objective of the best candidate seen)."""

    action: jax.Array
    mean: jax.Array
    std: jax.Array
    value: jax.Array


jax.tree_util.register_dataclass(Plan, data_fields=["action", "mean", "std", "value"], meta_fields=[])


def interpolation_weights(positions: jax.Array, g: int) -> jax.Array:
    """Linear-interpolation weights of `positions [...]` on the grid `linspace(-1, 1, g)`:
    `[..., g]`, at most two non-zero, summing to 1 (positions are clipped to [-1, 1])."""
    x = (jnp.clip(positions, -1.0, 1.0) + 1.0) * 0.5 * (g - 1)
    lo = jnp.clip(jnp.floor(x), 0, g - 2)
    frac = x - lo
    grid = jnp.arange(g, dtype=positions.dtype)
    return (grid == lo[..., None]) * (1.0 - frac[..., None]) + (grid == lo[..., None] + 1) * frac[..., None]


def interpolate(values: jax.Array, positions: jax.Array) -> jax.Array:
    """`values [B, N, G]` on the grid `linspace(-1, 1, G)`, `positions [B, S]` ->
    `[B, S, N]`, linear in the position."""
    w = interpolation_weights(positions, values.shape[-1])  # [B, S, G]
    return jnp.einsum("bsg,bng->bsn", w, values)


def objective(candidates: jax.Array, returns: jax.Array, position: jax.Array, *, cost: float, alpha: float,
              gamma: float, values: jax.Array | None = None) -> jax.Array:
    """CVaR over futures of each candidate's discounted value.

    `candidates [B, S, H]`, `returns [B, N, H]`, `position [B]`, `values [B, N, G]` or None
    -> `[B, S]`; `returns` are log returns. Value of a candidate on future n:
    `sum_k gamma^k reward_k + gamma^H V_n(last position)`, with the rewards of
    `env.path_rewards` on the simple returns `expm1(returns)`. The PnL term is a
    contraction over the horizon, `[B, S, H] x [B, N, H] -> [B, S, N]` (PnL is linear in
    the position), and the cost term does not depend on the future, so no `[B, S, N, H]`
    array is formed."""
    h = candidates.shape[-1]
    a = jnp.clip(candidates, -1.0, 1.0)
    discount = gamma ** jnp.arange(h, dtype=a.dtype)
    pnl = jnp.einsum("bsh,bnh->bsn", a * discount, accounting.simple(returns))
    prev = jnp.concatenate([jnp.broadcast_to(position[:, None, None], (*a.shape[:-1], 1)), a[..., :-1]], axis=-1)
    costs = cost * jnp.sum(jnp.abs(a - prev) * discount, axis=-1)  # [B, S]
    total = pnl - costs[..., None]
    if values is not None:
        total = total + gamma**h * interpolate(values, a[..., -1])
    return cvar(total, alpha, axis=-1)


def plan(returns: jax.Array, position: jax.Array, *, key: jax.Array, cost: float, alpha: float,
         gamma: float = 1.0, values: jax.Array | None = None, prior: jax.Array | None = None,
         warm: jax.Array | None = None, samples: int = 512, elites: int = 64, iterations: int = 6,
         temperature: float = 0.5, min_std: float = 0.05, max_std: float = 1.0, shared: int = 1) -> Plan:
    """One MPPI decision per state. Consumes `key` (the Gaussian candidates); the same key
    gives the same candidates across calls (shared random numbers).

    returns: `[B, N, H]` sampled future log returns; position: `[B]` held now;
    values: `[B, N, G]` terminal values (or None); prior: `[B, P, H]` policy-prior
    trajectories (or None); warm: `[B, H]` previous plan's mean, already shifted (or None:
    start at the current position); shared: consecutive groups of `shared` states draw the
    same Gaussian candidates (shared random numbers across universes; B must be a
    multiple). Jit with the tuning values static.
    """
    b, _, h = returns.shape
    extra = [jnp.broadcast_to(position[:, None, None], (b, 1, h))]  # hold the current position
    if prior is not None:
        extra.append(jnp.clip(prior, -1.0, 1.0))
    extra = jnp.concatenate(extra, axis=1)
    n_gauss = samples - extra.shape[1]
    if n_gauss < elites:
        raise ValueError(f"samples {samples} leave {n_gauss} Gaussian candidates, fewer than elites {elites}")
    mean = jnp.broadcast_to(position[:, None], (b, h)) if warm is None else jnp.clip(warm, -1.0, 1.0)
    std = jnp.full((b, h), max_std, returns.dtype)

    def score(cands):
        return objective(cands, returns, position, cost=cost, alpha=alpha, gamma=gamma, values=values)

    best_value = jnp.full((b,), -jnp.inf, returns.dtype)
    for i in range(iterations):
        noise = jax.random.normal(jax.random.fold_in(key, i), (b // shared, n_gauss, h), returns.dtype)
        noise = jnp.repeat(noise, shared, axis=0) if shared > 1 else noise
        cands = jnp.concatenate([jnp.clip(mean[:, None] + std[:, None] * noise, -1.0, 1.0), extra], axis=1)
        s = score(cands)  # [B, S]
        top, idx = jax.lax.top_k(s, elites)  # [B, E]
        elite = jnp.take_along_axis(cands, idx[..., None], axis=1)  # [B, E, H]
        spread = jnp.std(top, axis=-1, keepdims=True) + 1e-12
        w = jax.nn.softmax((top - top[:, :1]) / (spread * temperature), axis=-1)[..., None]
        mean = jnp.clip(jnp.sum(w * elite, axis=1), -1.0, 1.0)  # float32 weights need not sum to 1 exactly
        std = jnp.clip(jnp.sqrt(jnp.sum(w * (elite - mean[:, None]) ** 2, axis=1)), min_std, max_std)
        best_value = jnp.maximum(best_value, top[:, 0])
    # The decision: the refined mean, unless holding the current position scores better.
    # MPPI's weighted mean is never exactly the held position, so without this check a
    # planner trades a little at every bar and pays for it.
    hold = extra[:, 0]
    final = score(jnp.stack([mean, hold], axis=1))  # [B, 2]
    keep = final[:, 1] >= final[:, 0]
    mean = jnp.where(keep[:, None], hold, mean)
    return Plan(action=mean[:, 0], mean=mean, std=std, value=jnp.maximum(final.max(1), best_value))


def shift(mean: jax.Array) -> jax.Array:
    """Warm start for the next bar: drop the first step, repeat the last. `[B, H] -> [B, H]`."""
    return jnp.concatenate([mean[:, 1:], mean[:, -1:]], axis=1)
