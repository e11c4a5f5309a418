"""VICReg terms: collapse, whitened embeddings, invariance, correlation, gradients."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from strates.jepa import vicreg


def _whitened(n=256, d=8, seed=0):
    """Rows with zero sample mean and identity sample covariance (ddof=1), exactly."""
    x = np.random.default_rng(seed).normal(size=(n, d))
    x -= x.mean(axis=0)
    cov = x.T @ x / (n - 1)
    w = np.linalg.cholesky(np.linalg.inv(cov))
    return jnp.asarray(x @ w, jnp.float32)


def test_collapse_gives_the_maximal_variance_penalty():
    z = jnp.ones((32, 8)) * jnp.arange(8.0)  # every row the same
    t = vicreg.vicreg_terms(z, z)
    np.testing.assert_allclose(float(t["variance"]), 1.0 - np.sqrt(1e-4), rtol=1e-6)
    spread = jax.random.normal(jax.random.key(0), (32, 8)) * 0.3
    assert float(vicreg.variance_term(spread)) < float(t["variance"])
    assert float(t["covariance"]) == 0.0 and float(t["invariance"]) == 0.0


def test_whitened_embeddings_give_zero_variance_and_covariance():
    z_a, z_b = _whitened(seed=0), _whitened(seed=1)
    t = vicreg.vicreg_terms(z_a, z_b)
    assert float(t["variance"]) == 0.0  # std = sqrt(1 + eps) > gamma
    assert float(t["covariance"]) < 1e-8
    assert float(t["invariance"]) > 0.5  # independent views differ
    assert float(vicreg.vicreg_terms(z_a, z_a)["invariance"]) == 0.0


def test_covariance_grows_with_correlation():
    base = _whitened(seed=2)
    values = []
    for rho in (0.0, 0.3, 0.6, 0.9):
        z = base.at[:, 1].set(rho * base[:, 0] + np.sqrt(1 - rho**2) * base[:, 1])
        values.append(float(vicreg.covariance_term(z)))
    assert values[0] < 1e-8 and all(a < b for a, b in itertools.pairwise(values))
    # two off-diagonal entries of cov = rho (unit variances), over D = 8
    np.testing.assert_allclose(values[-1], 2 * 0.9**2 / 8, rtol=1e-3)


def test_loss_weights_and_finite_gradients_even_at_collapse():
    z_a = jax.random.normal(jax.random.key(1), (16, 4))
    z_b = z_a + 0.1 * jax.random.normal(jax.random.key(2), (16, 4))
    t = vicreg.vicreg_terms(z_a, z_b)
    expect = 25 * t["invariance"] + 25 * t["variance"] + 1 * t["covariance"]
    np.testing.assert_allclose(float(vicreg.vicreg_loss(z_a, z_b)), float(expect), rtol=1e-6)
    for a, b in ((z_a, z_b), (jnp.ones((16, 4)), jnp.ones((16, 4)))):
        ga, gb = jax.grad(vicreg.vicreg_loss, argnums=(0, 1))(a, b)
        assert bool(jnp.all(jnp.isfinite(ga)) & jnp.all(jnp.isfinite(gb)))
    g = jax.grad(vicreg.variance_term)(jnp.ones((16, 4)) + 1e-3 * z_a)
    assert float(jnp.abs(g).sum()) > 0  # near collapse the hinge pushes the rows apart


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[N, D\]"):
        vicreg.variance_term(jnp.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        vicreg.covariance_term(jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="equal shapes"):
        vicreg.invariance_term(jnp.ones((4, 2)), jnp.ones((4, 3)))
