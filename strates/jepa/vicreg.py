"""VICReg: variance, invariance and covariance terms (Bardes, Ponce & LeCun, ICLR 2022).

For two batches of embeddings `Z, Z': [N, D]` (N rows, D dimensions), the paper's loss is

    l(Z, Z') = λ s(Z, Z') + μ [v(Z) + v(Z')] + ν [c(Z) + c(Z')]          (eq. 6)

    v(Z) = (1/D) Σ_j max(0, γ − sqrt(Var(z_j) + ε))                      (eq. 1, hinge on std)
    c(Z) = (1/D) Σ_{i≠j} C(Z)_{ij}²,  C(Z) = 1/(N−1) Σ_n (z_n − z̄)(z_n − z̄)^T   (eqs. 3, 4)
    s(Z, Z') = (1/N) Σ_n ‖z_n − z'_n‖²                                    (eq. 5)

with λ = μ = 25, ν = 1, γ = 1, ε = 1e-4. As in the authors' code (facebookresearch/vicreg),
the variance uses the unbiased estimator (N − 1), `variance` reports the *mean* of v(Z) and
v(Z') (so it lies in [0, γ]), `covariance` the *sum* c(Z) + c(Z'), and `invariance` the
mean squared error over all N·D entries (`F.mse_loss`), i.e. s / D. Everything is computed
in float32.

Reading the terms: all rows equal (collapse) gives the largest variance penalty,
γ − sqrt(ε); whitened embeddings (zero mean, identity covariance) give 0 for both variance
and covariance; identical inputs give 0 invariance.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from strates.jepa.layers import mesh_spec


def _f32(z: jax.Array) -> jax.Array:
    if z.ndim != 2:
        raise ValueError(f"VICReg wants embeddings [N, D]; got shape {z.shape}. "
                         "Flatten the leading axes first, e.g. z.reshape(-1, z.shape[-1]).")
    if z.shape[0] < 2:
        raise ValueError(f"VICReg needs at least 2 rows to estimate a variance; got {z.shape}")
    return z.astype(jnp.float32)


def variance_term(z: jax.Array, *, eps: float = 1e-4, gamma: float = 1.0) -> jax.Array:
    """v(Z): mean over dims of `max(0, γ − sqrt(Var(z_j) + ε))`. `z: [N, D] -> []`."""
    z = _f32(z)
    std = jnp.sqrt(jnp.var(z, axis=0, ddof=1) + eps)
    return jnp.mean(jax.nn.relu(gamma - std))


def covariance_term(z: jax.Array) -> jax.Array:
    """c(Z): squared off-diagonal covariances summed, over D. `z: [N, D] -> []`."""
    z = _f32(z)
    n, d = z.shape
    zc = z - z.mean(axis=0)
    # under an explicit-sharding mesh, N may be split: say the [D, D] result is replicated
    cov = jnp.matmul(zc.T, zc, out_sharding=mesh_spec((d, d), (None, None))) / (n - 1)
    off = cov - jnp.diag(jnp.diag(cov))
    return jnp.sum(jnp.square(off)) / d


def invariance_term(z_a: jax.Array, z_b: jax.Array) -> jax.Array:
    """Mean squared error over all entries. `z_a, z_b: [N, D] -> []`."""
    if z_a.shape != z_b.shape:
        raise ValueError(f"invariance needs equal shapes; got {z_a.shape} and {z_b.shape}")
    return jnp.mean(jnp.square(_f32(z_a) - _f32(z_b)))


def vicreg_terms(z_a: jax.Array, z_b: jax.Array, *, eps: float = 1e-4,
                 gamma: float = 1.0) -> dict[str, jax.Array]:
    """The three unweighted terms for two views `z_a, z_b: [N, D]`.

    Returns `{"variance": (v(Z)+v(Z'))/2, "invariance": mse(Z, Z'), "covariance": c(Z)+c(Z')}`,
    each a float32 scalar (see the module docstring for the conventions).
    """
    return {
        "variance": 0.5 * (variance_term(z_a, eps=eps, gamma=gamma)
                           + variance_term(z_b, eps=eps, gamma=gamma)),
        "invariance": invariance_term(z_a, z_b),
        "covariance": covariance_term(z_a) + covariance_term(z_b),
    }


def vicreg_loss(z_a: jax.Array, z_b: jax.Array, *, sim: float = 25.0, var: float = 25.0,
                cov: float = 1.0, eps: float = 1e-4, gamma: float = 1.0) -> jax.Array:
    """`sim · invariance + var · variance + cov · covariance` (the paper's 25 / 25 / 1).

    `z_a, z_b: [N, D] -> []` float32.
    """
    t = vicreg_terms(z_a, z_b, eps=eps, gamma=gamma)
    return sim * t["invariance"] + var * t["variance"] + cov * t["covariance"]
