"""The one accounting of the project (DESIGN.md, "Accounting"): training rewards, planners,
backtests, equity files, metrics and the multiverse all use these functions.

- A position `a ∈ [-1, 1]` is a fraction of capital held over the next bar. With `r` that
  bar's log return, the asset's simple return is `R = e^r - 1` (`simple`), and its PnL,
  net of costs, is

      pnl = a · R - cost · |a - a_prev|          (`asset_pnl`; cost per side, a fraction)

- A portfolio is equally weighted over the assets that have a bar at t (`valid`); an asset
  outside its history is left out of that bar's mean, never held flat
  (`portfolio_returns`). Its simple return `R_t` is the mean of their PnL.
- Wealth grows by `log1p(R_t)` (`log_growth`); the equity curve is `prod(1 + R_t)`
  (`wealth`). A bar with `R_t <= -1` (a short in an asset that more than doubled) ruins
  the book: wealth is 0 from there on.

`a · r` in log space (the old convention) overstates a short by about `r²` a bar and
understates a partial long; the mean of per-asset log PnL is not the log of the
portfolio's return. Neither is used anywhere.

Every function takes numpy or JAX arrays and answers in the same kind (jitted callers pass
JAX arrays; the backtest passes float64 numpy arrays).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def _xp(*arrays):
    return jnp if any(isinstance(a, jax.Array) for a in arrays) else np


def bps(cost_bps: float) -> float:
    """Cost per side as a fraction of the traded notional: 5 bps -> 0.0005."""
    return float(cost_bps) * 1e-4


def simple(log_returns):
    """Simple returns `e^r - 1` of log returns `r [...]` (computed as expm1: exact for small r)."""
    return _xp(log_returns).expm1(log_returns)


def asset_pnl(positions, simple_returns, previous, *, cost: float):
    """Per-asset simple PnL of holding `positions [...]` over bars whose simple returns are
    `simple_returns [...]`, having held `previous [...]` before: `a · R - cost · |a - a_prev|`.
    Positions are clipped to [-1, 1] (so must `previous` be). Arrays broadcast."""
    xp = _xp(positions, simple_returns, previous)
    a = xp.clip(positions, -1.0, 1.0)
    return a * simple_returns - cost * xp.abs(a - previous)


def path_pnl(positions, simple_returns, position0, *, cost: float):
    """`asset_pnl` along a path: `positions [..., H]` held over bars 1..H, `simple_returns
    [..., H]`, `position0 [...]` held before bar 1 -> `[..., H]`; leading dims broadcast."""
    xp = _xp(positions, simple_returns, position0)
    a = xp.clip(positions, -1.0, 1.0)
    first = xp.broadcast_to(xp.asarray(position0)[..., None], (*a.shape[:-1], 1))
    prev = xp.concatenate([first, a[..., :-1]], axis=-1)
    return asset_pnl(a, simple_returns, prev, cost=cost)


def rollout(positions: np.ndarray, simple_returns: np.ndarray, *, cost: float, position0: float | np.ndarray = 0.0
            ) -> tuple[np.ndarray, np.ndarray]:
    """Backtest form (float64, time first): `positions [T, A]` chosen at bars 0..T-1 and held
    over the bar after each, `simple_returns [T, A]` of those bars -> `(pnl [T, A], costs
    [T, A])`, PnL net of costs. The same arithmetic as `path_pnl`, time on the first axis."""
    a = np.clip(np.asarray(positions, np.float64), -1.0, 1.0)
    prev = np.concatenate([np.broadcast_to(np.clip(position0, -1.0, 1.0), a.shape[1:])[None], a[:-1]], axis=0)
    costs = cost * np.abs(a - prev)
    pnl = asset_pnl(a, np.asarray(simple_returns, np.float64), prev, cost=cost)
    return np.asarray(pnl), costs  # numpy in, numpy out: no copy


def portfolio_returns(pnl: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Equal-weight portfolio simple return per bar: the mean of `pnl [T, A]` over the assets
    `valid [T, A]` at each bar -> `[T]` (0 at a bar where no asset trades)."""
    valid = np.asarray(valid, bool)
    count = valid.sum(1)
    total = np.where(valid, pnl, 0.0).sum(1)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def log_growth(returns: np.ndarray) -> np.ndarray:
    """Log growth of wealth per bar, `log1p(R_t)`, `[T]`; -inf at a ruinous bar (R <= -1)."""
    r = np.asarray(returns, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r > -1.0, np.log1p(np.maximum(r, -1.0 + 1e-300)), -np.inf)


def wealth(returns: np.ndarray) -> np.ndarray:
    """Equity curve `W_t = prod_{s<=t} (1 + R_s)` from `returns [T]` with W_{-1} = 1 -> `[T]`;
    0 from the first ruinous bar (R <= -1) on."""
    r = np.asarray(returns, np.float64)
    return np.cumprod(np.maximum(1.0 + r, 0.0))


def sharpe(returns, *, periods_per_year: float) -> float:
    """The annualised Sharpe ratio of simple returns `[T]`: mean / std(ddof=1) ·
    sqrt(periods_per_year); 0 when T < 2 or the returns are constant (std 0). The one
    definition: the agent's metrics, the backtests and the dataset's oracle use it."""
    x = np.asarray(returns, np.float64)
    if x.size < 2 or np.ptp(x) == 0.0:
        return 0.0
    return float(x.mean() / x.std(ddof=1) * np.sqrt(periods_per_year))
