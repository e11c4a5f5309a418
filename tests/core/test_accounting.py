"""The one accounting (DESIGN.md, Accounting) against an independent simulation of a book
in cash and units, bar by bar, and the figures that the old log-space convention got wrong."""

from __future__ import annotations

import numpy as np
import pytest

from strates.agent import backtest, metrics
from strates.core import accounting


def simulate_book(positions: np.ndarray, log_returns: np.ndarray, valid: np.ndarray, *, cost: float) -> np.ndarray:
    """Wealth after each bar of a book that, at every decision time t, gives each asset with
    a bar an equal sleeve of its wealth, buys (or sells short) `a * sleeve / price` units,
    keeps the rest in cash (short proceeds included), pays `cost * |a - a_prev| * sleeve`,
    and marks everything to the next bar's price. Written with prices and units, not with
    the accounting module's formulas."""
    t_len, a_len = positions.shape
    prices = np.exp(np.cumsum(np.vstack([np.zeros(a_len), log_returns]), axis=0))  # price at t and after bar t
    w, prev = 1.0, np.zeros(a_len)
    out = []
    for t in range(t_len):
        live = np.nonzero(valid[t])[0]
        sleeve = w / len(live)
        total = 0.0
        for j in live:
            units = positions[t, j] * sleeve / prices[t, j]
            cash = sleeve - units * prices[t, j] - cost * abs(positions[t, j] - prev[j]) * sleeve
            total += cash + units * prices[t + 1, j]
        for j in range(a_len):
            prev[j] = positions[t, j] if valid[t, j] else 0.0
        w = total
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("a", [-1.0, -0.5, 0.0, 0.5, 1.0])
@pytest.mark.parametrize("cost_bps", [0.0, 10.0])
def test_equity_matches_a_cash_and_units_book(a, cost_bps):
    rng = np.random.default_rng(0)
    t_len = 400
    log_r = rng.standard_t(3, (t_len, 2)) * 0.02  # heavy tails: where a·r and a·(e^r - 1) differ most
    pos = np.full((t_len, 2), a)
    pos[::7, 1] = -a  # asset 1 flips now and then, so costs are charged both ways
    valid = np.ones((t_len, 2), bool)
    got = accounting.wealth(backtest.portfolio_returns(pos, log_r, valid, cost_bps=cost_bps))
    want = simulate_book(pos, log_r, valid, cost=cost_bps * 1e-4)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_ragged_assets_are_left_out_not_held_flat():
    rng = np.random.default_rng(1)
    log_r = rng.normal(0, 0.03, (50, 3))
    pos = rng.uniform(-1, 1, (50, 3))
    valid = np.ones((50, 3), bool)
    valid[30:, 2] = False  # asset 2's history ends
    valid[:10, 0] = False  # asset 0's starts late
    got = accounting.wealth(backtest.portfolio_returns(pos, log_r, valid, cost_bps=5.0))
    np.testing.assert_allclose(got, simulate_book(pos, log_r, valid, cost=5e-4), rtol=0, atol=1e-12)
    # holding an absent asset flat would halve the others' weight: a different number
    flat = accounting.portfolio_returns(np.where(valid, 1.0, 0.0) * 0.01, np.ones_like(valid))
    assert flat[40] == pytest.approx(2 / 3 * 0.01)
    assert accounting.portfolio_returns(np.full((1, 3), 0.01), valid[40:41])[0] == pytest.approx(0.01)


def test_a_short_loses_more_than_log_space_says():
    # a = -1 over a bar with log return r: the book loses e^r - 1, not r
    r = np.array([[0.1]])
    R = backtest.portfolio_returns(np.array([[-1.0]]), r, np.ones((1, 1), bool), cost_bps=0.0)
    assert R[0] == pytest.approx(-(np.exp(0.1) - 1), abs=1e-15)
    assert R[0] < -0.1
    # a half long earns (e^r - 1) / 2, more than r / 2 for r > 0
    R = backtest.portfolio_returns(np.array([[0.5]]), r, np.ones((1, 1), bool), cost_bps=0.0)
    assert R[0] == pytest.approx(0.5 * np.expm1(0.1), abs=1e-15)


def test_short_bias_of_log_accounting_is_gone():
    # a zero-drift random walk in log space: shorting it must not look profitable. Under the
    # old a·r accounting, short - long had mean 0; in simple returns a short pays the
    # convexity e^r - 1 - r ≈ r²/2 per bar, so the short's mean return is below the long's.
    rng = np.random.default_rng(2)
    log_r = rng.normal(0, 0.02, (200_000, 1))
    valid = np.ones_like(log_r, bool)
    long = backtest.portfolio_returns(np.ones_like(log_r), log_r, valid, cost_bps=0.0)
    short = backtest.portfolio_returns(-np.ones_like(log_r), log_r, valid, cost_bps=0.0)
    np.testing.assert_allclose(long + short, 0.0, atol=1e-15)  # exact mirror images in simple returns
    assert long.mean() == pytest.approx(np.expm1(log_r).mean(), rel=1e-12)


def test_ruin_floors_wealth_at_zero():
    w = accounting.wealth(np.array([0.1, -1.5, 0.2]))
    np.testing.assert_allclose(w, [1.1, 0.0, 0.0])
    assert np.isneginf(accounting.log_growth(np.array([-1.0]))[0])
    assert metrics.max_drawdown(np.array([0.1, -1.5])) == pytest.approx(1.0)
    assert metrics.annual_return(np.array([0.1, -1.5]), periods_per_year=252) == -1.0


def test_metrics_on_simple_returns():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    s = metrics.summary(r, np.ones(4), periods_per_year=4.0)
    assert s["total_return"] == pytest.approx(1.01 * 0.98 * 1.03 - 1)
    assert s["annual_return"] == pytest.approx((1.01 * 0.98 * 1.03) ** (4 / 4) - 1)
    # drawdown on wealth 1, 1.01, 0.9898: from the peak 1.01
    assert s["max_drawdown"] == pytest.approx(1 - 0.98)
