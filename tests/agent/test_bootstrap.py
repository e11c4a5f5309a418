"""The paired stationary block bootstrap: block lengths that follow the dependence, resamples
that are blocks, and intervals that cover a known difference and exclude 0 only when the
difference is real."""

from __future__ import annotations

import numpy as np
import pytest

from strates.agent.bootstrap import optimal_block_length, paired_difference, sharpe_interval, stationary_indices


def ar1(phi: float, n: int, rng) -> np.ndarray:
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def test_block_length_grows_with_dependence():
    rng = np.random.default_rng(0)
    iid = optimal_block_length(rng.standard_normal(4000))
    mild = optimal_block_length(ar1(0.5, 4000, rng))
    strong = optimal_block_length(ar1(0.9, 4000, rng))
    assert iid < 3.0 < mild < strong
    # AR(1) with phi = 0.5: Politis & White's optimum is (2 g^2 / d)^(1/3) n^(1/3), g/d from the
    # spectrum: about 2 phi/(1-phi^2) ... we check the order of magnitude (n^(1/3) ~ 16)
    assert 3.0 < mild < 30.0
    assert optimal_block_length(np.zeros(100)) == 1.0


def test_indices_are_wrapped_blocks_of_the_mean_length():
    rng = np.random.default_rng(1)
    idx = stationary_indices(500, block=10.0, replicates=400, rng=rng)
    assert idx.shape == (400, 500) and idx.min() >= 0 and idx.max() < 500
    step = (idx[:, 1:] - idx[:, :-1]) % 500
    cont = step == 1
    assert cont.mean() == pytest.approx(0.9, abs=0.01)  # a new block with probability 1/10
    # every bar is drawn about equally often (stationary)
    counts = np.bincount(idx.ravel(), minlength=500) / idx.size
    assert counts.max() < 3 / 500


def test_no_difference_is_not_shown_and_a_real_one_is():
    rng = np.random.default_rng(2)
    n, ppy = 3000, 252.0
    base = rng.standard_normal(n) * 0.01
    d = paired_difference(base.copy(), base, periods_per_year=ppy, seed=0)  # the same strategy
    assert d.sharpe_lo == d.sharpe_hi == 0.0 and not d.shown
    better = base + 0.002  # a real edge of 0.2% a bar: Sharpe +0.2 per bar, +3.2 a year
    d = paired_difference(better, base, periods_per_year=ppy, seed=0)
    assert d.shown and d.sharpe_lo > 0
    assert d.return_diff == pytest.approx(0.002 * ppy)
    assert d.return_lo == pytest.approx(0.002 * ppy) and d.return_hi == pytest.approx(0.002 * ppy)  # constant diff
    assert paired_difference(better, base, periods_per_year=ppy, seed=0) == d  # seeded


def test_interval_covers_the_truth_at_about_its_level():
    # two independent strategies with known true Sharpe difference 0: the 95% interval of
    # the difference should exclude 0 in about 5% of repetitions (loosely: <= 15% of 40)
    rng = np.random.default_rng(3)
    misses = 0
    for _ in range(40):
        a, b = rng.standard_normal(600), rng.standard_normal(600)
        misses += paired_difference(a, b, periods_per_year=1.0, replicates=500, seed=1).shown
    assert misses <= 6


def test_sharpe_interval_covers_a_known_sharpe():
    # returns with a true per-bar Sharpe of 0.1: the 95% interval covers it in most of 40
    # repetitions, and the point estimate is the plain annualised Sharpe
    rng = np.random.default_rng(5)
    covered = 0
    for _ in range(40):
        x = 0.1 + rng.standard_normal(800)
        iv = sharpe_interval(x, periods_per_year=4.0, replicates=400, seed=2)
        assert iv.sharpe == pytest.approx(x.mean() / x.std(ddof=1) * 2.0) and iv.lo < iv.sharpe < iv.hi
        covered += iv.lo <= 0.2 <= iv.hi
    assert covered >= 34
