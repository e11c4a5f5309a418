"""C's search and dreams: CMA-ES finds the maximiser of a known quadratic, maximises (not
minimises), is reproducible from its key; dreams are reproducible, a dream without a trader
holds nothing and earns exactly nothing, candidates share random numbers; a walk holds
nothing where it does not trade."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from strates.worldmodels import controller, mdn, search

D = 12  # the quadratic's parameters
Z, H, K = 3, 8, 2  # a tiny M: latent, hidden, mixtures

# jitted once for the file: each eager call of a scan over a fresh closure compiles anew
_dream = jax.jit(controller.dream, static_argnames=("horizon", "ret_scale", "cost"))
_walk = jax.jit(controller.walk)



def _least_squares(seed: int = 0):
    """fitness(θ) = 1 − ‖Xθ − y‖² with y = Xθ*: maximised at θ*, where it is 1, and with no
    minimum. Past θ_0 = θ*_0 + 0.5 it is NaN (a wall the search must step back from).
    Returns (fitness, θ*)."""
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((3 * D, D)) / np.sqrt(3 * D), jnp.float32)
    theta_star = jnp.asarray(rng.uniform(-1.0, 1.0, D), jnp.float32)
    y = x @ theta_star

    def fitness(pop, key):
        del key
        f = 1.0 - jnp.sum((pop @ x.T - y) ** 2, axis=-1)
        return jnp.where(pop[:, 0] > theta_star[0] + 0.5, jnp.nan, f)

    return fitness, theta_star


def _search_quadratic(fitness, seed):
    return search.run(fitness, jnp.zeros(D), population=16, sigma0=0.5, generations=250, key=jax.random.key(seed))


# --- the search ----------------------------------------------------------------------------
# One compiled search per key: `search.run` compiles on every call, so the tests share runs.


@pytest.fixture(scope="module")
def quadratic():
    """The least-squares problem and its search from 0 with key 0."""
    fitness, theta_star = _least_squares()
    return fitness, theta_star, _search_quadratic(fitness, 0)


def test_finds_the_maximiser_of_a_quadratic(quadratic):
    _, theta_star, r = quadratic
    assert r.mean.shape == (250, D) and r.fitness_max.shape == (250,) and r.std.shape == (250,)
    np.testing.assert_allclose(np.asarray(r.mean[-1]), np.asarray(theta_star), atol=1e-3)
    np.testing.assert_allclose(np.asarray(r.best), np.asarray(theta_star), atol=1e-3)
    f = np.asarray(r.fitness_max)
    assert f[-1] >= f[0], "the last generation's best is worse than the first's"
    assert f[-10:].min() > 1.0 - 1e-6
    assert float(r.best_fitness) >= f.max()  # the best ever seen
    assert float(r.std[-1]) < 0.5  # the step size shrank around the optimum


def test_maximises_not_minimises(quadratic):
    # 1 − ‖Xθ − y‖² has no minimum: a minimising search would run away from θ*, its best
    # fitness far below 0. The best's fitness is the fitness itself (+1), not its negation.
    _, theta_star, r = quadratic
    mean, star = np.asarray(r.mean[-1]), np.asarray(theta_star)
    assert np.linalg.norm(mean - star) < np.linalg.norm(star)
    np.testing.assert_allclose(float(r.best_fitness), 1.0, atol=1e-5)
    assert np.asarray(r.fitness_mean)[-1] > np.asarray(r.fitness_mean)[0]


def test_non_finite_fitness_ranks_last(quadratic):
    # candidates past the NaN wall rank last: the search stays finite and the best is never one
    _, theta_star, r = quadratic
    assert np.isfinite(np.asarray(r.mean)).all() and np.isfinite(np.asarray(r.std)).all()
    assert np.isfinite(float(r.best_fitness)) and float(r.best[0]) <= float(theta_star[0]) + 0.5
    assert np.isfinite(np.asarray(r.fitness_mean)).all()  # the population mean averages the finite candidates


def test_reproducible_for_a_key(quadratic):
    fitness, _, r = quadratic
    again, other = _search_quadratic(fitness, 0), _search_quadratic(fitness, 1)
    np.testing.assert_array_equal(np.asarray(r.mean), np.asarray(again.mean))
    np.testing.assert_array_equal(np.asarray(r.best), np.asarray(again.best))
    assert not np.array_equal(np.asarray(r.mean[:5]), np.asarray(other.mean[:5]))


# --- dreams --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world():
    """A random tiny M and 5 start states, as the training period would give them."""
    m = mdn.init(jax.random.key(0), latent=Z, hidden=H, mixtures=K)
    rng = np.random.default_rng(1)
    z, h, c = rng.standard_normal((5, Z)), np.tanh(rng.standard_normal((5, H))), rng.standard_normal((5, H))
    return m, controller.Starts(*(jnp.asarray(x, jnp.float32) for x in (z, h, c)))


def _dreamed(world, theta, seed, horizon=6):
    m, starts = world
    return _dream(m, theta, starts, key=jax.random.key(seed), horizon=horizon, temperature=1.0, ret_scale=0.01,
                  cost=5e-4)


def test_dream_reproducible_from_a_key(world):
    theta = 0.3 * jax.random.normal(jax.random.key(9), (controller.size(Z, H),))
    a, b, c = _dreamed(world, theta, 0), _dreamed(world, theta, 0), _dreamed(world, theta, 1)
    assert a.positions.shape == (5, 6) and a.z.shape == (5, 6, Z)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(a.returns), np.asarray(c.returns))
    assert not np.array_equal(np.asarray(a.pnl), np.asarray(c.pnl))


def test_dream_without_a_trader_holds_nothing(world):
    d = _dreamed(world, None, 0)
    assert np.all(np.asarray(d.positions) == 0.0)
    assert np.all(np.asarray(d.pnl) == 0.0)
    assert np.asarray(d.returns).std() > 0  # the market still moves


def test_identical_candidates_get_identical_fitness(world):
    # common random numbers: every candidate of a generation dreams from the same starts with
    # the same noise, so a candidate's fitness does not depend on its neighbours
    m, starts = world
    z = jnp.tile(starts.z, (4, 1))
    h, c = jnp.tile(starts.h, (4, 1)), jnp.tile(starts.c, (4, 1))
    fn = controller.dream_fitness(m, controller.sample_starts(z, h, c, 8), horizon=6, temperature=1.0,
                                  ret_scale=0.01, cost=5e-4)
    k = jax.random.split(jax.random.key(5), 3)
    theta = 0.5 * jax.random.normal(k[0], (controller.size(Z, H),))
    other = 0.5 * jax.random.normal(k[1], (controller.size(Z, H),))
    f = np.asarray(jax.jit(fn)(jnp.stack([theta, other, theta, other]), k[2]))
    assert f[0] == f[2] and f[1] == f[3]
    assert f[0] != f[1]


# --- walks over real bars ------------------------------------------------------------------


def _bars():
    z = jax.random.normal(jax.random.key(3), (2, 10, Z))
    trading = np.ones((2, 10), bool)
    trading[0, :3] = False  # not yet trading
    trading[1, 4:6] = False  # a gap
    trading[1, -1] = False
    return z, jnp.asarray(trading)


def test_walk_is_flat_where_it_does_not_trade(world):
    m, _ = world
    z, trading = _bars()
    theta = 0.3 * jax.random.normal(jax.random.key(4), (controller.size(Z, H),))
    a = np.asarray(_walk(m, theta, z, trading))
    on = np.asarray(trading)
    assert a.shape == (2, 10)
    assert np.all(a[~on] == 0.0)
    assert np.all(np.abs(a[on]) < 1.0) and np.all(a[on] != 0.0)


def test_walk_with_a_constant_controller(world):
    m, _ = world
    z, trading = _bars()
    theta = jnp.zeros(controller.size(Z, H)).at[-1].set(jnp.arctanh(0.5))
    a = np.asarray(_walk(m, theta, z, trading))
    on = np.asarray(trading)
    np.testing.assert_allclose(a[on], 0.5, rtol=1e-6)
    assert np.all(a[~on] == 0.0)


def test_the_dreamed_market_does_not_depend_on_the_controller(world):
    # M reads the flat action (a small trader moves no price): every candidate trades the same market
    k = jax.random.split(jax.random.key(11), 2)
    a = _dreamed(world, 0.5 * jax.random.normal(k[0], (controller.size(Z, H),)), 0)
    b = _dreamed(world, 0.5 * jax.random.normal(k[1], (controller.size(Z, H),)), 0)
    np.testing.assert_array_equal(np.asarray(a.returns), np.asarray(b.returns))
    np.testing.assert_array_equal(np.asarray(a.z), np.asarray(b.z))
    assert not np.array_equal(np.asarray(a.positions), np.asarray(b.positions))
