"""Backtest metrics: Sharpe, Sortino, drawdown, turnover, hit rate, PSR / DSR, summary."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from strates.agent.metrics import (
    annual_factor,
    deflated_sharpe,
    expected_max_sharpe,
    hit_rate,
    max_drawdown,
    probabilistic_sharpe,
    sharpe,
    sortino,
    summary,
    turnover,
)

PNL = np.array([0.01, -0.02, 0.03, 0.00])  # mean 0.005, sum sq dev 1.3e-3


def test_annual_factor():
    assert annual_factor(86400) == pytest.approx(365.25)
    assert annual_factor(3600) == pytest.approx(365.25 * 24)
    with pytest.raises(ValueError, match="interval_seconds must be > 0"):
        annual_factor(0)


def test_sharpe_by_hand():
    std = math.sqrt(1.3e-3 / 3)
    assert sharpe(PNL, periods_per_year=4) == pytest.approx(0.005 / std * 2)
    assert sharpe(PNL, periods_per_year=1) == pytest.approx(0.005 / std)
    assert sharpe(np.full(5, 0.1), periods_per_year=252) == 0.0  # std == 0
    assert sharpe([0.3], periods_per_year=252) == 0.0  # T < 2


def test_sortino_by_hand():
    # downside: min(pnl, 0) = [0, -0.02, 0, 0] -> DD = sqrt(4e-4 / 4) = 0.01
    assert sortino(PNL, periods_per_year=4) == pytest.approx(0.005 / 0.01 * 2)
    assert sortino([0.01, 0.02, 0.0], periods_per_year=252) == 0.0  # no downside -> 0, not inf
    assert sortino([-0.01, -0.03], periods_per_year=1) == pytest.approx(-0.02 / math.sqrt(5e-4))


def test_max_drawdown_known_paths():
    # wealth 1 -> 1.1 -> 0.55 -> 0.66: peak 1.1, trough 0.55
    # simple returns: wealth is the product of (1 + R)
    assert max_drawdown(np.array([1.1, 0.5, 1.2]) - 1) == pytest.approx(0.5)
    assert max_drawdown(np.array([0.8]) - 1) == pytest.approx(0.2)  # from the starting W_0 = 1
    assert max_drawdown(np.array([1.1, 1.2, 1.3]) - 1) == 0.0
    assert max_drawdown(np.array([0.9, 1.5, 0.5, 1.1]) - 1) == pytest.approx(0.5)  # new peak resets


def test_turnover_by_hand():
    pos = np.array([[0.5, 0.0], [0.5, -1.0], [0.0, -1.0]])
    # |delta| sums per bar: 0.5, 1.0, 0.5 -> per asset 0.25, 0.5, 0.25
    assert turnover(pos) == pytest.approx(1.0 / 3.0)
    assert turnover(pos, position0=[0.5, 0.0]) == pytest.approx((0.0 + 0.5 + 0.25) / 3)
    assert turnover(np.array([1.0, -1.0, -1.0])) == pytest.approx(1.0)  # 1, 2, 0
    assert turnover(np.array([1.0, -1.0, -1.0]), position0=1.0) == pytest.approx(2.0 / 3)


def test_hit_rate():
    pnl = np.array([0.1, -0.1, 0.0, 0.2])
    assert hit_rate(pnl) == pytest.approx(2 / 3)
    assert hit_rate(pnl, active=[True, True, True, False]) == pytest.approx(1 / 3)
    assert hit_rate(np.zeros(4)) == 0.0
    assert hit_rate(pnl, active=np.zeros(4, bool)) == 0.0


def test_psr_matches_formula_with_scipy_moments():
    x = np.random.default_rng(0).standard_t(4, size=300) * 0.01 + 0.002
    sr = x.mean() / x.std(ddof=1)
    g3, g4 = stats.skew(x), stats.kurtosis(x, fisher=False)
    z = (sr - 0.05) * math.sqrt(x.size - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2)
    assert probabilistic_sharpe(x, sr_benchmark=0.05) == pytest.approx(stats.norm.cdf(z))


def test_psr_half_at_benchmark_and_constant():
    x = np.random.default_rng(1).normal(0.001, 0.01, 100)
    sr = x.mean() / x.std(ddof=1)
    assert probabilistic_sharpe(x, sr_benchmark=sr) == pytest.approx(0.5)
    assert probabilistic_sharpe(np.full(10, 0.01)) == 0.5


def test_psr_increases_with_length():
    block = np.random.default_rng(2).normal(0.002, 0.01, 50)
    block += 0.002 - block.mean()  # positive mean by construction
    psr = [probabilistic_sharpe(np.tile(block, k)) for k in (1, 2, 4, 8, 16)]
    assert all(a < b for a, b in itertools.pairwise(psr))
    assert 0.5 < psr[0] and psr[-1] <= 1.0


def test_expected_max_sharpe():
    assert expected_max_sharpe(1, variance=1.0) == 0.0
    e = [expected_max_sharpe(n, variance=1.0) for n in (2, 5, 10, 100, 1000)]
    assert all(a < b for a, b in itertools.pairwise(e))
    assert expected_max_sharpe(10, variance=4.0) == pytest.approx(2 * e[2])
    with pytest.raises(ValueError, match="n_trials must be >= 1"):
        expected_max_sharpe(0, variance=1.0)


def test_dsr_single_trial_is_psr0():
    x = np.random.default_rng(3).normal(0.001, 0.01, 200)
    d = deflated_sharpe(x, n_trials=1)
    assert d["dsr"] == pytest.approx(probabilistic_sharpe(x))
    assert d["sr0"] == 0.0 and d["n_trials"] == 1
    assert d["variance_source"] == "null" and d["variance"] == pytest.approx(1 / 199)


def test_dsr_decreases_with_trials():
    x = np.random.default_rng(4).normal(0.002, 0.01, 500)
    ds = [deflated_sharpe(x, n_trials=n) for n in (1, 2, 10, 100, 1000)]
    assert all(float(a["dsr"]) > float(b["dsr"]) for a, b in itertools.pairwise(ds))
    assert all(float(a["sr0"]) < float(b["sr0"]) for a, b in itertools.pairwise(ds))


def test_dsr_variance_source():
    x = np.random.default_rng(5).normal(0.0, 0.01, 100)
    d = deflated_sharpe(x, n_trials=3, trial_sharpes=[0.1, 0.2, 0.3])
    assert d["variance_source"] == "trials" and d["variance"] == pytest.approx(0.01)
    assert d["sr0"] == pytest.approx(expected_max_sharpe(3, variance=0.01))
    assert deflated_sharpe(x, n_trials=3, trial_sharpes=[0.1])["variance_source"] == "null"
    with pytest.raises(ValueError, match="n_trials must be >= 1"):
        deflated_sharpe(x, n_trials=0)


def test_expected_max_sharpe_monte_carlo():
    reps, n, t = 200, 50, 250
    x = np.random.default_rng(6).standard_normal((reps, n, t))
    srs = x.mean(axis=2) / x.std(axis=2, ddof=1)  # [reps, n] per-bar Sharpes
    sr0 = [expected_max_sharpe(n, variance=float(v)) for v in srs.var(axis=1, ddof=1)]
    observed, predicted = srs.max(axis=1).mean(), float(np.mean(sr0))
    assert observed == pytest.approx(predicted, rel=0.10)


def test_summary_keys_and_values():
    rng = np.random.default_rng(7)
    pos = rng.choice([-1.0, 0.0, 1.0], size=(120, 3))
    pos[:10] = 0.0  # flat bars are excluded from the hit rate
    pnl = np.where(pos.any(axis=1), rng.normal(0.001, 0.01, 120), 0.0)
    s = summary(pnl, pos, periods_per_year=252, n_trials=20)
    assert set(s) == {
        "total_return", "annual_return", "annual_vol", "sharpe", "sortino", "max_drawdown",
        "turnover", "hit_rate", "dsr", "sr0_annual", "bars",
    }  # fmt: skip
    assert type(s["bars"]) is int and s["bars"] == 120
    assert all(type(v) is float and math.isfinite(v) for k, v in s.items() if k != "bars")
    assert s["total_return"] == pytest.approx(np.prod(1 + pnl) - 1)
    assert s["annual_return"] == pytest.approx(np.exp(np.log1p(pnl).mean() * 252) - 1)
    assert s["annual_vol"] == pytest.approx(pnl.std(ddof=1) * math.sqrt(252))
    assert s["sharpe"] == pytest.approx(sharpe(pnl, periods_per_year=252))
    assert s["turnover"] == pytest.approx(turnover(pos))
    active = pos.any(axis=1)
    assert s["hit_rate"] == pytest.approx((pnl[active] > 0).mean())
    assert s["dsr"] == pytest.approx(deflated_sharpe(pnl, n_trials=20)["dsr"])
    assert s["sr0_annual"] > 0


def test_summary_degenerate_is_finite():
    s = summary(np.zeros(5), np.zeros(5), periods_per_year=252)
    assert all(math.isfinite(v) for v in s.values())
    assert s["sharpe"] == s["sortino"] == s["hit_rate"] == s["max_drawdown"] == 0.0
    assert s["dsr"] == 0.5
    with pytest.raises(ValueError, match="positions must have shape"):
        summary(np.zeros(5), np.zeros((4, 2)), periods_per_year=252)
