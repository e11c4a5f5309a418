"""MPPI planner: finds the optimum of toy objectives (drift, cost, terminal value), CVaR makes
it risk averse, exact interpolation, shift, determinism and warm / prior candidates."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from strates.agent import env, planner

N, H = 16, 3


def _noise(b, seed=1, scale=1e-4):
    return jnp.asarray(scale * np.random.default_rng(seed).standard_normal((b, N, H)), jnp.float32)


# --- the optimum of known objectives -------------------------------------------------------


def test_zero_cost_follows_the_drift():
    # constant drift +1% (asset 0) and -1% (asset 1) per step, tiny noise, no cost: the
    # objective is linear in the positions, maximised at +1 / -1 on every step
    returns = jnp.array([0.01, -0.01])[:, None, None] + _noise(2)
    p = planner.plan(returns, jnp.zeros(2), key=jax.random.key(0), cost=0.0, alpha=1.0)
    np.testing.assert_allclose(np.asarray(p.action), [1.0, -1.0], atol=0.02)
    np.testing.assert_allclose(np.asarray(p.mean), [[1.0] * H, [-1.0] * H], atol=0.05)
    # the best value is 3 steps x 1% (within the noise)
    np.testing.assert_allclose(np.asarray(p.value), [0.03, 0.03], atol=1e-3)


def test_huge_cost_holds_the_position():
    # cost 0.5 per unit traded against a drift of 0.1% a step: any trade loses, hold 0.3
    returns = jnp.array([0.001, -0.001])[:, None, None] + _noise(2)
    p = planner.plan(returns, jnp.full(2, 0.3), key=jax.random.key(0), cost=0.5, alpha=1.0)
    np.testing.assert_allclose(np.asarray(p.action), [0.3, 0.3], atol=0.01)
    # holding is a candidate, so the best value is exactly holding's PnL: +-0.3 * 0.003
    np.testing.assert_allclose(np.asarray(p.value), [0.0009, -0.0009], atol=5e-5)


@pytest.mark.parametrize(("grid", "tol"), [(17, 0.05), (11, 0.01)])
def test_terminal_value_peak(grid, tol):
    # zero returns and cost; V(p) = -(p - 0.4)^2 on the grid: only the last position counts.
    # With 17 points (spacing 0.125) the interpolant peaks at the grid point 0.375; with 11
    # (spacing 0.2) 0.4 is a grid point.
    g = jnp.linspace(-1.0, 1.0, grid)
    values = jnp.broadcast_to(-(g - 0.4) ** 2, (2, N, grid))
    p = planner.plan(jnp.zeros((2, N, H)), jnp.array([0.0, -0.8]), key=jax.random.key(0), cost=0.0, alpha=1.0,
                     gamma=0.9, values=values)
    last = np.asarray(p.mean[:, -1])
    np.testing.assert_allclose(last, [0.4, 0.4], atol=tol)
    if grid == 17:
        np.testing.assert_allclose(last, [0.375, 0.375], atol=0.01)  # the piecewise-linear argmax


# --- risk aversion -------------------------------------------------------------------------


def _heavy_left_tail():
    # 15 futures gain 1.2% a step, 1 future loses 15% a step: mean (15 * 1.2% - 15%) / 16
    # = +0.1875% a step (long pays on average), but the worst 10% (1.6 futures) average
    # (-15% + 0.6 * 1.2%) / 1.6 = -8.925% a step
    r = np.array([0.012] * 15 + [-0.15], np.float32)
    return jnp.asarray(np.broadcast_to(r[None, :, None], (2, N, H)))


def test_cvar_makes_the_planner_risk_averse():
    returns = _heavy_left_tail()
    assert float(returns.mean()) > 0
    neutral = planner.plan(returns, jnp.zeros(2), key=jax.random.key(0), cost=5e-4, alpha=1.0)
    averse = planner.plan(returns, jnp.zeros(2), key=jax.random.key(0), cost=5e-4, alpha=0.1)
    assert np.all(np.asarray(neutral.action) > 0.9)
    assert np.all(np.asarray(averse.action) < 0.05)
    # CVaR_0.1 of a long position of size a on every step: -0.08925 * 3 * a - cost * a < 0;
    # flat is 0 (the held-position candidate), so the best value is 0
    np.testing.assert_allclose(np.asarray(averse.value), 0.0, atol=1e-6)


# --- pieces --------------------------------------------------------------------------------


def test_objective_by_hand():
    # one state, 2 candidates, 3 futures, H = 2, gamma 0.5, values on a 3-point grid
    cands = jnp.array([[[1.0, 0.5], [-0.5, 2.0]]])  # 2.0 is clipped to 1
    # the table's numbers are simple returns; the planner takes log returns
    returns = jnp.log1p(jnp.array([[[0.02, -0.01], [0.0, 0.04], [-0.03, 0.01]]]))
    position = jnp.array([0.0])
    values = jnp.array([[[0.0, 0.1, 0.3], [0.2, 0.0, -0.2], [1.0, 1.0, 1.0]]])  # V at p = -1, 0, 1
    cost, gamma = 0.01, 0.5
    # candidate 0 (1, 0.5): costs 0.01 * 1 and 0.01 * 0.5; last position 0.5
    #   future 0: 0.02 - 0.01 + 0.5 * (-0.005 - 0.005) + 0.25 * 0.2 = 0.055
    #   future 1: 0 - 0.01 + 0.5 * (0.02 - 0.005) + 0.25 * -0.1 = -0.0275
    #   future 2: -0.03 - 0.01 + 0.5 * (0.005 - 0.005) + 0.25 * 1.0 = 0.21
    # candidate 1 (-0.5, 1): costs 0.005 and 0.015; last position 1
    #   future 0: -0.01 - 0.005 + 0.5 * (-0.01 - 0.015) + 0.25 * 0.3 = 0.0475
    #   future 1: 0 - 0.005 + 0.5 * (0.04 - 0.015) + 0.25 * -0.2 = -0.0425
    #   future 2: 0.015 - 0.005 + 0.5 * (0.01 - 0.015) + 0.25 * 1.0 = 0.2575
    totals = np.array([[0.055, -0.0275, 0.21], [0.0475, -0.0425, 0.2575]])
    mean = planner.objective(cands, returns, position, cost=cost, alpha=1.0, gamma=gamma, values=values)
    np.testing.assert_allclose(np.asarray(mean)[0], totals.mean(1), rtol=1e-5)
    worst = planner.objective(cands, returns, position, cost=cost, alpha=1 / 3, gamma=gamma, values=values)
    np.testing.assert_allclose(np.asarray(worst)[0], totals.min(1), rtol=1e-5)
    no_v = planner.objective(cands, returns, position, cost=cost, alpha=1.0, gamma=gamma)
    want = totals.mean(1) - 0.25 * np.array([0.2 - 0.1 + 1.0, 0.3 - 0.2 + 1.0]) / 3
    np.testing.assert_allclose(np.asarray(no_v)[0], want, rtol=1e-5)


def test_interpolate_exact_for_linear():
    rng = np.random.default_rng(3)
    b, n, g = 3, 5, 17
    grid = np.linspace(-1.0, 1.0, g)
    slope = rng.standard_normal((b, n))
    intercept = rng.standard_normal((b, n))
    values = jnp.asarray(intercept[..., None] + slope[..., None] * grid, jnp.float32)  # [B, N, G]
    pos = rng.uniform(-1.0, 1.0, (b, 40))
    pos = np.concatenate([pos, np.broadcast_to([-1.0, 1.0, 0.0, grid[5]], (b, 4))], axis=1)
    got = planner.interpolate(values, jnp.asarray(pos, jnp.float32))
    assert got.shape == (b, 44, n)
    expected = intercept[:, None, :] + slope[:, None, :] * pos[..., None]
    np.testing.assert_allclose(np.asarray(got), expected, atol=2e-5)
    # outside [-1, 1] the position is clipped: the end values
    out = planner.interpolate(values, jnp.broadcast_to(jnp.array([-3.0, 2.5]), (b, 2)))
    np.testing.assert_allclose(np.asarray(out[:, 0]), np.asarray(values[..., 0]), atol=1e-6)
    np.testing.assert_allclose(np.asarray(out[:, 1]), np.asarray(values[..., -1]), atol=1e-6)


def test_interpolate_between_grid_points():
    # a kinked (non-linear) grid: linear between neighbours, exact on the points
    values = jnp.array([[[0.0, 1.0, -1.0]]])  # at p = -1, 0, 1
    got = planner.interpolate(values, jnp.array([[-1.0, -0.5, 0.0, 0.25, 1.0]]))
    np.testing.assert_allclose(np.asarray(got)[0, :, 0], [0.0, 0.5, 1.0, 0.5, -1.0], atol=1e-6)


def test_shift():
    mean = jnp.array([[0.1, 0.2, 0.3], [-1.0, 0.0, 1.0]])
    want = np.array([[0.2, 0.3, 0.3], [0.0, 1.0, 1.0]], np.float32)
    np.testing.assert_array_equal(np.asarray(planner.shift(mean)), want)
    np.testing.assert_array_equal(np.asarray(planner.shift(jnp.array([[0.7]]))), np.array([[0.7]], np.float32))


# --- determinism, warm start, prior --------------------------------------------------------


def test_same_key_same_plan():
    returns = jnp.asarray(0.01 * np.random.default_rng(11).standard_normal((2, N, H)), jnp.float32)
    grid = jnp.linspace(-1.0, 1.0, 9)
    values = jnp.broadcast_to(-0.05 * (grid - 0.3) ** 2, (2, N, 9))  # an interior optimum: the mean is key-dependent
    kw = {"cost": 5e-4, "alpha": 0.2, "gamma": 0.9, "values": values}
    a = planner.plan(returns, jnp.zeros(2), key=jax.random.key(5), **kw)
    b = planner.plan(returns, jnp.zeros(2), key=jax.random.key(5), **kw)
    c = planner.plan(returns, jnp.zeros(2), key=jax.random.key(6), **kw)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert not np.array_equal(np.asarray(a.mean), np.asarray(c.mean))  # another key, other candidates


def test_warm_start_is_used():
    # one iteration with a tiny std leaves the mean where it started: the warm start (which
    # the returns favour over holding, so the no-trade rule keeps it), or the position
    warm = jnp.array([[0.7, 0.2, -0.3], [-0.4, 0.9, 0.0]])
    position = jnp.array([0.0, 0.5])
    drift = jnp.broadcast_to(jnp.array([[0.01, 0.01, -0.01], [-0.01, 0.01, 0.0]])[:, None], (2, N, H))
    kw = {"key": jax.random.key(0), "cost": 0.0, "alpha": 1.0, "iterations": 1, "min_std": 1e-3, "max_std": 1e-3}
    p = planner.plan(drift, position, warm=warm, **kw)
    np.testing.assert_allclose(np.asarray(p.mean), np.asarray(warm), atol=5e-3)
    np.testing.assert_allclose(np.asarray(p.action), [0.7, -0.4], atol=5e-3)
    cold = planner.plan(jnp.zeros((2, N, H)), position, **kw)
    np.testing.assert_allclose(np.asarray(cold.mean), [[0.0] * H, [0.5] * H], atol=5e-3)
    # a warm start outside [-1, 1] is clipped
    far = planner.plan(jnp.zeros((2, N, H)), position, warm=jnp.full((2, H), 4.0), **kw)
    assert float(far.mean.max()) <= 1.0


def test_prior_candidates_are_scored():
    # drift +1%: the Gaussian candidates sit near -1 (warm, tiny std), the prior holds the
    # optimum (5 is clipped to 1): after one iteration the best value is the prior's 3%
    returns = 0.01 + _noise(2)
    kw = {"key": jax.random.key(0), "cost": 0.0, "alpha": 1.0, "iterations": 1, "min_std": 1e-3, "max_std": 1e-3,
              "warm": jnp.full((2, H), -1.0)}
    without = planner.plan(returns, jnp.zeros(2), **kw)
    np.testing.assert_allclose(np.asarray(without.value), 0.0, atol=1e-3)  # holding flat is the best there
    prior = jnp.array([[[5.0, 5.0, 5.0], [-1.0, -1.0, -1.0]], [[-1.0, -1.0, -1.0], [0.5, 0.5, 0.5]]])
    with_prior = planner.plan(returns, jnp.zeros(2), prior=prior, **kw)
    np.testing.assert_allclose(np.asarray(with_prior.value), [0.03, 0.015], atol=1e-3)


def test_too_few_gaussian_candidates():
    with pytest.raises(ValueError, match="fewer than elites"):
        planner.plan(jnp.zeros((1, N, H)), jnp.zeros(1), key=jax.random.key(0), cost=0.0, alpha=1.0,
                     prior=jnp.zeros((1, 10, H)), samples=20, elites=16)


def test_plan_stays_in_bounds():
    returns = _heavy_left_tail()  # risk-neutral: every elite is pinned at +1
    p = planner.plan(returns, jnp.zeros(2), key=jax.random.key(1), cost=5e-4, alpha=1.0)
    assert float(jnp.abs(p.mean).max()) <= 1.0
    assert float(jnp.abs(p.action).max()) <= 1.0


def test_objective_is_the_environments_pnl():
    # the planner's fast form (a contraction over the horizon, costs per candidate) must
    # give exactly the environment's rewards: with alpha = 1 and gamma = 1 it is their mean
    rng = np.random.default_rng(3)
    cands = jnp.asarray(rng.uniform(-1.2, 1.2, (2, 7, H)), jnp.float32)
    returns = jnp.asarray(0.01 * rng.standard_normal((2, N, H)), jnp.float32)
    position = jnp.array([0.3, -0.5])
    got = planner.objective(cands, returns, position, cost=1e-3, alpha=1.0, gamma=1.0)
    rewards = env.path_rewards(cands[:, :, None], jnp.expm1(returns)[:, None], position[:, None, None], cost=1e-3)
    np.testing.assert_allclose(np.asarray(got), np.asarray(rewards.sum(-1).mean(-1)), rtol=1e-5, atol=1e-7)
    worst = planner.objective(cands, returns, position, cost=1e-3, alpha=1 / N, gamma=1.0)
    np.testing.assert_allclose(np.asarray(worst), np.asarray(rewards.sum(-1).min(-1)), rtol=1e-5, atol=1e-7)
