"""The canonical definitions of Multiverse Crossing, on cases whose answers are known."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from strates.multiverse import crossing


def _unit(key, shape):
    u = jax.random.normal(key, shape)
    return u / jnp.linalg.norm(u, axis=-1, keepdims=True)


@pytest.mark.parametrize("sigma", [0.0, 0.02, 0.3, 1.2])
def test_perturbations_are_unit_and_at_geodesic_distance_sigma(sigma):
    u = _unit(jax.random.key(0), (5, 64))
    p = crossing.perturb(u, key=jax.random.key(1), m=30, sigma=sigma)
    assert p.shape == (5, 31, 64)
    np.testing.assert_array_equal(np.asarray(p[:, 0]), np.asarray(u))  # universe 0 is the state itself
    np.testing.assert_allclose(np.linalg.norm(np.asarray(p, np.float64), axis=-1), 1.0, atol=2e-7)
    cos = np.clip(np.einsum("bd,bmd->bm", np.asarray(u, np.float64), np.asarray(p[:, 1:], np.float64)), -1, 1)
    np.testing.assert_allclose(np.arccos(cos), sigma, atol=2e-3 if sigma < 0.1 else 1e-5)
    if sigma > 0:  # directions differ between universes
        assert np.linalg.matrix_rank(np.asarray(p[0, 1:] - u[0])) > 20


def test_sigma_zero_gives_the_trivial_values():
    u = _unit(jax.random.key(2), (3, 16))
    p = crossing.perturb(u, key=jax.random.key(3), m=8, sigma=0.0)
    np.testing.assert_array_equal(np.asarray(p), np.broadcast_to(np.asarray(u)[:, None], p.shape))
    # identical states give identical futures and decisions under shared random numbers
    actions = jnp.broadcast_to(jnp.array([0.7, -0.4, 0.02])[:, None], (3, 9))
    dirs = crossing.directions(actions, band=0.1)
    majority, consensus = crossing.vote(dirs)
    np.testing.assert_array_equal(np.asarray(majority), [1, -1, 0])
    np.testing.assert_array_equal(np.asarray(consensus), 1.0)
    np.testing.assert_array_equal(np.asarray(crossing.bifurcation(dirs)), 0.0)
    means = jnp.broadcast_to(jnp.arange(12.0)[None, None], (3, 9, 12))
    np.testing.assert_array_equal(np.asarray(crossing.effective_modes(means)), 1.0)
    paths = jnp.broadcast_to(p[:, :, None], (3, 9, 4, 16))
    np.testing.assert_array_equal(np.asarray(crossing.lyapunov(p, paths)), 0.0)


def test_consensus_and_bifurcation_count_universes():
    dirs = jnp.array([[1, 1, 1, -1, 0, 1], [0, 1, 1, 1, -1, -1], [-1, 0, 0, 1, 1, -1]], jnp.int8)
    majority, consensus = crossing.vote(dirs)
    np.testing.assert_array_equal(np.asarray(majority), [1, 1, -1])  # last row: a 2-2-2 tie goes to universe 0
    np.testing.assert_allclose(np.asarray(consensus), [4 / 6, 3 / 6, 2 / 6])
    np.testing.assert_allclose(np.asarray(crossing.bifurcation(dirs)), [2 / 5, 5 / 5, 4 / 5])
    np.testing.assert_array_equal(np.asarray(crossing.directions(jnp.array([-0.5, -0.1, -0.09, 0.0, 0.1, 1.0]),
                                                                 band=0.1)), [-1, -1, 0, 0, 1, 1])


def test_effective_modes_counts_independent_directions():
    rng = np.random.default_rng(0)
    one = rng.standard_normal((40, 1)) * np.array([[1.0, 2.0, 0.0, 0.0]])  # all along one line
    assert float(crossing.effective_modes(jnp.asarray(one))) == pytest.approx(1.0, abs=1e-4)
    # two orthogonal directions with equal spread: exp(ln 2) = 2
    two = np.zeros((40, 4))
    two[:20, 0], two[20:, 1] = np.tile([1.0, -1.0], 10), np.tile([1.0, -1.0], 10)
    assert float(crossing.effective_modes(jnp.asarray(two))) == pytest.approx(2.0, rel=1e-4)
    iso = rng.standard_normal((4000, 3))
    assert float(crossing.effective_modes(jnp.asarray(iso))) == pytest.approx(3.0, rel=0.02)


@pytest.mark.parametrize("rate", [0.8, 0.95, 1.05, 1.3])
def test_lyapunov_proxy_recovers_the_rate_of_a_linear_map(rate):
    # x_{t+1} = rate * R x_t around a fixed point (R a rotation): distances scale by rate per
    # step, so lambda = log(rate): negative when contracting, positive when expanding
    d, horizon = 6, 5
    u = _unit(jax.random.key(4), (2, d))
    states = crossing.perturb(u, key=jax.random.key(5), m=10, sigma=0.05)  # [2, 11, D]
    rot = np.linalg.qr(np.random.default_rng(1).standard_normal((d, d)))[0]
    x = np.asarray(states, np.float64) - np.asarray(u, np.float64)[:, None]
    path = []
    for _ in range(horizon):
        x = rate * x @ rot.T
        path.append(x)
    paths = jnp.asarray(np.stack(path, axis=2) + np.asarray(u)[:, None, None], jnp.float32)
    lam = np.asarray(crossing.lyapunov(states, paths))
    np.testing.assert_allclose(lam, np.log(rate), atol=2e-3)
    assert (lam < 0).all() if rate < 1 else (lam > 0).all()
