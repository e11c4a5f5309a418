"""C: the linear controller, its dreams and its walks through real bars.

    a_t = tanh(W [z_t, h_t] + b)           θ = (W, b), D = Z + H + 1 parameters

Ha & Schmidhuber's C: deliberately small, so that CMA-ES can search it and the world model
carries the complexity. Here a is the position held over the next bar.

A **dream** (`dream`) starts from real training-period states (z_t, h_t, c_t), and repeats:
the controller decides a_t, M steps with (z_t, a_t), and (z_{t+1}, ρ_{t+1}) are drawn from
its mixture at temperature τ. The PnL of a_t is the project's one accounting
(`strates.core.accounting.asset_pnl`): a_t · (e^{ρ_{t+1} s} − 1) − cost · |a_t − a_{t−1}|,
s the training period's return std, starting flat. A dream's PnL is the sum over its bars.

A **walk** (`walk`) runs the same controller over real bars: z_t is V's posterior mean of
the window ending at t, h_t the LSTM state after reading (z_{t'}, a_{t'}) for t' < t, and
the controller's own actions are fed back while it trades (flat, a = 0, before).

Dimension letters: S dreams, P candidates, A assets, T bars, Z latent, H hidden, D = Z + H + 1.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from strates.core import accounting
from strates.worldmodels import mdn


def size(latent: int, hidden: int) -> int:
    """D, the number of controller parameters."""
    return latent + hidden + 1


def act(theta: jax.Array, z: jax.Array, h: jax.Array) -> jax.Array:
    """`theta [D]`, `z [..., Z]`, `h [..., H]` -> positions `[...]` in (−1, 1)."""
    return jnp.tanh(jnp.concatenate([z, h], axis=-1) @ theta[:-1] + theta[-1])


class Starts(NamedTuple):
    """Real states dreams start from: `z [S, Z]`, `h, c [S, H]` (M's state after reading the
    bars before). Every dream starts flat."""

    z: jax.Array
    h: jax.Array
    c: jax.Array


class Dream(NamedTuple):
    """`dreams` rollouts of `horizon` bars: `positions [S, T]`, `returns [S, T]` (log returns
    of the bars held), `pnl [S, T]` (after costs), `z [S, T, Z]` (the drawn next latents)."""

    positions: jax.Array
    returns: jax.Array
    pnl: jax.Array
    z: jax.Array


def dream(m_params: dict, theta: jax.Array | None, starts: Starts, *, key: jax.Array, horizon: int,
          temperature: float | jax.Array, ret_scale: float, cost: float) -> Dream:
    """Dream `horizon` bars from each start. `theta None`: no trader (a = 0 throughout: a
    market hallucination). Step t consumes `fold_in(key, t)`, so two calls with the same key
    draw the same noise whatever the controller does (common random numbers)."""

    def one(carry, t):
        z, h, c, prev = carry
        a = act(theta, z, h) if theta is not None else jnp.zeros(z.shape[:-1], z.dtype)
        h, c = mdn.step(m_params, (h, c), z, a)
        y = mdn.sample(mdn.head(m_params, h), key=jax.random.fold_in(key, t), temperature=temperature)
        r = y[..., -1] * ret_scale
        pnl = accounting.asset_pnl(a, jnp.expm1(r), prev, cost=cost)
        return (y[..., :-1], h, c, a), (a, r, pnl, y[..., :-1])

    zero = jnp.zeros(starts.z.shape[:-1], starts.z.dtype)
    _, (a, r, pnl, z) = jax.lax.scan(one, (starts.z, starts.h, starts.c, zero), jnp.arange(horizon))
    return Dream(jnp.swapaxes(a, 0, 1), jnp.swapaxes(r, 0, 1), jnp.swapaxes(pnl, 0, 1), jnp.swapaxes(z, 0, 1))


def score(pnl: jax.Array, *, fitness: str, cvar_alpha: float) -> jax.Array:
    """A candidate's fitness from its dreams' PnL `[..., S, T]` -> `[...]`: the mean over
    dreams of each dream's summed PnL (`mean`), or their lower-tail CVaR at `cvar_alpha`
    (`cvar`, the TD-MPC2 planner's `strates.agent.env.cvar`)."""
    from strates.agent.env import cvar

    total = pnl.sum(-1)
    return total.mean(-1) if fitness == "mean" else cvar(total, cvar_alpha, axis=-1)


def dream_fitness(m_params: dict, starts_fn, *, horizon: int, temperature: float, ret_scale: float, cost: float,
                  fitness: str = "mean", cvar_alpha: float = 0.2):
    """The CMA-ES fitness `(population [P, D], key) -> [P]`: every candidate dreams from the
    same starts (`starts_fn(key) -> Starts`, new ones each generation) with the same noise."""

    def fn(population: jax.Array, key: jax.Array) -> jax.Array:
        k_start, k_dream = jax.random.split(key)
        starts = starts_fn(k_start)

        def one(theta):
            d = dream(m_params, theta, starts, key=k_dream, horizon=horizon, temperature=temperature,
                      ret_scale=ret_scale, cost=cost)
            return score(d.pnl, fitness=fitness, cvar_alpha=cvar_alpha)

        return jax.vmap(one)(population)

    return fn


def sample_starts(z: jax.Array, h: jax.Array, c: jax.Array, count: int):
    """`starts_fn(key) -> Starts`: `count` states drawn uniformly (with replacement) from
    the real states `z [N, Z]`, `h, c [N, H]` (the training period's)."""

    def fn(key: jax.Array) -> Starts:
        i = jax.random.randint(key, (count,), 0, z.shape[0])
        return Starts(z[i], h[i], c[i])

    return fn


def walk(m_params: dict, theta: jax.Array, z: jax.Array, trading: jax.Array) -> jax.Array:
    """Positions `[A, T]` over real bars: `z [A, T, Z]` (V's means; padding anywhere), and
    `trading [A, T]` (whether the controller trades at that bar: its actions are fed back
    to M there; elsewhere a = 0 goes in and the position is 0)."""

    def one_asset(z_a, trade_a):
        def one(carry, inputs):
            zt, on = inputs
            a = jnp.where(on, act(theta, zt, carry[0]), 0.0)
            return mdn.step(m_params, carry, zt, a), a

        _, a = jax.lax.scan(one, mdn.zero_state(m_params), (z_a, trade_a))
        return a

    return jax.vmap(one_asset)(z, trading)


def hidden_states(m_params: dict, z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """M's state before each bar over real bars with a = 0: `z [A, T, Z]` -> `(h, c) [A, T, H]`,
    entry t having read bars 0..t-1 (the state a dream or a decision at t starts from)."""

    def one_asset(z_a):
        def one(carry, zt):
            new = mdn.step(m_params, carry, zt, jnp.zeros((), zt.dtype))
            return new, carry

        _, (h, c) = jax.lax.scan(one, mdn.zero_state(m_params), z_a)
        return h, c

    return jax.vmap(one_asset)(z)
