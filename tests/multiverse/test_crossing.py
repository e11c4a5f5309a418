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
    futures = np.random.default_rng(4).standard_normal((3, 1, 12, 4, 16)).astype(np.float32)  # [B, U, N, H, D]
    paths = crossing.unit(np.broadcast_to(futures, (3, 9, 12, 4, 16)))  # the same in every universe
    np.testing.assert_array_equal(crossing.lyapunov(paths, d0=0.0), 0.0)  # nothing perturbed, nothing read
    np.testing.assert_array_equal(crossing.sensitivity(paths[..., -1, :]), 0.0)
    np.testing.assert_array_equal(crossing.modes(paths[:, 0].reshape(3, 12, -1)), 1)
    assert crossing.lyapunov_floor(0.0, 4) == 0.0


def test_consensus_and_bifurcation_count_universes():
    dirs = jnp.array([[1, 1, 1, -1, 0, 1], [0, 1, 1, 1, -1, -1], [-1, 0, 0, 1, 1, -1]], jnp.int8)
    majority, consensus = crossing.vote(dirs)
    np.testing.assert_array_equal(np.asarray(majority), [1, 1, -1])  # last row: a 2-2-2 tie goes to universe 0
    np.testing.assert_allclose(np.asarray(consensus), [4 / 6, 3 / 6, 2 / 6])
    np.testing.assert_allclose(np.asarray(crossing.bifurcation(dirs)), [2 / 5, 5 / 5, 4 / 5])
    np.testing.assert_array_equal(np.asarray(crossing.directions(jnp.array([-0.5, -0.1, -0.09, 0.0, 0.1, 1.0]),
                                                                 band=0.1)), [-1, -1, 0, 0, 1, 1])


def test_lyapunov_slope_is_the_least_squares_slope():
    k = np.arange(7.0)
    np.testing.assert_allclose(crossing.lyapunov_slope(np.stack([0.3 * k - 2, -1.5 * k])), [0.3, -1.5], atol=1e-12)
    np.testing.assert_array_equal(crossing.lyapunov_slope(np.full((2, 5), np.log(crossing.FLOOR))), 0.0)
    noisy = 0.2 * k + np.random.default_rng(0).normal(0, 0.1, 7)
    assert crossing.lyapunov_slope(noisy) == pytest.approx(np.polyfit(k, noisy, 1)[0], abs=1e-12)
    with pytest.raises(ValueError, match="2 steps"):
        crossing.lyapunov_slope(np.zeros(1))


def test_geodesic_distance_is_exact_for_small_angles():
    rng = np.random.default_rng(6)
    u = crossing.unit(rng.standard_normal((4, 32)))
    e = rng.standard_normal((4, 32))
    v = crossing.unit(e - (e * u).sum(-1, keepdims=True) * u)  # a tangent direction
    for sigma in (1e-7, 1e-4, 0.02, 1.0, 3.0):  # arccos(u·u') would lose 1e-7 altogether in float64
        np.testing.assert_allclose(crossing.geodesic(np.cos(sigma) * u + np.sin(sigma) * v, u), sigma, rtol=1e-8)
    np.testing.assert_array_equal(crossing.geodesic(u, u), 0.0)
    np.testing.assert_allclose(crossing.geodesic(u, -u), np.pi, rtol=1e-12)


@pytest.mark.parametrize("rate", [0.8, 0.95, 1.05, 1.3])
def test_lyapunov_proxy_recovers_the_rate_of_a_linear_map(rate):
    # x -> rate * R x (R a rotation) with additive noise shared by the universes: every
    # pathwise distance is multiplied by `rate` each step, so lambda = log(rate) exactly
    d, horizon, m, n = 6, 5, 10, 8
    rng = np.random.default_rng(1)
    rot = np.linalg.qr(rng.standard_normal((d, d)))[0]
    start = rng.standard_normal((2, 1, 1, d))
    dirs = crossing.unit(rng.standard_normal((2, m, 1, d)))
    x = np.concatenate([start, start + 0.05 * dirs], axis=1) + np.zeros((1, 1, n, 1))  # [B, U, N, D]
    path = []
    for _ in range(horizon):
        x = rate * x @ rot.T + rng.standard_normal((2, 1, n, d))  # the same noise in every universe
        path.append(x)
    paths = np.stack(path, axis=-2)  # [B, U, N, H, D]
    lam = crossing.lyapunov(paths, d0=0.05, distance=crossing.euclidean)
    np.testing.assert_allclose(lam, np.log(rate), atol=1e-9)
    # the same in float32 through jax
    lam32 = crossing.lyapunov(jnp.asarray(paths, jnp.float32), d0=0.05, distance=crossing.euclidean)
    np.testing.assert_allclose(np.asarray(lam32), np.log(rate), atol=2e-5)


