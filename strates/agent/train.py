"""Offline training of the agent on transitions from the training period.

Because positions do not move prices (see `env`), one historical bar gives a transition
for any (position, action): the dataset relabels every training bar (asset, t) with a
random position held p and a random target position a, and the reward follows from the
next bar's return, exactly as the environment computes it. Rewards are in units of the
training-period return std, so every loss is O(1).

The losses after TD-MPC2 (one step; TD-MPC2 unrolls H steps of its own dynamics, here a
transition's next state is the JEPA's next state):

    consistency  ||dyn(z, a) - sg(enc(h', a))||²          (z = enc(h, p))
    reward       (R(z, a) - r)²
    value        mean_k (Q_k(z, a) - y)²,  y = r + γ min_{2 random k} Q̄_k(z', π(z'))
    policy       α_H log π(a~|z) - mean_k Q_k(sg z, a~) / sg(scale)
    conservative w · (logsumexp_j Q_k(z, a_j) - log J - Q_k(z, a))   (CQL(H), Kumar et al. 2020)

The a_j are J/2 draws from the relabelling distribution and J/2 from the current policy.
Since relabelling covers every action, no action is out of distribution here; what the
penalty does is push the values of the actions the policy favours towards those of the
data (a soft maximum over actions above the data's mean costs value), i.e. it keeps the
policy from exploiting errors of Q. Its per-
transition weight `w = 1 + c · u / mean(u)` grows with an uncertainty signal `u`, now the
spread of the Q ensemble (the bifurcation index can take its place later). Prioritized
replay follows LaBER (Lahire et al. 2022): a uniform pool, down-sampled inside the step by
|δ|^α with importance weights, so the priorities need no state of their own.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from strates.agent import env, model
from strates.agent.config import Config, Uncertainty


@dataclasses.dataclass(frozen=True)
class Transitions:
    """h [M, D] and h_next [M, D] JEPA states, ret [M] next-bar return / ret_scale,
    scale [M] the reward's PnL divisor (1, or the trailing vol / ret_scale)."""

    h: np.ndarray
    h_next: np.ndarray
    ret: np.ndarray
    scale: np.ndarray


def random_positions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Positions to relabel with: uniform on [-1, 1], 40% of them snapped to -1, 0 or 1
    (the positions a planner most often holds)."""
    p = rng.uniform(-1.0, 1.0, n)
    snap = rng.uniform(size=n) < 0.4
    p[snap] = rng.choice(np.array([-1.0, 0.0, 1.0]), snap.sum())
    return p.astype(np.float32)


def sampler(data: Transitions, config: Config, *, seed: int):
    """`batches(step)` -> the step's transitions (a pool of `replay.pool` x batch when
    prioritized), with fresh random positions and actions; depends on `step` alone."""
    n = config.train.batch_size * (config.replay.pool if config.replay.prioritized else 1)

    def batches(step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, step])
        i = rng.integers(0, len(data.ret), n)
        return {"h": data.h[i], "h_next": data.h_next[i], "ret": data.ret[i], "scale": data.scale[i],
                "p": random_positions(rng, n), "a": random_positions(rng, n)}

    return batches


def make_loss(config: Config, *, cost: float):
    """`loss_fn(params, batch, key) -> (loss, metrics)` for the core training loop; `cost` in
    reward units (the per-side cost fraction divided by the return std)."""
    c, group = config.loss, config.model.simnorm_dim
    batch_size = config.train.batch_size

    def loss_fn(params, batch, key):
        k_next, k_pi, k_cql, k_heads, k_pick = jax.random.split(key, 5)
        p, a = batch["p"], batch["a"]
        r, _ = env.step(p, a, batch["ret"], cost=cost, scale=batch["scale"])  # the environment's own reward
        sg = jax.lax.stop_gradient
        z_next = sg(model.encode(params, batch["h_next"], a, group=group))
        a_next, _ = model.policy(sg(params), z_next, key=k_next)
        heads = jax.random.choice(k_heads, config.model.q_ensemble, (2,), replace=False)
        q_next = model.q_values(params["q_target"], z_next, a_next)[heads].min(0)
        y = sg(r + c.gamma * q_next)
        z = model.encode(params, batch["h"], p, group=group)
        q = model.q_values(params["q"], z, a)  # [K, B]
        td = sg(jnp.abs(q.mean(0) - y))

        weights = jnp.ones_like(r)
        if config.replay.prioritized:
            probs = (td + 1e-6) ** config.replay.alpha
            probs = probs / probs.sum()
            pick = jax.random.choice(k_pick, len(r), (batch_size,), p=probs)
            weights = (len(r) * probs[pick]) ** -config.replay.beta
            weights = weights / weights.max()
            z, q, y, r, a = z[pick], q[:, pick], y[pick], r[pick], a[pick]
            z_next = z_next[pick]

        consistency = ((model.dynamics(params, z, a, group=group) - z_next) ** 2).sum(-1).mean()
        reward_loss = ((model.reward(params, z, a) - r) ** 2).mean()
        value_loss = (weights * ((q - y) ** 2).mean(0)).mean()

        zs = sg(z)
        a_pi, log_pi = model.policy(params, zs, key=k_pi)
        q_pi = model.q_values(sg(params["q"]), zs, a_pi).mean(0)
        scale = sg(jnp.maximum(jnp.abs(q_pi).mean(), 1.0))
        policy_loss = (c.entropy * log_pi - q_pi / scale).mean()

        k_u, k_snap, k_pis = jax.random.split(k_cql, 3)
        shape = (c.cql_samples, *a.shape)
        # the relabelling distribution (so the data action is not told apart by its values alone)
        # and the current policy: CQL(H) pushes the soft maximum over both below the data's value
        snap = jax.random.choice(k_snap, jnp.array([-1.0, 0.0, 1.0]), shape)
        uniform = jax.random.uniform(k_u, shape, minval=-1.0, maxval=1.0)
        others = jnp.where(jax.random.uniform(k_snap, shape) < 0.4, snap, uniform)
        pi_samples, _ = jax.vmap(lambda k: model.policy(sg(params), zs, key=k))(jax.random.split(k_pis, c.cql_samples))
        others = jnp.concatenate([others, pi_samples], axis=0)
        q_others = jax.vmap(lambda aa: model.q_values(params["q"], z, aa))(others)  # [2J, K, B]
        lse = jax.scipy.special.logsumexp(q_others, axis=0) - jnp.log(2 * c.cql_samples)
        spread = sg(q.std(0))
        weighted = c.uncertainty == Uncertainty.Q_ENSEMBLE
        w = 1.0 + (c.uncertainty_weight * spread / (spread.mean() + 1e-8) if weighted else 0.0)
        cql = (w * (lse - q).mean(0)).mean()

        loss = (c.consistency * consistency + c.reward * reward_loss + c.value * value_loss + policy_loss
                + c.cql * cql)
        return loss, {"consistency": consistency, "reward": reward_loss, "value": value_loss, "policy": policy_loss,
                      "cql": cql, "q_mean": q.mean(), "td_abs": td.mean(), "q_spread": spread.mean()}

    return loss_fn
