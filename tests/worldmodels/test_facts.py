"""Stylised facts on series whose answer is known: Gaussian, Student-t, GARCH, leverage, drawdowns."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tomli_w

from strates.worldmodels.facts import Facts, facts, facts_table, hill_tail, max_drawdowns, windows


def _garch(paths: int, bars: int, *, seed: int, omega=1e-6, alpha=0.1, beta=0.85) -> np.ndarray:
    """GARCH(1,1) returns [paths, bars]: r_t = sigma_t e_t, sigma_{t+1}^2 = omega + alpha r_t^2 + beta sigma_t^2."""
    e = np.random.default_rng(seed).standard_normal((paths, bars))
    r = np.empty_like(e)
    var = np.full(paths, omega / (1 - alpha - beta))
    for t in range(bars):
        r[:, t] = np.sqrt(var) * e[:, t]
        var = omega + alpha * r[:, t] ** 2 + beta * var
    return r


def test_gaussian_has_no_excess_kurtosis_nor_autocorrelation():
    f = facts(0.01 * np.random.default_rng(0).standard_normal((100, 2000)))
    assert abs(f.excess_kurtosis) < 0.05  # sd of the estimate ~ sqrt(24 / 2e5) = 0.011
    for values in (f.acf_returns, f.acf_abs, f.leverage):  # sd ~ 1 / sqrt(2e5) = 0.0022
        assert max(abs(v) for v in values) < 0.015
    assert (f.paths, f.bars, f.lags) == (100, 200_000, (1, 5, 10, 20))


def test_student_t3_tail_index():
    r = np.random.default_rng(1).standard_t(3, size=(1, 200_000))
    f = facts(r)
    assert abs(f.hill_tail - 3.0) < 1.0
    assert f.excess_kurtosis > 3.0  # infinite in theory, large in any sample


def test_hill_on_exact_pareto_order_statistics():
    # |r| = (1 - u)^(-1/alpha) at evenly spaced quantiles u: a Pareto(alpha = 2) sample without noise
    u = (np.arange(100_000) + 0.5) / 100_000
    a = (1 - u) ** -0.5
    assert hill_tail(a, fraction=0.01) == pytest.approx(2.0, rel=0.02)
    assert hill_tail(np.ones(50)) == 0.0  # no tail: the top values equal the threshold
    assert hill_tail(np.array([0.0, np.nan])) == 0.0


def test_garch_clusters_volatility_without_autocorrelated_returns():
    f = facts(_garch(25, 2000, seed=2))
    assert f.acf_abs[0] > 0.08  # ~0.13 for these parameters
    assert all(a > 0.02 for a in f.acf_abs)
    assert max(abs(a) for a in f.acf_returns) < 0.03
    assert f.excess_kurtosis > 0.3


def test_volatility_after_falls_gives_negative_leverage():
    # sigma_t = 1% after a rise, 3% after a fall: corr(r_{t-1}, r_t^2) < 0
    e = np.random.default_rng(3).standard_normal((20, 2000))
    sigma = 0.01 * np.ones_like(e)
    sigma[:, 1:] += 0.02 * (e[:, :-1] < 0)
    f = facts(sigma * e)
    assert f.leverage[0] < -0.2
    assert max(abs(v) for v in f.leverage[1:]) < 0.03  # the effect lasts one bar
    assert max(abs(v) for v in f.acf_returns) < 0.03


def test_drawdowns_exact():
    rising = np.full((1, 10), 0.01)
    assert max_drawdowns(rising)[0] == 0.0
    halves = np.array([[0.1, math.log(0.5), 0.0]])  # up, then down to half of the peak
    assert max_drawdowns(halves)[0] == pytest.approx(0.5, abs=1e-15)
    assert max_drawdowns(np.array([[math.log(0.5)]]))[0] == pytest.approx(0.5, abs=1e-15)
    f = facts(np.concatenate([np.tile(rising, (3, 1)), np.array([[math.log(0.5)] + [0.0] * 9])]), lags=(1,))
    assert f.drawdown_median == 0.0
    assert f.drawdown_p90 == pytest.approx(0.5 * 0.7)  # linear interpolation between 0 (3 paths) and 0.5


def test_nans_are_ignored():
    r = 0.01 * np.random.default_rng(4).standard_normal((10, 300))
    holes = r.copy()
    holes[:, ::7] = np.nan  # a missing bar is a zero return for the price path
    f = facts(holes)
    assert f.bars == int(np.isfinite(holes).sum())
    assert all(math.isfinite(v) for v in (f.excess_kurtosis, f.hill_tail, *f.acf_returns, *f.leverage))
    assert f.drawdown_median == pytest.approx(float(np.median(max_drawdowns(np.nan_to_num(holes)))))
    # NaN rows and columns add nothing: appending an all-NaN path and column leaves the facts as they were
    padded = np.full((11, 301), np.nan)
    padded[:10, :300] = holes
    g = facts(padded)
    assert g.excess_kurtosis == pytest.approx(f.excess_kurtosis)
    assert g.acf_abs == pytest.approx(f.acf_abs)
    assert g.hill_tail == pytest.approx(f.hill_tail)


def test_acf_pooled_per_path_by_hand():
    r = np.array([[1.0, -1.0, 1.0, -1.0], [2.0, 2.0, -2.0, -2.0]])
    # x = r (means 0); lag-1 products: -1, -1, -1 and 4, -4, 4 -> mean 1/6 over 6 pairs
    # lag 2: 1, 1 and -4, -4 -> mean -1.5 over 4 pairs; pooled mean square (4 * 1 + 4 * 4) / 8 = 2.5
    f = facts(r, lags=(1, 2))
    assert f.acf_returns == pytest.approx((1 / 6 / 2.5, -1.5 / 2.5))


def test_refusals():
    with pytest.raises(ValueError, match=r"shape \[P, L\]"):
        facts(np.zeros(10))
    with pytest.raises(ValueError, match="need paths longer than the lag"):
        facts(np.zeros((3, 10)), lags=(1, 10))
    with pytest.raises(ValueError, match="no finite value"):
        facts(np.full((2, 5), np.nan), lags=(1,))


def test_constant_returns_give_zeros():
    f = facts(np.zeros((2, 30)))
    assert (f.excess_kurtosis, f.hill_tail, f.drawdown_p90) == (0.0, 0.0, 0.0)
    assert f.acf_returns == f.acf_abs == f.leverage == (0.0, 0.0, 0.0, 0.0)


def test_windows_cut_each_asset_apart():
    a, b = np.arange(10.0), 100 + np.arange(7.0)
    w = windows([a, b], 3)
    np.testing.assert_array_equal(w, [[0, 1, 2], [3, 4, 5], [6, 7, 8], [100, 101, 102], [103, 104, 105]])
    assert windows([a], 10).shape == (1, 10)
    with pytest.raises(ValueError, match="no series holds a path of 11 bars"):
        windows([a, b], 11)


def test_serialises_and_tabulates():
    real = facts(0.01 * np.random.default_rng(5).standard_normal((4, 100)), lags=(1, 5))
    dreamed = facts(_garch(4, 100, seed=6), lags=(1, 5))
    d = real.to_dict()
    assert "acf_abs" in tomli_w.dumps(d)
    assert Facts.from_dict({k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}) == real
    t = facts_table(real, dreamed)
    assert t.columns == ("fact", "real", "dreamed")
    assert len(t.rows) == 2 + 3 * 2 + 4
    assert t.rows[2][0] == "acf r, lag 1"
    assert "Hill" in t.caption and "Cont 2001" in t.caption
    with pytest.raises(ValueError, match="share their lags"):
        facts_table(real, facts(_garch(2, 50, seed=7), lags=(1,)))
