"""Strate III GARCH(1,1)-t baseline: fit, filter, causal refits, simulated paths, calibration."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest
from scipy.special import stdtrit

from strates.cfm import baselines, garch, metrics

# Raw units of ~1e-2: unconditional variance omega / (1 - alpha - beta) = 1e-4.
TRUE = {"mu": 2e-4, "omega": 2e-6, "alpha": 0.08, "beta": 0.90, "nu": 6.0}


def _simulate(t_len: int, *, mu, omega, alpha, beta, nu, seed: int) -> np.ndarray:
    """A GARCH(1,1)-t series of t_len returns, started at the unconditional variance."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(nu, t_len) * np.sqrt((nu - 2.0) / nu)
    r = np.empty(t_len)
    v = omega / (1.0 - alpha - beta)
    for i in range(t_len):
        e = np.sqrt(v) * z[i]
        r[i] = mu + e
        v = omega + alpha * e * e + beta * v
    return r


@pytest.fixture(scope="module")
def series() -> np.ndarray:
    return _simulate(20_000, **TRUE, seed=0)


def _loop_variance(r, fit: garch.GarchFit, upto: int) -> float:
    v = np.mean((r[fit.start:fit.end] - fit.mu) ** 2)
    for i in range(fit.start, upto + 1):
        v = fit.omega + fit.alpha * (r[i] - fit.mu) ** 2 + fit.beta * v
    return float(v)


def _z(seed, shape, nu):
    """The unit-variance t draws garch_t_paths makes from `seed` (per-state nu [S])."""
    u = np.maximum(np.random.default_rng(seed).random(shape), 2.0**-54)
    nu = np.asarray(nu)[:, None, None]
    return stdtrit(nu, u) * np.sqrt((nu - 2.0) / nu)


def test_fit_recovers_parameters(series):
    fit = garch.fit_garch_t(series)
    assert (fit.start, fit.end, fit.converged) == (0, series.size, True)
    assert abs(fit.alpha - TRUE["alpha"]) < 0.02, fit
    assert abs(fit.beta - TRUE["beta"]) < 0.03, fit
    assert 4.5 < fit.nu < 8.5, fit
    assert abs(fit.mu - TRUE["mu"]) < 3e-4, fit
    uncond = fit.omega / (1.0 - fit.alpha - fit.beta)
    assert uncond == pytest.approx(1e-4, rel=0.25), fit


def test_fit_maps_back_to_raw_units(series):
    small = garch.fit_garch_t(series[:4000], start=1000)
    big = garch.fit_garch_t(series[:4000] * 100.0, start=1000)
    assert (small.start, small.end) == (1000, 4000)
    for name in ("alpha", "beta", "nu"):
        assert getattr(big, name) == pytest.approx(getattr(small, name), rel=1e-4), name
    assert big.mu == pytest.approx(100.0 * small.mu, rel=1e-3, abs=1e-9)
    assert big.omega == pytest.approx(1e4 * small.omega, rel=1e-3)


def test_fit_emits_no_warnings_and_leaves_filters_alone():
    # A variance break pushes the optimum onto the integrated boundary alpha + beta = 1.
    rng = np.random.default_rng(0)
    x = np.concatenate([0.01 * rng.standard_normal(500), rng.standard_normal(500)])
    before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = garch.fit_garch_t(x)
        assert caught == []
        assert warnings.filters[1:] == before  # arch's fit edits the global filters; ours restores them
    assert fit.alpha + fit.beta <= garch.MAX_PERSISTENCE + 1e-12
    assert not fit.converged
    assert fit.omega / (1 - fit.alpha - fit.beta) == pytest.approx(np.var(x), rel=1e-9)


@pytest.mark.parametrize(("params", "ok"), [(None, False),                       # arch raises
                                            ([0.0, 0.02, 0.3, 0.75, 5.0], True),  # non-stationary
                                            ([0.1, 0.0, 0.1, 0.8, 5.0], True),    # omega = 0
                                            ([0.1, 0.1, 0.1, 0.8, 5.0], False)])  # optimiser failed
