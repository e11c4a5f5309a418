"""Walk-forward backtests: the agent against simple baselines, after the same costs.

Accounting (`env.rollout_np`): a position chosen at bar t is held over bar t+1 and earns
position x r_{t+1}; every change of position pays `cost x |Δposition|` (per side; the book
starts flat, so the first entry pays too). The portfolio gives each asset an equal share of
capital: its PnL per bar is the mean over the assets trading at that bar. PnL is in log
returns. The same positions are charged at every level of `cost_levels` (a stress test of
a fixed strategy); the agent itself planned with `env.cost_bps`.

Baselines, all causal: buy-and-hold (+1 in every asset), trailing momentum (the sign of the
sum of the last W returns known at t), and a random policy (uniform positions in [-1, 1],
seeded).
"""

from __future__ import annotations

import numpy as np

from strates.agent import metrics
from strates.agent.env import bps, rollout_np

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


def portfolio_pnl(positions: np.ndarray, returns_next: np.ndarray, valid: np.ndarray, *, cost_bps: float) -> np.ndarray:
    """Equal-weight portfolio PnL per bar, net of costs: `[T, A]` x3 -> `[T]`."""
    pnl, _ = rollout_np(np.where(valid, positions, 0.0), np.where(valid, returns_next, 0.0), cost=bps(cost_bps))
    count = np.maximum(valid.sum(1), 1)
    return pnl.sum(1) / count


def evaluate(strategies: dict[str, np.ndarray], returns_next: np.ndarray, valid: np.ndarray, *,
             cost_levels, periods_per_year: float, n_trials: dict[str, int] | None = None, trial_sharpes=None
             ) -> tuple[dict[str, dict[str, dict]], dict[str, dict[str, np.ndarray]]]:
    """Figures for every strategy at every cost level.

    Returns (table `{strategy: {"<bps>": summary}}`, PnL `{strategy: {"<bps>": [T]}}`).
    The deflated Sharpe ratio of a strategy counts `n_trials[strategy]` configurations
    tried (default 1: a baseline is one fixed rule); `trial_sharpes` go with the
    strategies counted as more than one trial."""
    table: dict[str, dict[str, dict]] = {}
    pnls: dict[str, dict[str, np.ndarray]] = {}
    for name, pos in strategies.items():
        trials = (n_trials or {}).get(name, 1)
        for c in cost_levels:
            pnl = portfolio_pnl(pos, returns_next, valid, cost_bps=c)
            s = metrics.summary(pnl, np.where(valid, pos, 0.0), periods_per_year=periods_per_year, n_trials=trials,
                                trial_sharpes=trial_sharpes if trials > 1 else None)
            table.setdefault(name, {})[cost_key(c)] = s
            pnls.setdefault(name, {})[cost_key(c)] = pnl
    return table, pnls


def cost_key(cost_bps: float) -> str:
    """TOML-friendly key of a cost level: 5.0 -> "5bps", 2.5 -> "2.5bps"."""
    return f"{cost_bps:g}bps"
