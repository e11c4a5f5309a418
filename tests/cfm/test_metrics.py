"""Strate III scores (CRPS, energy score, coverage, Vendi, effective modes) and baselines."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from strates.cfm import baselines, metrics


def _crps_brute(x, y, fair=True):
    n = x.shape[1]
    skill = np.abs(x - y[:, None]).mean(axis=1)
    pairs = np.abs(x[:, :, None] - x[:, None, :]).sum(axis=(1, 2))
    return skill - pairs / (2 * n * (n - 1) if fair else 2 * n * n)


def _crps_gauss(mu, sigma, y):
    from scipy.stats import norm
    z = (y - mu) / sigma
    return sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))


def test_crps_point_ensemble_at_obs_is_zero():
    y = np.array([0.3, -1.2, 5.0])
    x = np.repeat(y[:, None], 7, axis=1)
    np.testing.assert_allclose(metrics.crps_ensemble(x, y), 0.0, atol=1e-12)
    np.testing.assert_allclose(metrics.crps_ensemble(x[:, :1], y), 0.0, atol=1e-12)


@pytest.mark.parametrize("fair", [True, False])
def test_crps_matches_brute_force(fair):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 13)) * rng.uniform(0.1, 3, (20, 1))
    y = rng.standard_normal(20)
    np.testing.assert_allclose(metrics.crps_ensemble(x, y, fair=fair), _crps_brute(x, y, fair), rtol=1e-10, atol=1e-12)


def test_crps_gaussian_closed_form():
    rng = np.random.default_rng(1)
    mu, sigma = 0.5, 2.0
    y = np.array([-3.0, 0.0, 0.5, 1.7, 6.0])
    x = mu + sigma * rng.standard_normal((y.size, 20000))
    np.testing.assert_allclose(metrics.crps_ensemble(x, y), _crps_gauss(mu, sigma, y), rtol=0.02)


def test_fair_crps_is_unbiased_for_small_ensembles():
    # The mean fair score of 5-member ensembles from F equals CRPS(F, y); the plug-in one is too big.
    rng = np.random.default_rng(2)
    y = np.full(40000, 0.7)
    x = rng.standard_normal((y.size, 5))
    truth = _crps_gauss(0.0, 1.0, 0.7)
    assert abs(metrics.crps_ensemble(x, y).mean() - truth) < 0.01
    assert metrics.crps_ensemble(x, y, fair=False).mean() - truth > 0.05


def test_energy_score_equals_crps_in_one_dimension():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((9, 11))
    y = rng.standard_normal(9)
    for fair in (True, False):
        np.testing.assert_allclose(metrics.energy_score(x[:, :, None], y[:, None], fair=fair),
                                   metrics.crps_ensemble(x, y, fair=fair), rtol=1e-10, atol=1e-12)


def test_energy_score_brute_force_and_chunking(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 8, 3))
    y = rng.standard_normal((6, 3))
    n = 8
    skill = np.linalg.norm(x - y[:, None], axis=-1).mean(axis=1)
    pairs = np.linalg.norm(x[:, :, None] - x[:, None], axis=-1).sum(axis=(1, 2)) / (2 * n * (n - 1))
    full = metrics.energy_score(x, y)
    np.testing.assert_allclose(full, skill - pairs, rtol=1e-10)
    monkeypatch.setattr(metrics, "_PAIR_BUDGET", 1)  # one state per chunk
    np.testing.assert_allclose(metrics.energy_score(x, y), full, rtol=1e-12)
    assert metrics.energy_score(np.repeat(y[:, None], 4, axis=1), y) == pytest.approx(np.zeros(6), abs=1e-12)


def test_coverage_of_calibrated_samples():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4000, 200))
    y = rng.standard_normal(4000)
    assert metrics.coverage(x, y, 0.5) == pytest.approx(0.5, abs=0.03)
    assert metrics.coverage(x, y, 0.9) == pytest.approx(0.9, abs=0.03)
    assert metrics.coverage(0.1 * x, y, 0.9) < 0.3  # overconfident
    with pytest.raises(ValueError, match="level must be in"):
        metrics.coverage(x, y, 1.0)


@pytest.mark.parametrize("n", [4, 8, 32])
def test_coverage_is_nominal_for_a_calibrated_ensemble_of_any_size(n):
    # sample quantiles of n draws give intervals that are too narrow (the range of 8 draws covers
    # a new draw 7/9 of the time); the rank-based coverage does not depend on n
    rng = np.random.default_rng(n)
    x = rng.standard_normal((40000, n))
    y = rng.standard_normal(40000)
    for level in (0.5, 0.8, 0.9, 0.95):
        assert metrics.coverage(x, y, level) == pytest.approx(level, abs=0.01)
    quantiles = np.quantile(x, [0.05, 0.95], axis=1)
    assert np.mean((y >= quantiles[0]) & (y <= quantiles[1])) < 0.87  # what the quantile rule would report
    # exact on a hand-made case: y is the 2nd smallest of 4 draws + itself -> PIT uniform on [1/5, 2/5]
    assert metrics.coverage(np.array([[0.0, 2.0, 3.0, 4.0]]), np.array([1.0]), 0.5) == pytest.approx(0.75)
    # ties: y equal to all 3 draws -> PIT uniform on [0, 1]
    assert metrics.coverage(np.zeros((1, 3)), np.zeros(1), 0.9) == pytest.approx(0.9)


def test_path_scores_per_horizon():
    from strates.core.config import to_dict

    rng = np.random.default_rng(6)
    x = 0.01 * rng.standard_normal((30, 16, 8))
    y = 0.01 * rng.standard_normal((30, 8))
    out = metrics.path_scores(x, y)
    assert [h.horizon for h in out.horizons] == [1, 4, 8]  # 12 > H dropped, H added
    for h in (1, 4, 8):
        assert out.at(h).crps == pytest.approx(
            float(metrics.crps_ensemble(x[:, :, :h].sum(-1), y[:, :h].sum(-1)).mean()))
        assert 0.0 <= out.at(h).cov50 <= out.at(h).cov90 <= 1.0
    with pytest.raises(KeyError, match="no horizon 2"):
        out.at(2)
    assert out.energy_score == pytest.approx(float(metrics.energy_score(x, y).mean()))
    assert (out.states, out.samples) == (30, 16)
    plain = to_dict(out)
    json.dumps(plain)
    assert all(type(v) in (float, int) for row in plain["horizons"] for v in row.values())


def test_vendi_and_effective_modes():
    assert metrics.vendi_score(np.ones((10, 3))) == pytest.approx(1.0)
    far = 100.0 * np.eye(7)
    assert metrics.vendi_score(far, bandwidth=1.0) == pytest.approx(7.0, rel=1e-6)
    # Two tight, distant clusters: about 2 with the median heuristic.
    rng = np.random.default_rng(7)
    two = np.concatenate([rng.normal(0, 1e-3, (20, 2)), rng.normal(50, 1e-3, (20, 2))])
    assert metrics.vendi_score(two, bandwidth=1.0) == pytest.approx(2.0, rel=1e-3)
    assert 1.0 <= metrics.vendi_score(rng.standard_normal((50, 4))) <= 50.0

    d = 6
    assert metrics.effective_modes(rng.standard_normal((20000, d))) == pytest.approx(d, rel=0.02)
    line = np.outer(rng.standard_normal(100), rng.standard_normal(d))
    assert metrics.effective_modes(line) == pytest.approx(1.0, rel=1e-6)
    assert metrics.effective_modes(np.zeros((5, 3))) == 1.0


# ---------------------------------------------------------------- baselines

def test_bootstrap_paths_shape_and_values():
    hist = np.arange(10, dtype=float)
    p = baselines.bootstrap_paths(hist, n=50, horizon=7, seed=0)
    assert p.shape == (50, 7) and set(np.unique(p)) <= set(hist)
    pb = baselines.bootstrap_paths(hist, n=50, horizon=7, seed=0, block=3)
    assert pb.shape == (50, 7)
    # Blocks are runs of consecutive past returns.
    np.testing.assert_array_equal(np.diff(pb[:, :3], axis=1), 1.0)
    np.testing.assert_array_equal(np.diff(pb[:, 3:6], axis=1), 1.0)
    np.testing.assert_array_equal(baselines.bootstrap_paths(hist, n=50, horizon=7, seed=0), p)


@pytest.mark.parametrize(("block", "window"), [(1, None), (4, None), (3, 5), (6, 2)])
def test_bootstrap_for_states_uses_only_the_past(block, window):
    r = np.arange(100, dtype=float)  # value == time index
    times = np.array([0, 3, 10, 50, 99])
    p = baselines.bootstrap_for_states(r, times, n=64, horizon=9, window=window, seed=1, block=block)
    assert p.shape == (5, 64, 9)
    lo = np.zeros(5) if window is None else np.maximum(0, times + 1 - window)
    assert np.all(p <= times[:, None, None]) and np.all(p >= lo[:, None, None])
    # Changing returns after t changes nothing for time t.
    r2 = r.copy()
    r2[51:] = -1e9
    p2 = baselines.bootstrap_for_states(r2, times, n=64, horizon=9, window=window, seed=1, block=block)
    np.testing.assert_array_equal(p2[:4], p[:4])
    assert p[3].max() == 50 or window is not None  # the latest observed return can be drawn


def test_gaussian_rw_uses_only_the_past():
    rng = np.random.default_rng(8)
    r = rng.standard_normal(300) * np.linspace(0.1, 2.0, 300)
    times = np.array([1, 5, 40, 200, 299])
    p = baselines.gaussian_rw_paths(r, times, n=4000, horizon=6, vol_window=24, seed=2)
    assert p.shape == (5, 4000, 6)
    vol = baselines.trailing_vol(r, times, vol_window=24)
    expect = [np.std(r[max(0, t - 23):t + 1], ddof=1) for t in times]
    np.testing.assert_allclose(vol, expect, rtol=1e-12)
    np.testing.assert_allclose(p.std(axis=(1, 2)), vol, rtol=0.05)
    assert np.abs(p.mean(axis=(1, 2))).max() < 0.1 * vol.max()
    r2 = r.copy()
    r2[201:] *= 100.0
    p2 = baselines.gaussian_rw_paths(r2, times, n=4000, horizon=6, vol_window=24, seed=2)
    np.testing.assert_array_equal(p2[:4], p[:4])
    assert not np.allclose(p2[4], p[4])
    with pytest.raises(ValueError, match="at least 2 observed returns"):
        baselines.gaussian_rw_paths(r, np.array([0]), n=2, horizon=2)
    with pytest.raises(ValueError, match="times must lie in"):
        baselines.bootstrap_for_states(r, np.array([300]), n=2, horizon=2)
