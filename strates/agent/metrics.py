"""Backtest metrics on per-bar simple portfolio returns (pure numpy + scipy, no JAX).

Conventions: ``pnl`` is the strategy's per-bar *simple* return ``R_t`` net of costs, the
equal-weight portfolio return of `strates.core.accounting`, shape ``[T]``; ``positions`` is
the position held over each bar, shape ``[T, A]`` (or ``[T]`` for one asset). Annualisation
uses ``periods_per_year`` bars a year: the dataset's measured figure (``annual_factor`` is
the fallback for datasets that predate it). Every function returns plain Python floats
that are finite, so results can go into TOML.

Formulas
--------
Sharpe = mean(R) / std(R, ddof=1) * sqrt(ppy). Sortino = mean(R) / DD * sqrt(ppy), with the
downside deviation DD = sqrt(mean(min(R, 0)^2)) over all T bars (target 0). Both are 0.0
when their denominator is zero (constant PnL, or no losing bar for Sortino) instead of
+-inf.

Wealth W_t = prod(1 + R_s) (`accounting.wealth`, W_{-1} = 1). Total return W_T - 1; annual
return the compound annual growth rate exp(mean(log1p R) * ppy) - 1 (>= -100%); max
drawdown max_t 1 - W_t / max_{s<=t} W_s with W_{-1} = 1 included, a fraction in [0, 1].

Probabilistic Sharpe ratio (Bailey & Lopez de Prado 2012, "The Sharpe ratio efficient
frontier", J. of Risk 15(2)), with the per-bar (not annualised) sr, sample skewness g3 and
non-excess kurtosis g4 (biased moments, as ``scipy.stats.skew/kurtosis(bias=True)``)::

    PSR(sr*) = Phi( (sr - sr*) sqrt(T - 1) / sqrt(1 - g3 sr + (g4 - 1)/4 sr^2) )

Deflated Sharpe ratio (Bailey & Lopez de Prado 2014, "The Deflated Sharpe Ratio", J. of
Portfolio Management 40(5)): DSR = PSR(SR0), SR0 the expected maximum Sharpe of N trials
whose Sharpes have variance V (gamma = Euler-Mascheroni constant)::

    SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

V is the sample variance of the trials' per-bar Sharpes when at least two are given, else the
variance of the Sharpe estimator under the null (sr = 0, normal returns): 1 / (T - 1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import ndtr, ndtri

from strates.core import accounting

EULER_GAMMA = 0.5772156649015329
SECONDS_PER_YEAR = 365.25 * 86400.0


def _pnl(pnl) -> np.ndarray:
    x = np.asarray(pnl, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"pnl must have shape [T], got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("pnl must be finite")
    return x


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and std(ddof=1) of ``x`` [T]; std is exactly 0.0 for T < 2 or constant ``x``."""
    if x.size == 0:
        return 0.0, 0.0
    mean = float(x.mean())
    if x.size < 2 or np.ptp(x) == 0.0:
        return mean, 0.0
    return mean, float(x.std(ddof=1))


def annual_factor(interval_seconds: float) -> float:
    """Bars per year for bars of ``interval_seconds`` (365.25-day year)."""
    if interval_seconds <= 0:
        raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
    return SECONDS_PER_YEAR / float(interval_seconds)


def sharpe(pnl, *, periods_per_year: float) -> float:
    """Annualised Sharpe of ``pnl`` [T] (`strates.core.accounting.sharpe`: mean /
    std(ddof=1) * sqrt(ppy), 0.0 if std == 0 or T < 2), after checking ``pnl``."""
    return accounting.sharpe(_pnl(pnl), periods_per_year=periods_per_year)


def sortino(pnl, *, periods_per_year: float) -> float:
    """Annualised Sortino of ``pnl`` [T] with target 0 (downside deviation over all T bars).

    Returns 0.0 when the downside deviation is zero (no losing bar, or T == 0), not +inf, so
    the value stays finite.
    """
    x = _pnl(pnl)
    if x.size == 0:
        return 0.0
    dd = math.sqrt(float(np.mean(np.minimum(x, 0.0) ** 2)))
    return 0.0 if dd == 0.0 else float(x.mean()) / dd * math.sqrt(periods_per_year)


def max_drawdown(pnl) -> float:
    """Largest peak-to-trough loss of wealth prod(1 + pnl) from simple returns ``pnl`` [T],
    start W = 1. Returns a fraction in [0, 1] (1 after ruin); 0.0 for a never-falling path."""
    equity = np.concatenate([[1.0], accounting.wealth(_pnl(pnl))])
    peak = np.maximum.accumulate(equity)
    return float((1.0 - equity / peak).max())


def annual_return(pnl, *, periods_per_year: float) -> float:
    """Compound annual growth rate of simple returns ``pnl`` [T]: exp(mean(log1p R) ppy) - 1,
    in [-1, inf); -1.0 after ruin, 0.0 for T == 0."""
    x = _pnl(pnl)
    if x.size == 0:
        return 0.0
    g = accounting.log_growth(x)
    if not np.all(np.isfinite(g)):
        return -1.0
    return float(np.expm1(min(g.mean() * periods_per_year, 700.0)))


