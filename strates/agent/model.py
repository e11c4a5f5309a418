"""The TD-MPC2-style agent (Hansen, Su & Wang, ICLR 2024), as plain pytrees of arrays.

Networks (LayerNorm + Mish hidden layers, as TD-MPC2):

    encoder    z = SimNorm(f([h_t, p]))          h_t [D] JEPA state, p the position held
    dynamics   z' = SimNorm(g([z, a]))           a the target position
    reward     r̂ = R([z, a])
    values     Q_k([z, a]), k = 1..K             an ensemble, with EMA target copies
    policy     π(z) = tanh(μ + σ ε)              the policy prior

The parameters are a dict of plain arrays, not NNX modules: the Q ensemble is one stacked
MLP evaluated with `vmap`, the EMA target is a dict entry that the training loop's
`frozen`/`post_update` hooks address by name, and the planner calls these functions inside
`jit` on many candidates at once. Plain functions keep all three one-liners.

Dimension letters: B batch, D state dims, L latent dims, K Q-ensemble members, W width.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp

from strates.agent.config import ModelConfig

LOG_STD_MIN, LOG_STD_MAX = -5.0, 1.0


def init_mlp(key: jax.Array, sizes: list[int]) -> list[dict[str, jax.Array]]:
    """Layers `sizes[0] -> ... -> sizes[-1]`; He-uniform weights, zero biases, the last
    layer scaled down (small initial outputs, as TD-MPC2 zero-initialises its heads)."""
    layers = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        key, sub = jax.random.split(key)
        bound = jnp.sqrt(6.0 / n_in) * (0.1 if i == len(sizes) - 2 else 1.0)
        layers.append({"w": jax.random.uniform(sub, (n_in, n_out), jnp.float32, -bound, bound),
                       "b": jnp.zeros((n_out,), jnp.float32)})
    return layers


def mlp(layers: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    """Hidden layers: linear -> LayerNorm (no affine) -> Mish; the last layer is linear."""
    for layer in layers[:-1]:
        x = x @ layer["w"] + layer["b"]
        mu = x.mean(-1, keepdims=True)
        x = (x - mu) * jax.lax.rsqrt(((x - mu) ** 2).mean(-1, keepdims=True) + 1e-5)
        x = x * jnp.tanh(jax.nn.softplus(x))
    return x @ layers[-1]["w"] + layers[-1]["b"]


def simnorm(x: jax.Array, group: int) -> jax.Array:
    """Simplicial normalisation (TD-MPC2): softmax within groups of `group` dims. `[..., L]`."""
    shape = x.shape
    return jax.nn.softmax(x.reshape(*shape[:-1], shape[-1] // group, group), axis=-1).reshape(shape)


def init(key: jax.Array, config: ModelConfig, *, state_dim: int) -> dict:
    """All parameters: enc, dyn, rew, q (stacked [K, ...]), q_target (a copy of q), pi."""
    z, w, k = config.latent_dim, config.width, config.q_ensemble
    keys = jax.random.split(key, 5)
    q = jax.vmap(lambda kk: init_mlp(kk, [z + 1, w, w, 1]))(jax.random.split(keys[3], k))
    return {
        "enc": init_mlp(keys[0], [state_dim + 1, w, z]),
        "dyn": init_mlp(keys[1], [z + 1, w, z]),
        "rew": init_mlp(keys[2], [z + 1, w, 1]),
        "q": q,
        "q_target": jax.tree.map(jnp.copy, q),
        "pi": init_mlp(keys[4], [z, w, 2]),
    }


def frozen(params: dict) -> dict[str, bool]:
    """The training loop's `frozen` prefix tree: only the target values are left alone."""
    return {name: name == "q_target" for name in params}


def ema_target(params: dict, tau: float) -> dict:
    """`q_target <- (1 - tau) q_target + tau q` (the training loop's `post_update`)."""
    target = jax.tree.map(lambda t, q: (1.0 - tau) * t + tau * q, params["q_target"], params["q"])
    return {**params, "q_target": target}


