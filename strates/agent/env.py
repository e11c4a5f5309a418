"""The trading environment: pure JAX, vectorised over assets and futures.

Small-trader assumption: the agent's positions do not move prices, so the return path is
the same whatever the agent does. That is what lets an offline dataset be relabelled with
any action, and lets a plan be scored on futures drawn without the agent in them.

One step, for one asset (all arrays broadcast, so the same functions serve [A] assets,
[B, N] futures or [B, S, N] candidate plans), in the project's one accounting
(`strates.core.accounting`, DESIGN.md "Accounting"):

    position p in [-1, 1]   the position held before the decision
    action a in [-1, 1]     the target position, held over the next bar
    reward  = a * R_next - cost * |a - p|        (cost is a fraction: bps * 1e-4 per side)

`R_next = expm1(r_next)` is the next bar's *simple* return (`accounting.simple` of its log
return). With `vol_scaled` rewards the PnL term is divided by a causal trailing volatility
(risk parity: a unit position carries unit risk), the cost term is not. The state the agent
sees is (h_t, p): the JEPA state and the position.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from strates.core import accounting
from strates.core.accounting import bps  # noqa: F401  (the environment's cost unit)


def step(position: jax.Array, action: jax.Array, next_simple_return: jax.Array, *, cost: float,
         scale: jax.Array | float = 1.0) -> tuple[jax.Array, jax.Array]:
    """One bar. `position, action, next_simple_return: [...]` -> `(reward [...], new position
    [...])`: `accounting.asset_pnl`, with the action clipped to [-1, 1] as the new position;
    `scale` divides the PnL term only (1 = plain returns; a trailing volatility = risk-parity
    reward)."""
    a = jnp.clip(action, -1.0, 1.0)
    reward = accounting.asset_pnl(a, next_simple_return / scale, position, cost=cost)
    return reward, a


def path_rewards(actions: jax.Array, simple_returns: jax.Array, position: jax.Array, *, cost: float) -> jax.Array:
    """Per-step rewards of a held sequence of positions (`accounting.path_pnl`).

    `actions: [..., H]` (positions for bars 1..H), `simple_returns: [..., H]` (simple returns
    of those bars), `position: [...]` (held before bar 1) -> `[..., H]`; leading dims broadcast.
    """
    return accounting.path_pnl(actions, simple_returns, position, cost=cost)


def trailing_vol(returns: np.ndarray, *, window: int, floor: float) -> np.ndarray:
    """Causal volatility `[T]`: entry t is the std of returns t-window+1..t (the bars known at
    decision time t; expanding at the start), never below `floor`."""
    r = np.asarray(returns, np.float64)
    c1 = np.concatenate([[0.0], np.cumsum(r)])
    c2 = np.concatenate([[0.0], np.cumsum(r * r)])
    t = np.arange(len(r))
    lo = np.maximum(0, t - window + 1)
    n = t + 1 - lo
    mean = (c1[t + 1] - c1[lo]) / n
    var = np.maximum((c2[t + 1] - c2[lo]) / n - mean**2, 0.0)
    return np.maximum(np.sqrt(var), floor)


def cvar(x: jax.Array, alpha: float | jax.Array, axis: int = -1) -> jax.Array:
    """Lower-tail conditional value at risk at level `alpha` in (0, 1]: the mean of the worst
    `alpha` share of the outcomes along `axis` (equally weighted samples).

    With N samples sorted ascending, sample i (0-based) gets weight
    `clip(alpha * N - i, 0, 1) / (alpha * N)`, so a fractional tail share weighs the boundary
    sample in part (Rockafellar & Uryasev 2000, the empirical distribution's exact CVaR).
    `alpha = 1` is the mean; `alpha -> 0` the minimum. Differentiable almost everywhere. A
    Python-number `alpha` takes the worst ceil(alpha N) with `top_k` instead of sorting all N.
    """
    x = jnp.moveaxis(x, axis, -1)
    n = x.shape[-1]
    if isinstance(alpha, (int, float)):  # a static level: only the worst ceil(alpha N) carry weight
        k = min(n, int(np.ceil(alpha * n - 1e-9)))
        worst = -jax.lax.top_k(-x, k)[0]  # ascending
        w = np.clip(alpha * n - np.arange(k), 0.0, 1.0) / (alpha * n)
        return jnp.sum(worst * jnp.asarray(w, x.dtype), axis=-1)
    tail = jnp.asarray(alpha, x.dtype) * n
    w = jnp.clip(tail - jnp.arange(n, dtype=x.dtype), 0.0, 1.0) / tail
    return jnp.sum(jnp.sort(x, axis=-1) * w, axis=-1)