def test_a_flow_that_ignores_its_condition_reads_the_floor():
    # identical futures in every universe whatever the state: d = 0 for k >= 1
    sigma, horizon = 0.02, 8
    futures = crossing.unit(np.random.default_rng(8).standard_normal((5, 1, 16, horizon, 32)).astype(np.float32))
    paths = np.broadcast_to(futures, (5, 7, 16, horizon, 32))
    lam = crossing.lyapunov(paths, d0=sigma)
    np.testing.assert_allclose(np.asarray(crossing.lyapunov(jnp.asarray(paths[:1]), d0=sigma)), lam[:1], rtol=1e-6)
    floor = crossing.lyapunov_floor(sigma, horizon)
    # strongly contracting (as a linear map shrinking distances by 0.52 a step), never 0, never NaN
    assert np.isfinite(floor) and floor == pytest.approx(-0.66, abs=0.01)
    np.testing.assert_allclose(lam, floor, rtol=1e-5)
    y = [np.log(sigma)] + [np.log(crossing.FLOOR)] * horizon
    assert floor == pytest.approx(np.polyfit(np.arange(horizon + 1), y, 1)[0], rel=1e-9)
    # a flow that follows its condition reads far above it (here: the identity on the sphere)
    moved = np.asarray(crossing.perturb(jnp.asarray(futures[:, 0, 0, 0]), key=jax.random.key(9), m=6, sigma=sigma))
    static = np.broadcast_to(moved[:, :, None, None], (5, 7, 16, horizon, 32))  # [B, U, N, H, D]
    np.testing.assert_allclose(crossing.lyapunov(static, d0=sigma), 0.0, atol=2e-3)


def _attractor(step, x0, *, burn: int, n: int) -> np.ndarray:
    x, out = np.asarray(x0, np.float64), []
    for i in range(burn + n):
        x = step(x)
        if i >= burn:
            out.append(x)
    return np.array(out)


def _crossed(step, starts, *, m, n, horizon, sigma, noise, rng):
    """Futures of a map with additive noise shared by the universes: `starts [S, D]` ->
    paths `[S, M + 1, N, H, D]`, universe m > 0 started sigma away in a random direction."""
    s, d = starts.shape
    dirs = crossing.unit(rng.standard_normal((s, m, d)))
    x = np.concatenate([starts[:, None], starts[:, None] + sigma * dirs], axis=1)[:, :, None] + np.zeros((1, 1, n, 1))
    path = []
    for _ in range(horizon):
        x = step(x) + noise(rng, (s, 1, n, d))
        path.append(x)
    return np.stack(path, axis=-2)


def test_lyapunov_proxy_recovers_the_logistic_map():
    # x -> 4x(1 - x): lambda = ln 2 per step. Noise of 1e-3 shared by the universes, the
    # state reflected back into [0, 1] (|slope| 1); sigma = 1e-9 keeps the distances small over H
    def step(x):
        y = 1.0 - np.abs(1.0 - np.abs(x))  # reflect into [0, 1]
        return 4.0 * y * (1.0 - y)

    rng = np.random.default_rng(2)
    starts = _attractor(step, [0.3141], burn=100, n=4000)[::20]  # [200, 1] on the invariant measure
    paths = _crossed(step, starts, m=4, n=64, horizon=10, sigma=1e-9, rng=rng,
                     noise=lambda r, shape: r.uniform(-1e-3, 1e-3, shape))
    lam = crossing.lyapunov(paths, d0=1e-9, distance=crossing.euclidean, floor=1e-300).mean()
    assert lam == pytest.approx(np.log(2.0), rel=0.1)


def test_lyapunov_proxy_recovers_the_henon_map():
    # (x, y) -> (1 - 1.4 x^2 + y, 0.3 x): lambda = 0.419 per step (Sprott, Chaos and Time-Series Analysis)
    def henon(v):
        return np.stack([1.0 - 1.4 * v[..., 0] ** 2 + v[..., 1], 0.3 * v[..., 0]], axis=-1)

    rng = np.random.default_rng(3)
    starts = _attractor(henon, [0.1, 0.1], burn=100, n=4000)[::20]
    paths = _crossed(henon, starts, m=4, n=64, horizon=20, sigma=1e-9, rng=rng,
                     noise=lambda r, shape: 1e-4 * r.standard_normal(shape))
    lam = crossing.lyapunov(paths, d0=1e-9, distance=crossing.euclidean, floor=1e-300).mean()
    assert lam == pytest.approx(0.419, rel=0.1)