def encode(params: dict, h: jax.Array, position: jax.Array, *, group: int) -> jax.Array:
    """`h [..., D], position [...] -> z [..., L]`."""
    return simnorm(mlp(params["enc"], jnp.concatenate([h, position[..., None]], -1)), group)


def _za(z: jax.Array, a: jax.Array) -> jax.Array:
    return jnp.concatenate([z, a[..., None]], -1)


def dynamics(params: dict, z: jax.Array, a: jax.Array, *, group: int) -> jax.Array:
    """`z [..., L], a [...] -> z' [..., L]`."""
    return simnorm(mlp(params["dyn"], _za(z, a)), group)


def reward(params: dict, z: jax.Array, a: jax.Array) -> jax.Array:
    """`z [..., L], a [...] -> r̂ [...]`."""
    return mlp(params["rew"], _za(z, a))[..., 0]


def q_values(q: list, z: jax.Array, a: jax.Array) -> jax.Array:
    """Every member of a stacked Q ensemble (`params["q"]` or `["q_target"]`):
    `z [..., L], a [...] -> [K, ...]`."""
    x = _za(z, a)
    return jax.vmap(lambda layers: mlp(layers, x))(q)[..., 0]


def policy(params: dict, z: jax.Array, *, key: jax.Array | None = None, eps: jax.Array | None = None
           ) -> tuple[jax.Array, jax.Array]:
    """Tanh-Gaussian policy prior. `z [..., L] -> (action [...], log_prob [...])`.
    With `key` (consumed) or given standard-normal `eps [...]` the action is sampled, else
    it is the mode tanh(μ) (log_prob 0)."""
    out = mlp(params["pi"], z)
    mu = out[..., 0]
    log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (jnp.tanh(out[..., 1]) + 1.0)
    if key is None and eps is None:
        return jnp.tanh(mu), jnp.zeros_like(mu)
    if eps is None:
        assert key is not None  # one of the two is given (above)
        eps = jax.random.normal(key, mu.shape, mu.dtype)
    u = mu + jnp.exp(log_std) * eps
    log_prob = -0.5 * eps**2 - log_std - 0.5 * jnp.log(2 * jnp.pi) - jnp.log(1.0 - jnp.tanh(u) ** 2 + 1e-6)
    return jnp.tanh(u), log_prob


def state_value(params: dict, h: jax.Array, position: jax.Array, *, group: int) -> jax.Array:
    """V(h, p) = mean of two Q heads at (z, π(z)), z = enc(h, p), π's mode (TD-MPC2 plans
    with the average of two heads): `[..., D], [...] -> [...]`, in reward units (returns
    divided by the training-period return std). The first two heads, for determinism."""
    z = encode(params, h, position, group=group)
    a, _ = policy(params, z)
    two = jax.tree.map(lambda w: w[:2], params["q"])
    return q_values(two, z, a).mean(0)


def prior_trajectories(params: dict, h: jax.Array, position: jax.Array, *, key: jax.Array, n: int, horizon: int,
                       group: int, shared: int = 1) -> jax.Array:
    """Policy-prior trajectories for MPPI (TD-MPC2): roll π through the latent dynamics.
    `h [B, D], position [B] -> [B, n, horizon]`; consumes `key` (one draw per step; groups
    of `shared` consecutive states share it). Trajectory 0 follows π's mode; the others
    sample it."""
    b = h.shape[0]
    z = encode(params, h, position, group=group)
    z = jnp.broadcast_to(z[:, None], (b, n, z.shape[-1]))
    actions = []
    for k in range(horizon):
        eps = jax.random.normal(jax.random.fold_in(key, k), (b // shared, n), z.dtype)
        eps = jnp.repeat(eps, shared, axis=0) if shared > 1 else eps
        sampled, _ = policy(params, z, eps=eps)
        mode, _ = policy(params, z)
        a = jnp.concatenate([mode[:, :1], sampled[:, 1:]], axis=1)
        actions.append(a)
        z = dynamics(params, z, a, group=group)
    return jnp.stack(actions, -1)
