"""The trading environment: per-bar accounting by hand (accounting.rollout, step and
path_rewards agree), the causal trailing volatility, and the CVaR on known distributions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from strates.agent.env import bps, cvar, path_rewards, step, trailing_vol
from strates.core.accounting import rollout as rollout_np

# 2 assets x 4 bars. Row t: the position chosen at bar t (held over the next bar) and that
# next bar's simple return. Out-of-range positions are clipped to [-1, 1].
POSITIONS = np.array([[0.5, -1.0],
                      [1.0, -2.0],   # asset 1: -2.0 -> -1.0
                      [1.5, 0.0],    # asset 0: 1.5 -> 1.0
                      [-0.5, 0.25]])
RETURNS = np.array([[0.01, 0.02],
                    [-0.02, -0.01],
                    [0.03, 0.05],
                    [0.01, -0.04]])
COST = 10e-4  # 10 bps per side
# Asset 0: clipped positions 0.5, 1, 1, -0.5; previous 0 (flat), 0.5, 1, 1
#   |Δ| = 0.5, 0.5, 0, 1.5            -> costs 0.0005, 0.0005, 0, 0.0015
#   gross = 0.5*0.01, 1*-0.02, 1*0.03, -0.5*0.01 = 0.005, -0.02, 0.03, -0.005
#   net = 0.0045, -0.0205, 0.03, -0.0065
# Asset 1: clipped positions -1, -1, 0, 0.25; previous 0 (flat), -1, -1, 0
#   |Δ| = 1, 0, 1, 0.25               -> costs 0.001, 0, 0.001, 0.00025
#   gross = -1*0.02, -1*-0.01, 0*0.05, 0.25*-0.04 = -0.02, 0.01, 0, -0.01
#   net = -0.021, 0.01, -0.001, -0.01025
HAND_COSTS = np.array([[0.0005, 0.001],
                       [0.0005, 0.0],
                       [0.0, 0.001],
                       [0.0015, 0.00025]])
HAND_PNL = np.array([[0.0045, -0.021],
                     [-0.0205, 0.01],
                     [0.03, -0.001],
                     [-0.0065, -0.01025]])


def test_bps():
    assert bps(10) == pytest.approx(COST)
    assert bps(5) == pytest.approx(0.0005)


def test_rollout_np_by_hand():
    pnl, costs = rollout_np(POSITIONS, RETURNS, cost=COST)
    np.testing.assert_allclose(costs, HAND_COSTS, rtol=0, atol=1e-15)
    np.testing.assert_allclose(pnl, HAND_PNL, rtol=0, atol=1e-15)
    # totals: asset 0 0.0075, asset 1 -0.02225
    np.testing.assert_allclose(pnl.sum(0), [0.0075, -0.02225], atol=1e-15)


def test_rollout_np_start_position():
    # starting long 1 in asset 0 and short 1 in asset 1: the first bar's costs become
    # |0.5 - 1| * 0.001 = 0.0005 and |-1 - (-1)| * 0.001 = 0; the rest is unchanged
    pnl, costs = rollout_np(POSITIONS, RETURNS, cost=COST, position0=np.array([1.0, -1.0]))
    np.testing.assert_allclose(costs[0], [0.0005, 0.0], atol=1e-15)
    np.testing.assert_allclose(pnl[0], [0.0045, -0.02], atol=1e-15)
    np.testing.assert_allclose(pnl[1:], HAND_PNL[1:], atol=1e-15)


def test_step_iterated_matches_hand():
    position = jnp.zeros(2)
    rewards, held = [], []
    for t in range(4):
        r, position = step(position, jnp.asarray(POSITIONS[t], jnp.float32), jnp.asarray(RETURNS[t], jnp.float32),
                           cost=COST)
        rewards.append(np.asarray(r))
        held.append(np.asarray(position))
    np.testing.assert_allclose(np.stack(rewards), HAND_PNL, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(np.stack(held), np.clip(POSITIONS, -1, 1))  # clipped positions are carried


def test_path_rewards_matches_hand_and_rollout():
    # path_rewards works on [..., H] (time last): assets lead
    out = path_rewards(jnp.asarray(POSITIONS.T, jnp.float32), jnp.asarray(RETURNS.T, jnp.float32), jnp.zeros(2),
                       cost=COST)
    np.testing.assert_allclose(np.asarray(out).T, HAND_PNL, rtol=1e-5, atol=1e-7)
    pnl, _ = rollout_np(POSITIONS, RETURNS, cost=COST)
    np.testing.assert_allclose(np.asarray(out).T, pnl, rtol=1e-5, atol=1e-7)


def test_path_rewards_broadcasts_leading_dims():
    # [B=2, S=3, N=1, H=4] candidates against [B, 1, N=5, H] returns, position [B, 1, 1]
    key = jax.random.key(0)
    cands = jax.random.uniform(key, (2, 3, 1, 4), minval=-1.5, maxval=1.5)
    rets = 0.01 * jax.random.normal(jax.random.fold_in(key, 1), (2, 1, 5, 4))
    pos = jnp.array([0.2, -0.6])[:, None, None]
    out = np.asarray(path_rewards(cands, rets, pos, cost=COST))
    assert out.shape == (2, 3, 5, 4)
    for b in range(2):
        for s in range(3):
            for n in range(5):
                pnl, _ = rollout_np(np.asarray(cands[b, s, 0])[:, None], np.asarray(rets[b, 0, n])[:, None], cost=COST,
                                    position0=float(pos[b, 0, 0]))
                np.testing.assert_allclose(out[b, s, n], pnl[:, 0], rtol=1e-5, atol=1e-7)


def test_step_clips_and_scales_pnl_only():
    # action 3 -> 1; reward = 1 * 0.02 / 2 - 0.001 * |1 - (-0.5)| = 0.01 - 0.0015 = 0.0085
    r, p = step(jnp.array(-0.5), jnp.array(3.0), jnp.array(0.02), cost=COST, scale=2.0)
    assert float(p) == 1.0
    assert float(r) == pytest.approx(0.0085, rel=1e-6)
    # action -7 -> -1 from flat, no return: pure cost 0.001
    r, p = step(jnp.array(0.0), jnp.array(-7.0), jnp.array(0.0), cost=COST)
    assert float(p) == -1.0
    assert float(r) == pytest.approx(-0.001, rel=1e-6)


# --- trailing volatility -------------------------------------------------------------------


def _vol_reference(r, window, floor):
    return np.array([max(np.std(r[max(0, t - window + 1):t + 1]), floor) for t in range(len(r))])


@pytest.mark.parametrize("window", [2, 5, 24])
def test_trailing_vol_equals_window_std(window):
    r = 0.01 * np.random.default_rng(window).standard_normal(60)
    vol = trailing_vol(r, window=window, floor=1e-9)
    assert vol.shape == (60,)
    np.testing.assert_allclose(vol[1:], _vol_reference(r, window, 1e-9)[1:], rtol=1e-7)
    assert vol[0] == 1e-9  # one bar: std 0 -> the floor


def test_trailing_vol_is_causal():
    r = 0.01 * np.random.default_rng(0).standard_normal(50)
    base = trailing_vol(r, window=10, floor=1e-9)
    changed = r.copy()
    changed[30] = 0.5
    after = trailing_vol(changed, window=10, floor=1e-9)
    np.testing.assert_array_equal(after[:30], base[:30])  # the past does not see the future
    assert after[30] > base[30]  # bar 30 is known at decision time 30
    assert np.all(after[30:40] != base[30:40])  # and enters every window that covers it
    np.testing.assert_allclose(after[40:], base[40:], rtol=1e-6)  # then leaves the window


def test_trailing_vol_floor():
    r = 0.01 * np.random.default_rng(1).standard_normal(40)
    np.testing.assert_array_equal(trailing_vol(r, window=8, floor=0.5), np.full(40, 0.5))
    flat = trailing_vol(np.full(30, 0.003), window=8, floor=1e-4)  # constant returns: zero std
    np.testing.assert_allclose(flat, 1e-4, rtol=1e-9)
    vol = trailing_vol(r, window=8, floor=0.008)
    assert vol.min() >= 0.008
    np.testing.assert_allclose(vol, np.maximum(_vol_reference(r, 8, 0.0), 0.008), rtol=1e-7)


# --- CVaR ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def normal_draws():
    return jax.random.normal(jax.random.key(42), (200_000,), jnp.float32)


@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.5])
def test_cvar_standard_normal(normal_draws, alpha):
    exact = -stats.norm.pdf(stats.norm.ppf(alpha)) / alpha  # alpha = 0.05: -2.0627
    assert float(cvar(normal_draws, alpha)) == pytest.approx(exact, rel=0.015)


@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.5, 0.9])
def test_cvar_uniform(alpha):
    u = jax.random.uniform(jax.random.key(7), (200_000,), jnp.float32)
    assert float(cvar(u, alpha)) == pytest.approx(alpha / 2, rel=0.02)


def test_cvar_alpha_one_is_mean():
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    assert float(cvar(x, 1.0)) == 2.5
    y = jax.random.normal(jax.random.key(3), (1000,))
    assert float(cvar(y, 1.0)) == pytest.approx(float(jnp.mean(y)), rel=1e-5, abs=1e-6)


def test_cvar_fractional_tail_by_hand():
    x = jnp.array([4.0, 2.0, 1.0, 3.0])  # unsorted on purpose
    # alpha 0.3 -> tail 0.3 * 4 = 1.2 samples: the worst (1) whole and 0.2 of the next (2)
    assert float(cvar(x, 0.3)) == pytest.approx((1 * 1 + 0.2 * 2) / 1.2, rel=1e-6)
    # alpha 0.5 -> exactly the two worst: (1 + 2) / 2
    assert float(cvar(x, 0.5)) == pytest.approx(1.5, rel=1e-6)
    # alpha 0.6 -> 2.4 samples: (1 + 2 + 0.4 * 3) / 2.4 = 1.75
    assert float(cvar(x, 0.6)) == pytest.approx(1.75, rel=1e-6)
    # a tail below one sample is the minimum
    assert float(cvar(x, 0.1)) == pytest.approx(1.0, rel=1e-6)


def test_cvar_monotone_in_alpha():
    x = jax.random.normal(jax.random.key(5), (37,))
    alphas = np.linspace(0.01, 1.0, 200)
    values = np.array([float(cvar(x, a)) for a in alphas])
    assert np.all(np.diff(values) >= -1e-6)
    assert values[0] == pytest.approx(float(x.min()), rel=1e-6)
    assert values[-1] == pytest.approx(float(x.mean()), rel=1e-4, abs=1e-6)
    assert values[-1] > values[0]


def test_cvar_along_axis():
    x = jax.random.normal(jax.random.key(9), (3, 10, 4))
    alpha = 0.25  # 2.5 samples of 10
    got = np.asarray(cvar(x, alpha, axis=1))
    assert got.shape == (3, 4)
    xs = np.sort(np.asarray(x, np.float64), axis=1)
    expected = (xs[:, 0] + xs[:, 1] + 0.5 * xs[:, 2]) / 2.5
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(cvar(jnp.moveaxis(x, 1, -1), alpha)), got, rtol=1e-6)
    # the default axis is the last one
    np.testing.assert_allclose(np.asarray(cvar(x, alpha)),
                               np.asarray(cvar(x, alpha, axis=2)), rtol=1e-6)
    assert cvar(x, alpha, axis=0).shape == (10, 4)


def test_cvar_traced_alpha_under_jit():
    x = jnp.array([4.0, 2.0, 1.0, 3.0])
    f = jax.jit(cvar)
    assert float(f(x, jnp.float32(0.3))) == pytest.approx(1.4 / 1.2, rel=1e-6)
    assert float(f(x, jnp.float32(1.0))) == pytest.approx(2.5, rel=1e-6)