def test_fit_fallbacks(monkeypatch, series, params, ok):
    def fake(y):
        if params is None:
            raise ValueError("boom")
        return np.array(params), ok

    monkeypatch.setattr(garch, "_arch_fit", fake)
    x = series[:500]
    fit = garch.fit_garch_t(x)
    var, persistence = np.var(x), fit.alpha + fit.beta
    assert not fit.converged
    assert persistence <= garch.MAX_PERSISTENCE + 1e-12
    if params is None or not ok:
        assert (fit.alpha, fit.beta, fit.nu, fit.mu) == (0.05, 0.90, 8.0, pytest.approx(x.mean()))
        assert fit.omega / (1 - persistence) == pytest.approx(var)
    elif params[2] + params[3] > 1:
        assert persistence == pytest.approx(garch.MAX_PERSISTENCE)
        assert fit.alpha / fit.beta == pytest.approx(0.3 / 0.75)
        assert fit.omega / (1 - persistence) == pytest.approx(var)
    else:
        assert (fit.alpha, fit.beta) == (0.1, 0.8)
        assert fit.omega / (1 - persistence) == pytest.approx(1e-3 * var)


def test_conditional_variance_matches_the_recursion(series):
    fit = garch.fit_garch_t(series[:3000], start=500)
    for upto in (500, 2999, 3500, 10_000):
        assert garch.conditional_variance(series, fit, upto=upto) == pytest.approx(
            _loop_variance(series, fit, upto), rel=1e-10)
    with pytest.raises(ValueError, match="upto must lie in"):
        garch.conditional_variance(series, fit, upto=499)


def test_refit_schedule(series):
    r = series[:3000]
    times = np.array([150, 249, 250, 1498, 1499, 1600])
    fits = garch.state_fits(r, times, refit_every=250, min_history=100)
    assert [(f.start, f.end) for f in fits] == [(0, 151), (0, 250), (0, 250), (0, 1250), (0, 1500), (0, 1500)]
    assert fits[4] is fits[5] and fits[1] is fits[2]
    windowed = garch.state_fits(r, np.array([1600, 120]), refit_every=250, window=1000, min_history=100)
    assert [(f.start, f.end) for f in windowed] == [(500, 1500), (0, 121)]
    # p = 249 holds 250 < min_history returns: fit on the returns up to t instead.
    assert [(f.start, f.end) for f in garch.state_fits(r, np.array([300]), refit_every=250, min_history=300)] == [
        (0, 301)]


def test_future_returns_do_not_change_the_forecast(series):
    r = series[:3000]
    times = np.array([1200, 1600, 2100])
    kw = {"n": 64, "horizon": 5, "seed": 7}
    base = garch.garch_t_paths(r, times, **kw)
    changed = r.copy()
    changed[1601:] = np.random.default_rng(1).standard_normal(changed.size - 1601) * 0.05
    moved = garch.garch_t_paths(changed, times, **kw)
    np.testing.assert_array_equal(moved[:2], base[:2])
    assert not np.allclose(moved[2], base[2])


def test_returns_between_refit_and_t_act_only_through_the_filter(series):
    r = series[:3000]
    times = np.array([1200, 1600])  # t = 1600 uses the fit at the refit point p = 1499
    kw = {"n": 64, "horizon": 1, "seed": 7}
    changed = r.copy()
    changed[1590:1601] *= 3.0
    old_fit, new_fit = garch.state_fits(r, times)[1], garch.state_fits(changed, times)[1]
    assert old_fit == new_fit and old_fit.end == 1500
    base, moved = garch.garch_t_paths(r, times, **kw), garch.garch_t_paths(changed, times, **kw)
    np.testing.assert_array_equal(moved[0], base[0])
    ratio = (moved[1, :, 0] - new_fit.mu) / (base[1, :, 0] - old_fit.mu)
    v_old = garch.conditional_variance(r, old_fit, upto=1600)
    v_new = garch.conditional_variance(changed, new_fit, upto=1600)
    assert v_new > 2 * v_old
    np.testing.assert_allclose(ratio, np.sqrt(v_new / v_old), rtol=1e-9)


