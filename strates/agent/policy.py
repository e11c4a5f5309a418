"""Decisions: from JEPA states to target positions, through Strate III's futures.

`Decider` holds a trained agent and the flows of a cfm artifact and makes the three moves
every decision needs, each jitted and batched over states:

    futures(obs, noise)      N futures per state: returns [B, N, H] and the JEPA state at
                             the end of the planning horizon [B, N, D]
    values(end_states)       the agent's terminal value on a grid of positions [B, N, G]
    decide(...)              MPPI on the CVaR of the path PnL (or the policy prior alone)

Futures are drawn from given noise, so a caller can share random numbers across calls
(Multiverse Crossing perturbs the state and keeps the noise). With K ensemble members the
N futures are split evenly across them.

What a decision reads per (bar, asset) is the cfm's *observation* `[D + k + 1]`
(`strates.cfm.scale`): the JEPA state h_t (what the agent's networks see), the scale
features (which, with h_t, condition the flow) and log sigma_t, the unit the flow's
returns are drawn in. Arguments named `obs` hold observations; the agent's networks read
their first D columns.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from strates.agent import model, planner
from strates.agent.config import Config, PlannerKind
from strates.core.errors import ConfigError


def blockwise(fn, block: int, *arrays):
    """`fn` over the leading axis of `arrays` in blocks of `block` rows (`lax.map`; the last
    block is padded), results concatenated: on CPU a block's intermediates stay in cache,
    about twice as fast as one pass over all rows once those no longer fit (measured for
    the terminal-value grid; for MPPI and the flow it was no faster, so they run whole)."""
    n = arrays[0].shape[0]
    if n <= block:
        return fn(*arrays)
    pad = -n % block
    blocks = [jnp.pad(a, [(0, pad)] + [(0, 0)] * (a.ndim - 1)).reshape(-1, block, *a.shape[1:]) for a in arrays]
    out = jax.lax.map(lambda xs: fn(*xs), blocks)
    return jax.tree.map(lambda o: o.reshape(-1, *o.shape[2:])[:n], out)


def check_horizon(config: Config, cfm_horizon: int) -> None:
    """The planner scores futures, so it cannot look further ahead than they reach."""
    if config.planner.horizon > cfm_horizon:
        raise ConfigError(f"planner.horizon {config.planner.horizon} is longer than the cfm futures "
                          f"({cfm_horizon} bars)", field="planner.horizon",
                          fix=f"use --set planner.horizon={cfm_horizon} or less")


@dataclasses.dataclass(frozen=True)
class Walk:
    """A policy walked forward: positions `[T, A]` (held over the bar after each; 0 where
    not valid), actions `[T, A]` (the planner's decision before any gate), before `[T, A]`
    (the position held when deciding) and warm `[T, A, H]` (the warm-start plan used)."""

    positions: np.ndarray
    actions: np.ndarray
    before: np.ndarray
    warm: np.ndarray


@dataclasses.dataclass(eq=False)  # hashed by identity: `_walk` is jitted with self static
class Decider:
    config: Config
    params: dict
    flows: list  # cfm VectorField members
    ret_scale: float  # training-period std of log returns (the unit of the agent's rewards and values)
    cfm_horizon: int
    state_dim: int
    spread: float = 1.0  # the cfm's recalibration of its futures' spread (`cfm.calibration.widen`)

    def __post_init__(self):
        from flax import nnx

        check_horizon(self.config, self.cfm_horizon)
        self.n_per_member = -(-self.config.planner.futures // len(self.flows))
        self._graphs = [nnx.split(f) for f in self.flows]
        self.x_dim = self.flows[0].x_dim
        self._futures = jax.jit(self._futures_impl)
        self._draw = jax.jit(self._draw_impl)
        self._values = jax.jit(self._values_impl)
        self._decide = jax.jit(self._decide_impl)

    @property
    def obs_dim(self) -> int:
        """The width of an observation: the flow's condition (D + k) and the log unit."""
        return self.flows[0].cond_dim + 1

    @property
    def futures_per_state(self) -> int:
        return self.n_per_member * len(self.flows)

    def _draw_impl(self, obs, noise):
        from flax import nnx

        from strates.cfm.sample import sample_from

        n = self.n_per_member

        def draw(hb, nb):
            return jnp.concatenate([sample_from(nnx.merge(graphdef, state), nb[:, k * n:(k + 1) * n], hb,
                                                nfe=self.config.planner.nfe, method="euler")
                                    for k, (graphdef, state) in enumerate(self._graphs)], axis=1)

        return draw(obs[:, :-1], noise)  # [B, N, H_cfm * (D + 1)]; the condition: h_t and the scale features

    def returns_of(self, x: jax.Array, obs: jax.Array) -> jax.Array:
        """Log returns `[..., N, H_cfm]` of raw futures `x [..., N, H_cfm * (D + 1)]` drawn for
        observations `obs [..., D + k + 1]`: rescaled by each state's unit sigma_t, and each
        future's deviation from the state's mean path widened by the cfm's `spread`."""
        d, hc = self.state_dim, self.cfm_horizon
        returns = x[..., hc * d: hc * d + hc] * jnp.exp(obs[..., -1])[..., None, None]
        mean = returns.mean(axis=-2, keepdims=True)
        return mean + self.spread * (returns - mean)

    def planning_inputs(self, x: jax.Array, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Raw futures `x [..., N, H_cfm * (D + 1)]` of observations `obs [..., D + k + 1]` ->
        (log returns `[..., N, H]` of the planning horizon, unit JEPA states at its last step
        `[..., N, D]`)."""
        d, hp = self.state_dim, self.config.planner.horizon
        end = x[..., (hp - 1) * d: hp * d]
        return self.returns_of(x, obs)[..., :hp], end / jnp.maximum(jnp.linalg.norm(end, axis=-1, keepdims=True),
                                                                     1e-12)

    def _futures_impl(self, obs, noise):
        return self.planning_inputs(self._draw_impl(obs, noise), obs)

    def futures(self, obs: jax.Array, noise: jax.Array) -> tuple[jax.Array, jax.Array]:
        """`obs [B, D + k + 1]`, `noise [B, N, x_dim]` -> `planning_inputs` of the drawn futures."""
        return self._futures(jnp.asarray(obs, jnp.float32), noise)

    def draw(self, obs: jax.Array, noise: jax.Array) -> jax.Array:
        """Raw futures from Strate III (the cfm's scale-free units): `obs [B, D + k + 1]`,
        `noise [B, N, x_dim]` -> `[B, N, H_cfm * (D + 1)]`; future j of state b integrates
        `noise[b, j]`."""
        return self._draw(jnp.asarray(obs, jnp.float32), noise)

    def _values_impl(self, params, end):
        g = self.config.planner.value_grid
        grid = jnp.linspace(-1.0, 1.0, g)

        def grid_values(e):  # [R, D] -> [R, G]
            hh = jnp.broadcast_to(e[:, None], (e.shape[0], g, e.shape[-1]))
            return model.state_value(params, hh, jnp.broadcast_to(grid, (e.shape[0], g)),
                                     group=self.config.model.simnorm_dim)

        flat = end.reshape(-1, end.shape[-1])
        return blockwise(grid_values, 4096, flat).reshape(*end.shape[:-1], g) * self.ret_scale

    def values(self, end: jax.Array) -> jax.Array:
        """Terminal values in PnL units (log return): `[B, N, D] -> [B, N, G]`."""
        return self._values(self.params, end)

    def _decide_impl(self, params, h, position, returns, values, warm, key, shared=1):
        h = h[..., :self.state_dim]  # an observation's JEPA state (a no-op on a state)
        pc = self.config.planner
        if pc.kind == PlannerKind.POLICY:
            z = model.encode(params, h, position, group=self.config.model.simnorm_dim)
            a, _ = model.policy(params, z)
            mean = jnp.broadcast_to(a[:, None], (h.shape[0], pc.horizon))
            return planner.Plan(action=a, mean=mean, std=jnp.zeros_like(mean), value=jnp.zeros_like(a))
        prior = None
        if pc.policy_trajectories:
            prior = model.prior_trajectories(params, h, position, key=jax.random.fold_in(key, 1),
                                             n=pc.policy_trajectories, horizon=pc.horizon,
                                             group=self.config.model.simnorm_dim, shared=shared)
        return planner.plan(returns, position, key=key, cost=self.cost, alpha=pc.cvar_alpha,
                            gamma=self.config.loss.gamma, values=values, prior=prior, warm=warm, samples=pc.samples,
                            elites=pc.elites, iterations=pc.iterations, temperature=pc.temperature, min_std=pc.min_std,
                            max_std=pc.max_std, shared=shared)

    @functools.cached_property
    def cost(self) -> float:
        return self.config.env.cost_bps * 1e-4

    def decide(self, h, position, returns, values, warm, key) -> planner.Plan:
        """`h [B, D]`, `position [B]`, `returns [B, N, H]`, `values [B, N, G]`, `warm [B, H]`
        (the previous plan shifted; pass `position` broadcast to start fresh) -> Plan.
        Consumes `key` (MPPI's candidates and the policy-prior samples)."""
        return self._decide(self.params, jnp.asarray(h, jnp.float32), jnp.asarray(position, jnp.float32), returns,
                            values, jnp.asarray(warm, jnp.float32), key)

    # -- walking forward ---------------------------------------------------------------------
    # Random streams of a walk with key k (the backtest's and the multiverse's alike): the
    # futures of bar t come from `fold_in(fold_in(k, FUTURES), t)`, the planner's candidates
    # and policy samples at bar t from `fold_in(fold_in(k, PLAN), t)`, t counted on the
    # period's clock. So bar t draws the same numbers however the work is chunked, and
    # Multiverse Crossing can replay any bar of the agent's own backtest exactly.
    FUTURES, PLAN = 1, 2

    def bar_noise(self, key: jax.Array, bars: np.ndarray, n_states: int) -> jax.Array:
        """Futures noise of the given `bars [C]` (clock indices) for `n_states` states each:
        `[C * n_states, N, x_dim]` (the flows' source: `cfm.model.source`); bar t's block
        depends on (key, t) alone."""
        from strates.cfm.model import source

        k = jax.random.fold_in(key, self.FUTURES)
        draw = jax.vmap(lambda t: source(jax.random.fold_in(k, t), (n_states, self.futures_per_state, self.x_dim),
                                         self.flows[0]))
        return draw(jnp.asarray(bars)).reshape(-1, self.futures_per_state, self.x_dim)

    def plan_keys(self, key: jax.Array, bars: np.ndarray) -> jax.Array:
        """The planner's key at each of `bars [C]` (clock indices): `[C]` keys."""
        k = jax.random.fold_in(key, self.PLAN)
        return jax.vmap(lambda t: jax.random.fold_in(k, t))(jnp.asarray(bars))

    def inputs(self, h: np.ndarray, *, key: jax.Array, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Planning inputs of every (bar, asset): observations `h [T, A, D + k + 1]` -> (log
        returns `[T, A, N, H]`,
        terminal values `[T, A, N, G]`). Futures and values do not depend on positions, so
        they are drawn for all bars first, `chunk` bars at a time."""
        t_len, a_len, _ = h.shape
        pc = self.config.planner
        returns = np.zeros((t_len, a_len, self.futures_per_state, pc.horizon), np.float32)
        values = np.zeros((t_len, a_len, self.futures_per_state, pc.value_grid), np.float32)
        for s in range(0, t_len, chunk):
            n = min(chunk, t_len - s)
            hh = jnp.asarray(h[s:s + n].reshape(-1, h.shape[-1]), jnp.float32)
            r, end = self.futures(hh, self.bar_noise(key, np.arange(s, s + n), a_len))
            returns[s:s + n] = np.asarray(r).reshape(n, a_len, *r.shape[1:])
            values[s:s + n] = np.asarray(self.values(end)).reshape(n, a_len, *end.shape[1:-1], pc.value_grid)
        return returns, values

    def run(self, h: np.ndarray, valid: np.ndarray, *, key: jax.Array, chunk: int = 256) -> Walk:
        """Walk forward through time: `h [T, A, D + k + 1]` observations of A assets on a common clock,
        `valid [T, A]` -> the `Walk` (positions `[T, A]`, 0 where not valid; a position is
        held from its bar to the next). Consumes `key` (see the random streams above)."""
        returns, values = self.inputs(h, key=key, chunk=chunk)
        return self.walk(h, valid, returns, values, key=key)

    def walk(self, h: np.ndarray, valid: np.ndarray, returns: np.ndarray, values: np.ndarray, *, key: jax.Array,
             hold: np.ndarray | None = None, scale: np.ndarray | None = None) -> Walk:
        """Decide in time order from the policy's own positions. `h [T, A, D + k + 1]`
        observations, `valid [T, A]`,
        `returns [T, A, N, H]`, `values [T, A, N, G]` (from `inputs` with the same key);
        optional gates, applied to the decision before it is held: `hold [T, A]` (keep the
        position held before instead), `scale [T, A]` (multiply the position). With neither,
        this is the agent's own policy."""
        t_len, a_len = valid.shape
        hold = np.zeros((t_len, a_len), bool) if hold is None else np.asarray(hold, bool)
        scale = np.ones((t_len, a_len), np.float32) if scale is None else np.asarray(scale, np.float32)
        out = self._walk(self.params, jnp.asarray(h, jnp.float32), jnp.asarray(valid), jnp.asarray(returns),
                         jnp.asarray(values), self.plan_keys(key, np.arange(t_len)), jnp.asarray(hold),
                         jnp.asarray(scale))
        return Walk(*(np.asarray(o) for o in out))

    @functools.partial(jax.jit, static_argnums=0)
    def _walk(self, params, h, valid, returns, values, keys, hold, scale):
        a_len = h.shape[1]
        horizon = self.config.planner.horizon

        def body(carry, xs):
            position, warm = carry  # [A], [A, H]
            h_t, ok, r_t, v_t, k_t, hold_t, scale_t = xs
            plan = self._decide_impl(params, h_t, position, r_t, v_t, warm, k_t)
            chosen = jnp.where(hold_t, position, jnp.clip(plan.action * scale_t, -1.0, 1.0))
            chosen = jnp.where(ok, chosen, 0.0)
            new_warm = jnp.where((ok & ~hold_t)[:, None], planner.shift(plan.mean),
                                 jnp.broadcast_to(chosen[:, None], warm.shape))
            return (chosen, new_warm), (chosen, plan.action, position, warm)

        init = (jnp.zeros(a_len), jnp.zeros((a_len, horizon)))
        _, (positions, actions, before, warm) = jax.lax.scan(body, init, (h, valid, returns, values, keys, hold, scale))
        return positions, actions, before, warm

    def decide_at(self, h: np.ndarray, before: np.ndarray, warm: np.ndarray, returns: np.ndarray,
                  values: np.ndarray, *, key: jax.Array, bars: np.ndarray, shared: int) -> np.ndarray:
        """Decisions at chosen bars, batched (no walk): `h [C, R, D + k + 1]` observations (or
        states `[C, R, D]`; R per bar: e.g.
        assets x universes), `before [C, R]` and `warm [C, R, H]` (the position and warm plan
        each plans from), `returns [C, R, N, H]`, `values [C, R, N, G]`, `bars [C]` (clock
        indices: bar c plans with the walk's key of that bar) -> actions `[C, R]`.
        Consecutive groups of `shared` rows draw the same planner random numbers: with
        R = A x U universes and shared = U, every universe of an asset plans with the
        numbers the asset's walk used at that bar."""
        keys = self.plan_keys(key, bars)
        return np.asarray(self._decide_at(self.params, jnp.asarray(h, jnp.float32), jnp.asarray(before, jnp.float32),
                                          jnp.asarray(warm, jnp.float32), jnp.asarray(returns), jnp.asarray(values),
                                          keys, shared))

    @functools.partial(jax.jit, static_argnums=(0, 8))
    def _decide_at(self, params, h, before, warm, returns, values, keys, shared):
        def one(h_c, p_c, w_c, r_c, v_c, k_c):
            return self._decide_impl(params, h_c, p_c, r_c, v_c, w_c, k_c, shared=shared).action

        return jax.vmap(one)(h, before, warm, returns, values, keys)
