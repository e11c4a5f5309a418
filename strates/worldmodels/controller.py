"""C: the linear controller, its dreams and its walks through real bars.

    a_t = tanh(W [z_t, h_t] + b)           θ = (W, b), D = Z + H + 1 parameters

Ha & Schmidhuber's C: deliberately small, so that CMA-ES can search it and the world model
carries the complexity. Here a is the position held over the next bar.

A **dream** (`dream`) starts from real training-period states (z_t, h_t, c_t) and repeats:
M steps with (z_t, a = 0), and (z_{t+1}, ρ_{t+1}) are drawn from its mixture at temperature
τ; the controller decides a_t from (z_t, h_t). The PnL of a_t is the project's one
accounting (`strates.core.accounting.path_pnl`): a_t · (e^{ρ_{t+1} s} − 1) − cost · |a_t −
a_{t−1}|, s the training period's return std, starting flat. A dream's PnL is the sum over
its bars.

Why M reads a = 0 rather than the controller's own action (Ha & Schmidhuber feed the action
back): a small trader's positions do not move prices, so the action carries no information
about the next bar; M is trained with random actions to learn exactly that. Feeding the
flat action in the dream keeps the market of a dream the same for every controller: (1)
the candidates of a generation are compared on identical dreamed markets, not merely on the
same noise; (2) CMA-ES cannot exploit a spurious action-to-return link M might have picked
up; (3) a generation's dreams are drawn once and every candidate costs only its tanh over
the stored (z, h) (`dream_fitness`), 64x fewer LSTM steps at population 64.

A **walk** (`walk`) runs the same controller over real bars: z_t is V's posterior mean of
the window ending at t, h_t the LSTM state after reading (z_{t'}, 0) for t' < t.

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


class Market(NamedTuple):
    """`dreams` dreamed markets of `horizon` bars: `z [S, T, Z]`, `h [S, T, H]` (the state a
    decision at each bar reads: the start's, then the drawn ones), `returns [S, T]` (log
    returns of the bars after each decision), `z_next [S, T, Z]` (the latents drawn with
    them: z_next[:, t] = z[:, t + 1])."""

    z: jax.Array
    h: jax.Array
    returns: jax.Array
    z_next: jax.Array


class Dream(NamedTuple):
    """`dreams` rollouts of `horizon` bars: `positions [S, T]`, `returns [S, T]` (log returns
    of the bars held), `pnl [S, T]` (after costs), `z [S, T, Z]` (the drawn next latents)."""

    positions: jax.Array
    returns: jax.Array
    pnl: jax.Array
    z: jax.Array


def market(m_params: dict, starts: Starts, *, key: jax.Array, horizon: int, temperature: float | jax.Array,
           ret_scale: float) -> Market:
    """Dream `horizon` bars from each start with no trader in M (a = 0). Step t consumes
    `fold_in(key, t)`."""

    def one(carry, t):
        z, h, c = carry
        h2, c2 = mdn.step(m_params, (h, c), z, jnp.zeros(z.shape[:-1], z.dtype))
        y = mdn.sample(mdn.head(m_params, h2), key=jax.random.fold_in(key, t), temperature=temperature)
        return (y[..., :-1], h2, c2), (z, h, y[..., -1] * ret_scale, y[..., :-1])

    _, out = jax.lax.scan(one, (starts.z, starts.h, starts.c), jnp.arange(horizon))
    return Market(*(jnp.swapaxes(x, 0, 1) for x in out))


def trade(theta: jax.Array | None, mkt: Market, *, cost: float) -> tuple[jax.Array, jax.Array]:
    """The controller over a dreamed market: `(positions [S, T], pnl [S, T])`; `theta None`
    holds nothing."""
    pos = act(theta, mkt.z, mkt.h) if theta is not None else jnp.zeros(mkt.returns.shape, mkt.returns.dtype)
    pnl = accounting.path_pnl(pos, jnp.expm1(mkt.returns), jnp.zeros(pos.shape[:-1], pos.dtype), cost=cost)
    return pos, pnl


def dream(m_params: dict, theta: jax.Array | None, starts: Starts, *, key: jax.Array, horizon: int,
          temperature: float | jax.Array, ret_scale: float, cost: float) -> Dream:
    """Dream `horizon` bars from each start (`market`) and trade them with `theta` (None: no
    trader, a market hallucination). The same key draws the same market whatever `theta`."""
    mkt = market(m_params, starts, key=key, horizon=horizon, temperature=temperature, ret_scale=ret_scale)
    pos, pnl = trade(theta, mkt, cost=cost)
    return Dream(pos, mkt.returns, pnl, mkt.z_next)


def score(pnl: jax.Array, *, fitness: str, cvar_alpha: float) -> jax.Array:
    """A candidate's fitness from its dreams' PnL `[..., S, T]` -> `[...]`: the mean over
    dreams of each dream's summed PnL (`mean`), or their lower-tail CVaR at `cvar_alpha`
    (`cvar`, the TD-MPC2 planner's `strates.agent.env.cvar`)."""
    from strates.agent.env import cvar

    total = pnl.sum(-1)
    return total.mean(-1) if fitness == "mean" else cvar(total, cvar_alpha, axis=-1)


def dream_fitness(m_params: dict, starts_fn, *, horizon: int, temperature: float, ret_scale: float, cost: float,
                  fitness: str = "mean", cvar_alpha: float = 0.2):
    """The CMA-ES fitness `(population [P, D], key) -> [P]`: a generation's markets are
    dreamed once (`starts_fn(key) -> Starts`, new starts and noise each generation) and every
    candidate trades the same ones."""

    def fn(population: jax.Array, key: jax.Array) -> jax.Array:
        k_start, k_dream = jax.random.split(key)
        mkt = market(m_params, starts_fn(k_start), key=k_dream, horizon=horizon, temperature=temperature,
                     ret_scale=ret_scale)
        return jax.vmap(lambda theta: score(trade(theta, mkt, cost=cost)[1], fitness=fitness,
                                            cvar_alpha=cvar_alpha))(population)

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
    `trading [A, T]` (whether the controller trades at that bar; elsewhere the position is
    0). M reads a = 0 throughout (see the module docstring)."""
    h, _ = hidden_states(m_params, z)
    return positions(theta, z, h, trading)


def positions(theta: jax.Array, z: jax.Array, h: jax.Array, trading: jax.Array) -> jax.Array:
    """`walk` from M's states already computed (`hidden_states`): `z [..., Z]`, `h [..., H]`,
    `trading [...]` -> positions `[...]`."""
    return jnp.where(trading, act(theta, z, h), 0.0)


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
