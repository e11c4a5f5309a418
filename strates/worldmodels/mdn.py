"""M: an MDN-RNN (Graves 2013; Ha & Schmidhuber 2018). An LSTM reads (z_t, a_t) and a
mixture-density head predicts the next step:

    (h_{t+1}, c_{t+1}) = LSTM([z_t, a_t], (h_t, c_t))
    y_{t+1} = (z_{t+1}, ρ_{t+1}) ~ Π_d Σ_k π_{dk} N(μ_{dk}, σ_{dk}²)     (from h_{t+1})

Each of the Y = Z + 1 output dims is its own mixture of K one-dimensional Gaussians, as in
Ha & Schmidhuber's MDN-RNN; ρ_{t+1} is the next bar's log return divided by the training
period's return std (`ret_scale`): the reward, so that a dream's PnL is computed by the
project's one accounting from returns the model drew (`strates.core.accounting`).

Actions: positions a ∈ [−1, 1]. Small trader: the market does not react to them, so the
training sequences carry actions drawn uniformly at random and M learns that they carry no
information about the next bar; dreams and walks then feed the flat action (why:
`strates.worldmodels.controller`).

Temperature τ at sampling (Ha & Schmidhuber: τ > 1 makes dreams harder): the mixture
logits are divided by τ and each σ is multiplied by √τ.

The LSTM is written out (four gates, forget bias 1) rather than taken from flax: it is a
plain function of a pytree, so the dream scans it over steps and vmaps it over CMA-ES
candidates inside one `jit`.

Dimension letters: B batch, T time, Z latent dims, Y = Z + 1 outputs, K mixtures, H hidden.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

LOG_STD_MIN, LOG_STD_MAX = -7.0, 3.0
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class Mixture(NamedTuple):
    """Per output dim, a mixture of K Gaussians: `logits [..., Y, K]`, `mean [..., Y, K]`,
    `log_std [..., Y, K]`."""

    logits: jax.Array
    mean: jax.Array
    log_std: jax.Array


def init(key: jax.Array, *, latent: int, hidden: int, mixtures: int) -> dict:
    """LSTM `[Z + 1 + H] -> [4H]` (gates i, f, g, o) and the head `[H] -> [Y, 3K]`."""
    k_lstm, k_head = jax.random.split(key)
    n_in = latent + 1 + hidden
    y = latent + 1
    bound = 1.0 / math.sqrt(n_in)
    b = jnp.zeros((4 * hidden,), jnp.float32).at[hidden:2 * hidden].set(1.0)  # forget bias 1
    head_bound = 0.1 / math.sqrt(hidden)
    return {
        "lstm": {"w": jax.random.uniform(k_lstm, (n_in, 4 * hidden), jnp.float32, -bound, bound), "b": b},
        "head": {"w": jax.random.uniform(k_head, (hidden, y * 3 * mixtures), jnp.float32, -head_bound, head_bound),
                 "b": jnp.zeros((y * 3 * mixtures,), jnp.float32)},
    }


def zero_state(params: dict, batch: tuple[int, ...] = ()) -> tuple[jax.Array, jax.Array]:
    """`(h, c)`, each `[..., H]` of zeros."""
    hidden = params["lstm"]["w"].shape[1] // 4
    zeros = jnp.zeros((*batch, hidden), jnp.float32)
    return zeros, zeros


def step(params: dict, carry: tuple[jax.Array, jax.Array], z: jax.Array, action: jax.Array
         ) -> tuple[jax.Array, jax.Array]:
    """One LSTM step: `(h, c) [..., H]`, `z [..., Z]`, `action [...]` -> the new `(h, c)`."""
    h, c = carry
    gates = jnp.concatenate([z, action[..., None], h], axis=-1) @ params["lstm"]["w"] + params["lstm"]["b"]
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def head(params: dict, h: jax.Array) -> Mixture:
    """`h [..., H]` -> the mixture over the next `(z, ρ)`."""
    out = h @ params["head"]["w"] + params["head"]["b"]
    k3 = out.shape[-1]
    y = params["lstm"]["w"].shape[0] - params["lstm"]["w"].shape[1] // 4  # Z + 1 inputs = Y outputs
    out = out.reshape(*out.shape[:-1], y, k3 // y)
    logits, mean, log_std = jnp.split(out, 3, axis=-1)
    return Mixture(logits, mean, jnp.clip(log_std, LOG_STD_MIN, LOG_STD_MAX))


def log_prob(mix: Mixture, y: jax.Array) -> jax.Array:
    """Per-dim log density of `y [..., Y]` under `mix`: `[..., Y]`,
    log Σ_k softmax(logits)_k N(y; μ_k, σ_k²)."""
    z = (y[..., None] - mix.mean) * jnp.exp(-mix.log_std)
    comp = -0.5 * z**2 - mix.log_std - HALF_LOG_2PI
    return jax.nn.logsumexp(jax.nn.log_softmax(mix.logits, axis=-1) + comp, axis=-1)


def sample(mix: Mixture, *, key: jax.Array, temperature: float | jax.Array = 1.0) -> jax.Array:
    """One draw `[..., Y]` from `mix` at temperature τ (logits / τ, σ √τ); consumes `key`."""
    k_comp, k_noise = jax.random.split(key)
    comp = jax.random.categorical(k_comp, mix.logits / temperature, axis=-1)  # [..., Y]
    pick = lambda a: jnp.take_along_axis(a, comp[..., None], axis=-1)[..., 0]  # noqa: E731
    std = jnp.exp(pick(mix.log_std)) * jnp.sqrt(temperature)
    return pick(mix.mean) + std * jax.random.normal(k_noise, comp.shape, mix.mean.dtype)


def unroll(params: dict, z: jax.Array, actions: jax.Array, carry: tuple[jax.Array, jax.Array] | None = None
           ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """Teacher forcing over a sequence: `z [B, T, Z]`, `actions [B, T]` -> (`h [B, T, H]`, the
    hidden state after reading step t, i.e. the one that predicts step t + 1; the last carry)."""
    carry = zero_state(params, z.shape[:1]) if carry is None else carry

    def one(c, inputs):
        c = step(params, c, *inputs)
        return c, c[0]

    carry, hs = jax.lax.scan(one, carry, (jnp.swapaxes(z, 0, 1), jnp.swapaxes(actions, 0, 1)))
    return jnp.swapaxes(hs, 0, 1), carry


def loss(params: dict, batch: dict, key: jax.Array, *, reward_weight: float
         ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean negative log-likelihood per step. `batch`: `mu, logvar [B, T, Z]` (V's posterior
    of each bar's window: z is drawn from it, consuming `key`), `rho [B, T]` (each bar's
    scaled log return), `actions [B, T]`. Step t reads (z_t, a_t) and is scored on
    (z_{t+1}, ρ_{t+1}); ρ's NLL is weighted by `reward_weight`. Metrics: `nll_z` (nats per
    latent dim), `nll_reward` (nats)."""
    mu, logvar = batch["mu"], batch["logvar"]
    z = mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)
    hs, _ = unroll(params, z[:, :-1], batch["actions"][:, :-1])
    target = jnp.concatenate([z[:, 1:], batch["rho"][:, 1:, None]], axis=-1)
    lp = log_prob(head(params, hs), target)  # [B, T-1, Y]
    nll_z = -lp[..., :-1].mean()
    nll_r = -lp[..., -1].mean()
    return nll_z * (lp.shape[-1] - 1) + reward_weight * nll_r, {"nll_z": nll_z, "nll_reward": nll_r}
