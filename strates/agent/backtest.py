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

from collections.abc import Mapping, Sequence

import numpy as np

from strates.agent import metrics
from strates.agent.artifact import Performance
from strates.core import accounting
from strates.data.split import Period

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
    simple = np.asarray(accounting.simple(np.where(valid, returns_next, 0.0)))
    pnl, _ = accounting.rollout(pos, simple, cost=accounting.bps(cost_bps))
    return accounting.portfolio_returns(pnl, valid)


def evaluate(strategies: dict[str, np.ndarray], returns_next: np.ndarray, valid: np.ndarray, *,
             cost_levels: Sequence[float], periods_per_year: float, n_trials: Mapping[str, int] | None = None,
             trial_sharpes: Mapping[float, Sequence[float]] | None = None
             ) -> tuple[tuple[Performance, ...], dict[str, dict[float, np.ndarray]]]:
    """Figures for every strategy at every cost level.

    Returns (one `Performance` row per strategy and cost level, the simple returns
    `{strategy: {cost_bps: [T]}}`). The deflated Sharpe ratio of a strategy counts
    `n_trials[strategy]` configurations tried (default 1: a baseline is one fixed rule); for
    those counted as more than one trial, the variance of the trials' Sharpes comes from
    `trial_sharpes[cost_bps]` (the per-bar Sharpes of the earlier trials at that cost level)
    plus the strategy's own."""
    rows: list[Performance] = []
    pnls: dict[str, dict[float, np.ndarray]] = {}
    for name, pos in strategies.items():
        trials = (n_trials or {}).get(name, 1)
        for c in map(float, cost_levels):
            pnl = portfolio_returns(pos, returns_next, valid, cost_bps=c)
            others = list((trial_sharpes or {}).get(c, [])) if trials > 1 else []
            own = metrics.sharpe(pnl, periods_per_year=1.0)
            s = metrics.summary(pnl, np.where(valid, pos, 0.0), periods_per_year=periods_per_year, n_trials=trials,
                                trial_sharpes=[*others, own] if others else None)
            figures = {k: float(v) for k, v in s.items() if k != "bars"}
            rows.append(Performance(strategy=name, cost_bps=c, bars=int(s["bars"]), **figures))
            pnls.setdefault(name, {})[c] = pnl
    return tuple(rows), pnls


def clock(states, span: Period, max_bars: int = 0):
    """The common clock of a period: `ts [T]` (bars t of any asset with t and t+1 inside
    `span`, the first `max_bars` when not 0), `h [T, A, D]`, `valid [T, A]`, `r_next [T, A]`
    (the log return of the bar after t), `r_now [T, A]` (that of bar t), from per-asset
    JEPA states (`ts`, `h`, `r`)."""
    a, b = span.bounds64()
    rows = []
    for s in states:
        t = np.arange(len(s.ts) - 1)
        rows.append(t[(s.ts[t] >= a) & (s.ts[t + 1] < b)])
    ts = np.unique(np.concatenate([s.ts[t] for s, t in zip(states, rows, strict=True)]))
    if max_bars:
        ts = ts[:max_bars]
    d = states[0].h.shape[1]
    h = np.zeros((len(ts), len(states), d), np.float32)
    valid = np.zeros((len(ts), len(states)), bool)
    r_next = np.zeros((len(ts), len(states)))
    r_now = np.zeros((len(ts), len(states)))
    for j, (s, t) in enumerate(zip(states, rows, strict=True)):
        pos = np.searchsorted(ts, s.ts[t])
        keep = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == s.ts[t])
        pos, t = pos[keep], t[keep]
        h[pos, j], valid[pos, j], r_next[pos, j], r_now[pos, j] = s.h[t], True, s.r[t + 1], s.r[t]
    return ts, h, valid, r_next, r_now


def equity_frame(period: str, ts: np.ndarray, pnls: Mapping[str, Mapping[float, np.ndarray]]):
    """Equity curves as a long frame (`equity.parquet`): period, ts, strategy, cost_bps, pnl
    (the portfolio's simple return R_t over the bar after ts), equity (wealth prod(1 + R),
    from 1), from `evaluate`'s returns `{strategy: {cost_bps: [T]}}`."""
    import polars as pl

    frames = []
    for name, by_cost in pnls.items():
        for cost, pnl in by_cost.items():
            frames.append(pl.DataFrame({"period": [period] * len(ts), "ts": ts, "strategy": [name] * len(ts),
                                        "cost_bps": [float(cost)] * len(ts), "pnl": pnl,
                                        "equity": accounting.wealth(pnl)},
                                       schema_overrides={"period": pl.String, "strategy": pl.String}))
    return pl.concat(frames)
