"""V: a variational autoencoder over windows of per-bar features (Kingma & Welling 2014; the
"V" of Ha & Schmidhuber 2018, "World Models").

    encoder   μ, log σ² = E(x)           x [B, X] a window of W bars x F features, flattened
    sample    z = μ + σ ⊙ ε, ε ~ N(0, I)  (the reparameterisation trick)
    decoder   x̂ = D(z)

Loss (the negative ELBO, per window, in nats):

    L = ½ ‖x − x̂‖²  +  β · Σ_d max(λ, KL_d)

with the reconstruction term of a unit-variance Gaussian decoder (its constant ½ X log 2π
dropped), β = `kl_weight`, and free bits λ (Kingma et al. 2016, "Improved variational
inference with inverse autoregressive flow"): each latent dim's KL, averaged over the batch,
counts at least λ nats, so a dim carrying little information is not pushed all the way to
the prior. The KL of the diagonal Gaussian posterior from N(0, I) is analytic (`kl`).

Parameters are plain pytrees (the MLPs of `strates.agent.model`: LayerNorm + Mish hidden
layers), so the dream and the controller search call `encode`/`decode` inside `jit` and
`vmap` without a module system in the way.

Dimension letters: B batch, X window features (W x F), Z latent dims, H width.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from strates.agent.model import init_mlp, mlp

LOGVAR_MIN, LOGVAR_MAX = -8.0, 4.0


def init(key: jax.Array, *, inputs: int, latent: int, width: int) -> dict:
    """Encoder `[X] -> [2Z]` (μ, log σ²) and decoder `[Z] -> [X]`, one hidden layer of
    `width` each."""
    k_enc, k_dec = jax.random.split(key)
    return {"enc": init_mlp(k_enc, [inputs, width, width, 2 * latent]),
            "dec": init_mlp(k_dec, [latent, width, width, inputs])}


def encode(params: dict, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """`x [..., X] -> (μ [..., Z], log σ² [..., Z])`; log σ² is clipped to [-8, 4]."""
    out = mlp(params["enc"], x)
    mu, logvar = jnp.split(out, 2, axis=-1)
    return mu, jnp.clip(logvar, LOGVAR_MIN, LOGVAR_MAX)


def decode(params: dict, z: jax.Array) -> jax.Array:
    """`z [..., Z] -> x̂ [..., X]`."""
    return mlp(params["dec"], z)


def sample(mu: jax.Array, logvar: jax.Array, *, key: jax.Array) -> jax.Array:
    """`z = μ + exp(½ log σ²) ⊙ ε` (consumes `key`); shapes `[..., Z]`."""
    return mu + jnp.exp(0.5 * logvar) * jax.random.normal(key, mu.shape, mu.dtype)


def kl(mu: jax.Array, logvar: jax.Array) -> jax.Array:
    """KL(N(μ, σ²) ‖ N(0, 1)) per dim, `[..., Z]`: ½ (μ² + σ² − 1 − log σ²)."""
    return 0.5 * (mu**2 + jnp.exp(logvar) - 1.0 - logvar)


def loss(params: dict, x: jax.Array, key: jax.Array, *, kl_weight: float, free_bits: float
         ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The negative ELBO of a batch `x [B, X]`, averaged over windows (see the module
    docstring); consumes `key` for z. Metrics: `recon` and `kl` (nats per window, the KL
    before free bits), `active` (latent dims whose mean KL exceeds the free bits)."""
    mu, logvar = encode(params, x)
    z = sample(mu, logvar, key=key)
    recon = 0.5 * jnp.sum((x - decode(params, z)) ** 2, axis=-1).mean()
    per_dim = kl(mu, logvar).mean(0)  # [Z]
    total = recon + kl_weight * jnp.sum(jnp.maximum(per_dim, free_bits))
    return total, {"recon": recon, "kl": per_dim.sum(), "active": jnp.sum(per_dim > free_bits).astype(jnp.float32)}
