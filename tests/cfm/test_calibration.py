"""Strate III calibration: randomised PIT, coverages, spread recalibration, CRPS skill bootstrap."""

from __future__ import annotations

import numpy as np
import pytest

from strates.cfm import calibration as cal
from strates.cfm.metrics import crps_ensemble


def _gauss_ensemble(rng, s, n, spread):
    """Obs ~ N(mu_s, sigma_s^2) and `n` members ~ N(mu_s, (spread * sigma_s)^2) per state."""
    mu = rng.normal(0.0, 3.0, s)
    sigma = rng.uniform(0.5, 2.0, s)
    obs = mu + sigma * rng.standard_normal(s)
    samples = mu[:, None] + spread * sigma[:, None] * rng.standard_normal((s, n))
    return samples, obs


def _ks_uniform(u):
    """Kolmogorov-Smirnov distance of `u` to Uniform(0, 1)."""
    u = np.sort(u)
    k = np.arange(1, u.size + 1)
    return float(max(np.max(k / u.size - u), np.max(u - (k - 1) / u.size)))


def test_pit_matches_formula_and_lies_strictly_inside():
    x = np.array([[0.0, 1.0, 2.0, 3.0], [1.0, 1.0, 1.0, 5.0], [2.0, 2.0, 2.0, 2.0]])
    y = np.array([1.5, 1.0, -1.0])
    got = cal.pit(x, y, rng=np.random.default_rng(3))
    u = (np.random.default_rng(3).integers(0, 2**52, size=3) + 0.5) / 2.0**52
    # below/ties: (2, 0), (0, 3), (0, 0); N + 1 = 5
    np.testing.assert_allclose(got, [(2 + u[0]) / 5, (4 * u[1]) / 5, u[2] / 5])
    # all members equal to obs: PIT = U, any value in (0, 1)
    p = cal.pit(np.zeros((50_000, 3)), np.zeros(50_000), rng=np.random.default_rng(0))
    assert p.min() > 0.0 and p.max() < 1.0
    assert _ks_uniform(p) < 0.01
    with pytest.raises(ValueError, match=r"samples \[S, N\]"):
        cal.pit(np.zeros((3, 4)), np.zeros(4), rng=np.random.default_rng(0))


def test_pit_of_calibrated_ensemble_is_uniform():
    rng = np.random.default_rng(0)
    x, y = _gauss_ensemble(rng, 20_000, 39, 1.0)
    p = cal.pit(x, y, rng=rng)
    assert p.shape == (20_000,)
    hist = np.array(cal.pit_histogram(p))
    np.testing.assert_allclose(hist, 1.0, atol=0.08)
    assert _ks_uniform(p) < 1.63 / np.sqrt(p.size)  # 1% critical value


def test_pit_shapes_of_over_and_under_dispersion():
    rng = np.random.default_rng(1)
    wide = np.array(cal.pit_histogram(cal.pit(*_gauss_ensemble(rng, 10_000, 39, 2.0), rng=rng)))
    narrow = np.array(cal.pit_histogram(cal.pit(*_gauss_ensemble(rng, 10_000, 39, 0.5), rng=rng)))
    # too wide: a hump in the middle; too narrow: a U shape
    assert wide[4:6].mean() > 1.4 and wide[[0, -1]].mean() < 0.5
    assert narrow[[0, -1]].mean() > 2.0 and narrow[4:6].mean() < 0.8


def test_pit_randomisation_makes_discrete_ties_uniform():
    rng = np.random.default_rng(2)
    s, n = 20_000, 9
    obs = rng.poisson(2.0, s).astype(float)
    samples = rng.poisson(2.0, (s, n)).astype(float)  # calibrated, many ties
    p = cal.pit(samples, obs, rng=rng)
    np.testing.assert_allclose(cal.pit_histogram(p), 1.0, atol=0.08)
    # without the tie-breaking (ties counted as below) the histogram is far from flat
    naive = (np.count_nonzero(samples <= obs[:, None], axis=1) + 0.5) / (n + 1)
    assert max(abs(h - 1.0) for h in cal.pit_histogram(naive)) > 0.5


