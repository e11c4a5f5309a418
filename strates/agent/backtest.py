"""Walk-forward backtests: the agent against simple baselines, after the same costs.

Accounting (`strates.core.accounting`, the project's one definition): a position chosen at
bar t is held over bar t+1 and earns position x (e^{r_{t+1}} - 1); every change of position
pays `cost x |Δposition|` (per side; the book starts flat, so the first entry pays too).
The portfolio gives each asset with a bar at t an equal share of capital: its simple return
per bar is the mean of those assets' simple PnL (an asset outside its history is left out,
never held flat), and wealth grows by log1p of it. The same positions are charged at every
level of `cost_levels` (a stress test of a fixed strategy); the agent itself planned with
`env.cost_bps`.

Baselines, all causal: buy-and-hold (+1 in every asset), trailing momentum (the sign of the
sum of the last W returns known at t), and a random policy (uniform positions in [-1, 1],
seeded).
"""

from __future__ import annotations

import numpy as np

from strates.agent import metrics
from strates.core import accounting

BASELINES = ("buy_and_hold", "momentum", "random")


def baseline_positions(returns_past: np.ndarray, valid: np.ndarray, *, window: int, seed: int) -> dict[str, np.ndarray]:
    """`returns_past [T, A]`: the log return of bar t itself (known at decision time t);
    `valid [T, A]` -> {baseline: positions [T, A]}, 0 where not valid."""
    t_len, a_len = returns_past.shape
    c = np.concatenate([np.zeros((1, a_len)), np.cumsum(np.where(valid, returns_past, 0.0), axis=0)])
    lo = np.maximum(np.arange(t_len) - window + 1, 0)
    trailing = c[np.arange(t_len) + 1] - c[lo]
    rng = np.random.default_rng(seed)
    out = {
        "buy_and_hold": np.ones((t_len, a_len)),
        "momentum": np.sign(trailing),
        "random": rng.uniform(-1.0, 1.0, (t_len, a_len)),
    }
    return {k: np.where(valid, v, 0.0) for k, v in out.items()}


def portfolio_returns(positions: np.ndarray, returns_next: np.ndarray, valid: np.ndarray, *, cost_bps: float
                      ) -> np.ndarray:
    """Equal-weight portfolio simple return per bar, net of costs: positions `[T, A]`, the
    next bar's *log* returns `[T, A]`, `valid [T, A]` -> `[T]` (`accounting`)."""
    pos = np.where(valid, positions, 0.0)
    pnl, _ = accounting.rollout(pos, accounting.simple(np.where(valid, returns_next, 0.0)),
                                cost=accounting.bps(cost_bps))
    return accounting.portfolio_returns(pnl, valid)


def evaluate(strategies: dict[str, np.ndarray], returns_next: np.ndarray, valid: np.ndarray, *,
             cost_levels, periods_per_year: float, n_trials: dict[str, int] | None = None,
             trial_sharpes: dict[str, list[float]] | None = None
             ) -> tuple[dict[str, dict[str, dict]], dict[str, dict[str, np.ndarray]]]:
    """Figures for every strategy at every cost level.

    Returns (table `{strategy: {"<bps>": summary}}`, simple returns `{strategy: {"<bps>":
    [T]}}`). The deflated Sharpe ratio of a strategy counts `n_trials[strategy]`
    configurations tried (default 1: a baseline is one fixed rule); for those counted as more
    than one trial, the variance of the trials' Sharpes comes from `trial_sharpes[cost key]`
    (the per-bar Sharpes of the earlier trials at that cost level) plus the strategy's own."""
    table: dict[str, dict[str, dict]] = {}
    pnls: dict[str, dict[str, np.ndarray]] = {}
    for name, pos in strategies.items():
        trials = (n_trials or {}).get(name, 1)
        for c in cost_levels:
            pnl = portfolio_returns(pos, returns_next, valid, cost_bps=c)
            others = (trial_sharpes or {}).get(cost_key(c), []) if trials > 1 else []
            own = metrics.sharpe(pnl, periods_per_year=1.0)
            s = metrics.summary(pnl, np.where(valid, pos, 0.0), periods_per_year=periods_per_year, n_trials=trials,
                                trial_sharpes=[*others, own] if others else None)
            table.setdefault(name, {})[cost_key(c)] = s
            pnls.setdefault(name, {})[cost_key(c)] = pnl
    return table, pnls


def cost_key(cost_bps: float) -> str:
    """TOML-friendly key of a cost level: 5.0 -> "5bps", 2.5 -> "2.5bps"."""
    return f"{cost_bps:g}bps"