def test_paths_follow_the_recursion_for_unsorted_times(series):
    r = series[:3000]
    times = np.array([2500, 600, 30, 2500, 1700])  # unsorted, a duplicate, one fit on r[:31] directly
    n, horizon = 16, 3
    paths = garch.garch_t_paths(r, times, n=n, horizon=horizon, seed=3)
    fits = garch.state_fits(r, times)
    assert (fits[2].start, fits[2].end) == (0, 31)
    z = _z(3, (times.size, n, horizon), [f.nu for f in fits])
    for s, (t, f) in enumerate(zip(times, fits, strict=True)):
        v = np.full(n, _loop_variance(r, f, int(t)))
        for k in range(horizon):
            expect = f.mu + np.sqrt(v) * z[s, :, k]
            np.testing.assert_allclose(paths[s, :, k], expect, rtol=1e-9, atol=1e-15)
            v = f.omega + f.alpha * (expect - f.mu) ** 2 + f.beta * v


def test_simulated_moments(series):
    t = 15_000
    paths = garch.garch_t_paths(series, np.array([t]), n=200_000, horizon=2, seed=11)[0]
    fit = garch.state_fits(series, np.array([t]))[0]
    v1 = garch.conditional_variance(series, fit, upto=t)
    e1, e2 = paths[:, 0] - fit.mu, paths[:, 1] - fit.mu
    assert np.mean(e1**2) == pytest.approx(v1, rel=0.04)
    assert np.mean(e2**2) == pytest.approx(fit.omega + (fit.alpha + fit.beta) * v1, rel=0.05)
    kurtosis = np.mean(e1**4) / np.mean(e1**2) ** 2
    assert kurtosis > 3.5, (kurtosis, fit.nu)


def test_calibrated_and_beats_the_gaussian_random_walk():
    # A faster-moving, heavier-tailed GARCH than TRUE, scored one step ahead on 8,000 states.
    r = _simulate(10_000, mu=2e-4, omega=5e-6, alpha=0.15, beta=0.80, nu=5.0, seed=0)
    times = np.arange(2000, r.size - 1)
    obs = r[times + 1]
    g = garch.garch_t_paths(r, times, n=200, horizon=1, seed=1)[:, :, 0]
    w = baselines.gaussian_rw_paths(r, times, n=200, horizon=1, seed=1)[:, :, 0]
    assert metrics.coverage(g, obs, 0.5) == pytest.approx(0.5, abs=0.03)
    assert metrics.coverage(g, obs, 0.9) == pytest.approx(0.9, abs=0.03)
    gain = metrics.crps_ensemble(w, obs) - metrics.crps_ensemble(g, obs)  # paired, per state
    z = gain.mean() / gain.std() * np.sqrt(gain.size)
    assert z > 3, (gain.mean(), z)


def test_bad_input_raises(series):
    r = series[:500]
    with pytest.raises(ValueError, match=r"t=10 \(only 11 observed returns\).*>= 20"):
        garch.garch_t_paths(r, np.array([300, 10]), n=4, horizon=2)
    with pytest.raises(ValueError, match="window"):
        garch.garch_t_paths(r, np.array([300]), n=4, horizon=2, window=50)
    with pytest.raises(ValueError, match="n and horizon"):
        garch.garch_t_paths(r, np.array([300]), n=0, horizon=2)
    with pytest.raises(ValueError, match="times must lie in"):
        garch.garch_t_paths(r, np.array([500]), n=4, horizon=2)
    nan = r.copy()
    nan[100] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        garch.garch_t_paths(nan, np.array([300]), n=4, horizon=2)
    with pytest.raises(ValueError, match="at least 20 returns"):
        garch.fit_garch_t(r[:19])
    with pytest.raises(ValueError, match="constant"):
        garch.fit_garch_t(np.full(50, 1e-3))


def test_fit_is_frozen(series):
    fit = garch.fit_garch_t(series[:200])
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.alpha = 0.5  # type: ignore[misc]