def test_pit_histogram_densities():
    grid = (np.arange(1000) + 0.5) / 1000
    assert cal.pit_histogram(grid) == pytest.approx((1.0,) * 10)
    assert cal.pit_histogram(np.full(8, 0.05), bins=5) == pytest.approx((5.0, 0.0, 0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cal.pit_histogram([0.2, 1.2])


def test_coverages_calibrated_and_too_wide():
    rng = np.random.default_rng(4)
    x, y = _gauss_ensemble(rng, 8_000, 200, 1.0)
    cov = cal.coverages(x, y)
    assert len(cov) == len(cal.LEVELS)
    np.testing.assert_allclose(cov, cal.LEVELS, atol=0.025)
    wide = cal.coverages(cal.widen(x, 2.0), y)
    assert all(c > level + 0.04 for c, level in zip(wide, cal.LEVELS, strict=True))


def test_calibration_record():
    rng = np.random.default_rng(5)
    x, y = _gauss_ensemble(rng, 4_000, 64, 1.0)
    c = cal.calibration(x, y, horizon=4, rng=np.random.default_rng(0), bins=5)
    assert c.horizon == 4 and c.states == 4_000
    assert c.levels == cal.LEVELS and len(c.pit) == 5
    assert c.at(0.9) == cal.coverages(x, y)[2]
    assert abs(c.at(0.5) - 0.5) < 0.04
    assert sum(c.pit) / 5 == pytest.approx(1.0)
    with pytest.raises(KeyError, match=r"level 0\.7"):
        c.at(0.7)


@pytest.mark.parametrize("shape", [(50, 40), (50, 40, 6)])
def test_widen_keeps_mean_and_scales_std(shape):
    x = np.random.default_rng(6).normal(1.0, 2.0, shape)
    w = cal.widen(x, 1.7)
    np.testing.assert_allclose(w.mean(axis=1), x.mean(axis=1), atol=1e-12)
    np.testing.assert_allclose(w.std(axis=1), 1.7 * x.std(axis=1), rtol=1e-12)
    if len(shape) == 3:  # each path's deviation from the mean path is scaled; commutes with cumsum
        np.testing.assert_allclose(np.cumsum(w, axis=2), cal.widen(np.cumsum(x, axis=2), 1.7), atol=1e-12)
    np.testing.assert_allclose(cal.widen(x, 1.0), x, atol=1e-12)
    with pytest.raises(ValueError, match="factor"):
        cal.widen(x, -1.0)


def _gauss_optimum(r, n):
    """CRPS-optimal factor for a Gaussian ensemble of `n` members with true/ensemble std ratio `r`."""
    return np.sqrt((r * r + 1 / n) / ((1 - 1 / n) * (1 - 2 / n)))


def test_fit_spread_small_ensembles_follow_the_finite_n_optimum():
    for spread in (0.5, 1.0, 2.0):
        x, y = _gauss_ensemble(np.random.default_rng(17), 10_000, 8, spread)
        assert cal.fit_spread(x, y) == pytest.approx(_gauss_optimum(1 / spread, 8), rel=0.03)


@pytest.mark.parametrize(("spread", "expected"), [(0.5, 2.0), (2.0, 0.5), (1.0, 1.0)])
def test_fit_spread_recovers_the_missing_factor(spread, expected):
    # N large enough that the finite-N excess (`_gauss_optimum`, ~1.6% at N = 128) stays within the tolerance
    x, y = _gauss_ensemble(np.random.default_rng(7), 4_000, 128, spread)
    f = cal.fit_spread(x, y)
    assert f == pytest.approx(expected, rel=0.05)


def test_fit_spread_minimises_the_fair_crps():
    x, y = _gauss_ensemble(np.random.default_rng(8), 500, 16, 0.7)
    f = cal.fit_spread(x, y)

    def loss(v):
        return crps_ensemble(cal.widen(x, v), y).mean()

    fine = np.linspace(0.5 * f, 1.5 * f, 201)
    losses = np.array([loss(v) for v in fine])
    assert loss(f) <= losses.min() + 1e-9  # the refined factor is at least as good as any fine-grid point
    assert abs(fine[np.argmin(losses)] - f) <= 0.5 * f / 200 + 1e-9
    assert cal.fit_spread(x, y, refine=False) in np.geomspace(0.25, 4.0, 17)
    assert cal.fit_spread(x, y, grid=[1.0, 1.1]) == pytest.approx(1.1)  # stays in the grid's range


def test_fit_spread_on_paths_averages_cumulative_horizons():
    rng = np.random.default_rng(9)
    s, n, h = 2_000, 64, 5
    sigma = rng.uniform(0.5, 2.0, s)[:, None]
    obs = sigma * rng.standard_normal((s, h))
    paths = 0.5 * sigma[:, None, :] * rng.standard_normal((s, n, h))  # half the true std
    f_cum = cal.fit_spread(np.cumsum(paths, axis=2), np.cumsum(obs, axis=1))
    assert f_cum == pytest.approx(_gauss_optimum(2.0, n), rel=0.04)
    assert cal.fit_spread(paths, obs, cumulate=True) == pytest.approx(f_cum, rel=1e-5)
    with pytest.raises(ValueError, match=r"\[S, N, H\]"):
        cal.fit_spread(paths, obs[:, :-1])


def test_skill_of_identical_scores_is_zero():
    base = np.random.default_rng(10).gamma(2.0, 1.0, 300)
    sk = cal.skill(base, base, replicates=200)
    assert sk.value == 0.0 and sk.lo <= 0.0 <= sk.hi and not sk.shown
    assert sk.dates == 300 and sk.replicates == 200


def test_skill_of_a_better_model():
    rng = np.random.default_rng(11)
    base = rng.gamma(2.0, 1.0, 500)
    exact = cal.skill(0.9 * base, base, replicates=200)
    assert exact.value == pytest.approx(0.1) and exact.lo == pytest.approx(0.1) and exact.hi == pytest.approx(0.1)
    noisy = cal.skill(0.9 * base * rng.uniform(0.9, 1.1, 500), base)
    assert noisy.value == pytest.approx(0.1, abs=0.01)
    assert 0.0 < noisy.lo < noisy.value < noisy.hi and noisy.hi - noisy.lo < 0.03 and noisy.shown
    assert cal.skill(0.9 * base * rng.uniform(0.9, 1.1, 500), base, seed=1) != noisy  # seeded
    assert cal.skill(base, 0.9 * base, replicates=100).value == pytest.approx(1 - 1 / 0.9)


def test_skill_interval_widens_for_autocorrelated_differences():
    rng = np.random.default_rng(12)
    t, phi = 2_000, 0.9
    eps = rng.standard_normal(t)
    ar = np.empty(t)
    ar[0] = eps[0]
    for i in range(1, t):
        ar[i] = phi * ar[i - 1] + np.sqrt(1 - phi**2) * eps[i]
    base = np.full(t, 1.0)
    iid = cal.skill(1.0 + 0.1 * rng.standard_normal(t), base)
    auto = cal.skill(1.0 + 0.1 * ar, base)
    assert iid.block < 3.0 and auto.block > 10.0
    auto_iid = cal.skill(1.0 + 0.1 * ar, base, block=1.0)
    assert auto.block > 1.0 and auto_iid.block == 1.0
    assert (auto.hi - auto.lo) > 2.0 * (auto_iid.hi - auto_iid.lo)
    assert (auto.hi - auto.lo) > 2.0 * (iid.hi - iid.lo)


def test_skill_groups_states_by_date():
    rng = np.random.default_rng(13)
    n_dates, assets = 120, 4
    shock = np.repeat(rng.standard_normal(n_dates), assets)  # common to the assets of a date
    base = rng.gamma(3.0, 1.0, n_dates * assets)
    model = base * (0.9 + 0.1 * shock + 0.02 * rng.standard_normal(n_dates * assets))
    days = np.repeat(np.datetime64("2024-01-01") + np.arange(n_dates), assets)
    grouped = cal.skill(model, base, dates=days, seed=3)
    # equal to bootstrapping the per-date sums, one state per date
    per_m = model.reshape(n_dates, assets).sum(axis=1)
    per_b = base.reshape(n_dates, assets).sum(axis=1)
    agg = cal.skill(per_m, per_b, seed=3)
    assert grouped.dates == agg.dates == n_dates and grouped.block == pytest.approx(agg.block)
    assert (grouped.value, grouped.lo, grouped.hi) == pytest.approx((agg.value, agg.lo, agg.hi), rel=1e-12)
    # the order of the states does not matter, only their dates
    perm = rng.permutation(n_dates * assets)
    shuffled = cal.skill(model[perm], base[perm], dates=days[perm], seed=3)
    assert (shuffled.value, shuffled.lo, shuffled.hi) == pytest.approx((grouped.value, grouped.lo, grouped.hi))
    # ignoring the dates treats correlated assets as independent: a narrower (overconfident) interval
    loose = cal.skill(model, base, seed=3, block=1.0)
    tight = cal.skill(model, base, dates=days, seed=3, block=1.0)
    assert (tight.hi - tight.lo) > 1.5 * (loose.hi - loose.lo)


def test_skill_input_checks():
    with pytest.raises(ValueError, match="one length"):
        cal.skill(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="dates"):
        cal.skill(np.ones(5), np.ones(5), dates=np.arange(4))
    few = cal.skill(np.array([1.0, 2.0]), np.array([2.0, 2.0]))
    assert few.lo == few.hi == few.value == pytest.approx(0.25)