def test_sensitivity_compares_the_push_with_the_spread():
    rng = np.random.default_rng(4)
    base = rng.standard_normal((1, 1, 64, 16))  # [B, U, N, F], the shared noise
    shift = crossing.unit(rng.standard_normal((1, 5, 1, 16)))
    for scale in (1e-4, 1.0, 1e3):
        still = scale * np.broadcast_to(base, (1, 6, 64, 16))
        assert crossing.sensitivity(still)[0] == 0.0  # the push moved nothing
        tiny = scale * (base + np.concatenate([np.zeros((1, 1, 1, 16)), 1e-3 * shift], axis=1))
        big = scale * (base + np.concatenate([np.zeros((1, 1, 1, 16)), 20.0 * shift], axis=1))
        within = base[0, 0].var(0).sum()
        assert crossing.sensitivity(tiny)[0] == pytest.approx(1e-6 / within, rel=1e-6)  # ~ 0
        assert crossing.sensitivity(big)[0] == pytest.approx(400.0 / within, rel=1e-6)  # large
    # deterministic futures that move: a finite (large) number, not inf or NaN
    point = np.concatenate([np.zeros((1, 1, 4, 2)), np.ones((1, 1, 4, 2))], axis=1)
    assert crossing.sensitivity(point)[0] == pytest.approx(2.0 / crossing.FLOOR**2)
    assert float(crossing.sensitivity(jnp.asarray(big, jnp.float32))[0]) == pytest.approx(400.0 / within, rel=1e-4)


def _clusters(rng, b, n, d, k, *, radii):
    """`b` clouds of `n` points: `k` unit Gaussian clusters whose centres are `radii` cluster
    radii (sqrt(d)) apart along orthogonal axes."""
    centres = np.zeros((k, d))
    centres[np.arange(k), np.arange(k)] = radii * np.sqrt(d / 2)
    return centres[np.arange(n) % k] + rng.standard_normal((b, n, d))


@pytest.mark.parametrize(("n", "d"), [(64, 2), (32, 8), (64, 32), (48, 136)])
def test_modes_of_a_gaussian_cloud_is_one_at_any_scale(n, d):
    rng = np.random.default_rng(5)
    cloud = rng.standard_normal((40, n, d)) * rng.uniform(0.3, 3.0, (40, 1, d))  # anisotropic too
    for scale in (1e-5, 1e-3, 1.0, 1e2):
        np.testing.assert_array_equal(crossing.modes(scale * cloud + 7.0), 1)
    assert crossing.modes(jnp.asarray(cloud, jnp.float32) * 1e-5).tolist() == [1] * 40  # jax, float32


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize(("n", "d"), [(32, 16), (64, 32)])
def test_modes_counts_separated_clusters_whatever_the_scale_or_rotation(k, n, d):
    rng = np.random.default_rng(6)
    x = _clusters(rng, 40, n, d, k, radii=5.0)
    np.testing.assert_array_equal(crossing.modes(x), k)
    rot = np.linalg.qr(rng.standard_normal((d, d)))[0]
    np.testing.assert_array_equal(crossing.modes(1e-5 * x @ rot.T - 3.0), k)
    np.testing.assert_array_equal(crossing.modes(1e2 * x), k)
    # clusters that overlap are one mode
    np.testing.assert_array_equal(crossing.modes(_clusters(rng, 40, n, d, k, radii=0.3)), 1)


def test_modes_of_discrete_and_degenerate_futures():
    two = np.concatenate([np.zeros((1, 16, 3)), np.ones((1, 16, 3))], axis=1)  # two groups of identical futures
    assert crossing.modes(two).tolist() == [2]
    assert crossing.modes(np.zeros((2, 32, 5))).tolist() == [1, 1]
    # a few stragglers far out are no mode of their own
    cloud = np.random.default_rng(7).standard_normal((1, 40, 8))
    cloud[0, :2] += 50.0
    assert crossing.modes(cloud).tolist() == [1]
    assert crossing.modes(np.zeros((3, 4, 1, 6))).shape == (3, 4)  # leading dims kept