def turnover(positions, *, position0: float | Sequence[float] | np.ndarray = 0.0) -> float:
    """Mean per-asset one-way turnover per bar.

    ``positions`` [T, A] or [T]; ``position0`` scalar or [A], the position before bar 0.
    Returns mean_t (sum_a |pos[t, a] - pos[t-1, a]|) / A, with pos[-1] = position0.
    """
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2:
        raise ValueError(f"positions must have shape [T, A] or [T], got {p.shape}")
    if p.shape[0] == 0 or p.shape[1] == 0:
        return 0.0
    p0 = np.broadcast_to(np.asarray(position0, dtype=np.float64), p.shape[1:])
    delta = np.diff(p, axis=0, prepend=p0[None, :])
    return float(np.abs(delta).mean())


def hit_rate(pnl, *, active=None) -> float:
    """Share of active bars with pnl > 0, ``pnl`` [T], ``active`` [T] bool (default pnl != 0).

    Returns 0.0 when no bar is active.
    """
    x = _pnl(pnl)
    mask = x != 0.0 if active is None else np.asarray(active, dtype=bool)
    if mask.shape != x.shape:
        raise ValueError(f"active must have shape {x.shape}, got {mask.shape}")
    n = int(mask.sum())
    return 0.0 if n == 0 else float((x[mask] > 0.0).sum()) / n


def probabilistic_sharpe(pnl, *, sr_benchmark: float = 0.0) -> float:
    """PSR: probability that the true per-bar Sharpe of ``pnl`` [T] exceeds ``sr_benchmark``.

    ``sr_benchmark`` is per bar (not annualised). Returns 0.5 if std == 0 or T < 2.
    """
    x = _pnl(pnl)
    mean, std = _mean_std(x)
    if std == 0.0:
        return 0.5
    sr = mean / std
    c = x - mean
    m2 = float(np.mean(c**2))
    g3 = float(np.mean(c**3)) / m2**1.5
    g4 = float(np.mean(c**4)) / m2**2
    denom = math.sqrt(max(1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2, 1e-12))
    return float(ndtr((sr - sr_benchmark) * math.sqrt(x.size - 1) / denom))


def expected_max_sharpe(n_trials: int, *, variance: float) -> float:
    """Expected maximum of ``n_trials`` Sharpes with zero mean and ``variance`` (SR0, per bar).

    Returns 0.0 for one trial; raises ValueError for n_trials < 1 or variance < 0.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if variance < 0:
        raise ValueError(f"variance must be >= 0, got {variance}")
    if n_trials == 1:
        return 0.0
    z = (1.0 - EULER_GAMMA) * ndtri(1.0 - 1.0 / n_trials) + EULER_GAMMA * ndtri(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(variance) * z)


def deflated_sharpe(
    pnl, *, n_trials: int, trial_sharpes: Sequence[float] | None = None
) -> dict[str, float | int | str]:
    """Deflated Sharpe ratio of ``pnl`` [T] after ``n_trials`` tried strategies.

    ``trial_sharpes`` [K]: per-bar Sharpes of the trials; with K >= 2 their variance (ddof=1)
    is used, else the null variance 1/(T-1) (1.0 when T < 2).
    Returns {"dsr", "sr0" (per bar), "n_trials", "variance", "variance_source"}.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    x = _pnl(pnl)
    trials = None if trial_sharpes is None else np.asarray(trial_sharpes, dtype=np.float64)
    if trials is not None and trials.size >= 2:
        if not np.all(np.isfinite(trials)):
            raise ValueError("trial_sharpes must be finite")
        variance, source = float(trials.reshape(-1).var(ddof=1)), "trials"
    else:
        variance, source = 1.0 / max(x.size - 1, 1), "null"
    sr0 = expected_max_sharpe(n_trials, variance=variance)
    return {
        "dsr": probabilistic_sharpe(x, sr_benchmark=sr0),
        "sr0": sr0,
        "n_trials": int(n_trials),
        "variance": variance,
        "variance_source": source,
    }


def summary(
    pnl,
    positions,
    *,
    periods_per_year: float,
    n_trials: int = 1,
    trial_sharpes: Sequence[float] | None = None,
    position0=0.0,
) -> dict[str, float | int]:
    """All metrics for ``pnl`` [T] and ``positions`` [T, A] (or [T]) as finite Python numbers.

    Keys: total_return (W_T - 1), annual_return (CAGR), annual_vol, sharpe, sortino,
    max_drawdown, turnover, hit_rate (over bars with any nonzero position), dsr,
    sr0_annual (SR0 * sqrt(ppy)), bars (int T).
    """
    x = _pnl(pnl)
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[0] != x.size:
        raise ValueError(f"positions must have shape [{x.size}, A] or [{x.size}], got {p.shape}")
    active = p != 0.0 if p.ndim == 1 else np.any(p != 0.0, axis=1)
    _, std = _mean_std(x)
    dsr = deflated_sharpe(x, n_trials=n_trials, trial_sharpes=trial_sharpes)
    out = {
        "total_return": float(accounting.wealth(x)[-1] - 1.0) if x.size else 0.0,
        "annual_return": annual_return(x, periods_per_year=periods_per_year),
        "annual_vol": std * math.sqrt(periods_per_year),
        "sharpe": sharpe(x, periods_per_year=periods_per_year),
        "sortino": sortino(x, periods_per_year=periods_per_year),
        "max_drawdown": max_drawdown(x),
        "turnover": turnover(p, position0=position0),
        "hit_rate": hit_rate(x, active=active),
        "dsr": float(dsr["dsr"]),
        "sr0_annual": float(dsr["sr0"]) * math.sqrt(periods_per_year),
    }
    out = {k: float(v) for k, v in out.items()}
    out["bars"] = int(x.size)
    return out
