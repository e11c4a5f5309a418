"""Stylised facts of log returns, to set a world model's dreamed paths beside the real ones
(pure numpy, no JAX).

Conventions: ``returns`` is ``[P, L]``: P paths of L log returns each. A real series is cut
into paths of the same length (`windows`), or passed as one row ``[1, L]``. NaN marks a
missing bar and is ignored everywhere (a missing bar counts as a zero return for the price
path of the drawdown). Every figure is a plain finite Python float, so `Facts` goes into
TOML as it is.

Definitions (Cont 2001, "Empirical properties of asset returns: stylized facts and
statistical issues", Quantitative Finance 1(2); Hill 1975, "A simple general approach to
inference about the tail of a distribution", Annals of Statistics 3(5)). Let ``x`` be ``r``
minus its path's mean (finite bars only), pooled over paths:

- excess kurtosis: Fisher's m4 / m2^2 - 3 with the biased pooled moments of ``x``
  (0 for a Gaussian; heavy tails > 0).
- Hill tail index: with the n finite non-zero |r| pooled and sorted descending
  ``a_(1) >= a_(2) >= ...``, k = max(1, floor(hill_fraction * n)) and the threshold the
  (k+1)-th largest value ``a_(k+1)``:  1/alpha = (1/k) sum_{i<=k} log(a_(i) / a_(k+1)).
  alpha is ~3 for daily stock returns; a Gaussian's reads large (no power-law tail).
- autocorrelation at lag k (``acf_returns`` of ``x``, ``acf_abs`` of ``y`` = |r| minus its
  path's mean): the mean of ``x_t x_{t+k}`` over every pair inside a path where both bars are
  finite, divided by the pooled mean of ``x_t^2``. Normalising by the pairs' count (not by
  L) keeps short paths from shrinking the value toward 0.
- leverage at lag k: L(k) = corr(r_t, r_{t+k}^2), pooled the same way: the mean of
  ``x_t s_{t+k}`` over pairs divided by sqrt(mean x^2 * mean s^2), ``s`` = x^2 minus its
  path's mean. Negative when volatility rises after falls (Black 1976; Bouchaud et al. 2001).
- maximum drawdown of a path: max_t 1 - p_t / max_{s<=t} p_s of the price
  p = exp(cumsum r) started at p = 1, a fraction in [0, 1]; the median and 90th percentile
  over paths are reported.
A figure with nothing to estimate it from (constant returns, no pair at a lag, no tail) is 0.0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from strates.core.table import Table, table


@dataclasses.dataclass(frozen=True)
class Facts:
    """Stylised facts of a set of return paths (definitions in the module docstring).

    ``acf_returns``, ``acf_abs`` and ``leverage`` hold one value per lag in ``lags``;
    ``paths`` is P, ``bars`` the number of finite returns pooled over paths (<= P * L);
    ``hill_fraction`` the share of the largest |r| the tail index is estimated from.
    """

    excess_kurtosis: float
    hill_tail: float
    acf_returns: tuple[float, ...]
    acf_abs: tuple[float, ...]
    leverage: tuple[float, ...]
    drawdown_median: float
    drawdown_p90: float
    paths: int
    bars: int
    lags: tuple[int, ...]
    hill_fraction: float

    def to_dict(self) -> dict[str, Any]:
        """Plain values for TOML / JSON (tuples stay tuples; `from_dict` reads lists too)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Facts:
        values = {f.name: d[f.name] for f in dataclasses.fields(cls)}
        for name in ("acf_returns", "acf_abs", "leverage"):
            values[name] = tuple(float(v) for v in values[name])
        values["lags"] = tuple(int(v) for v in values["lags"])
        return cls(**values)


def _demean(x: np.ndarray) -> np.ndarray:
    """``x`` [P, L] minus each row's mean over its finite entries (NaN stays NaN)."""
    finite = np.isfinite(x)
    count = finite.sum(axis=1, keepdims=True)
    mean = np.where(finite, x, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
    return x - mean


def _pooled_lag_mean(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """Mean of ``a[:, t] * b[:, t + lag]`` over every pair with both finite; 0.0 if none."""
    prod = a[:, :-lag] * b[:, lag:] if lag > 0 else a * b
    ok = np.isfinite(prod)
    return float(prod[ok].mean()) if ok.any() else 0.0


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0.0 and math.isfinite(num / den) else 0.0


def excess_kurtosis(returns: np.ndarray) -> float:
    """Fisher excess kurtosis of ``returns`` [P, L] de-meaned per path, moments pooled."""
    x = _demean(np.asarray(returns, dtype=np.float64))
    x = x[np.isfinite(x)]
    m2 = float(np.mean(x**2)) if x.size else 0.0
    return _ratio(float(np.mean(x**4)), m2**2) - 3.0 if m2 > 0.0 else 0.0


def hill_tail(returns: np.ndarray, *, fraction: float = 0.05) -> float:
    """Hill (1975) tail index alpha of |r| over the top ``fraction`` of the pooled finite,
    non-zero |r| of ``returns`` (any shape); the threshold is the (k+1)-th largest value."""
    a = np.abs(np.asarray(returns, dtype=np.float64).reshape(-1))
    a = np.sort(a[np.isfinite(a) & (a > 0.0)])[::-1]
    k = max(1, math.floor(fraction * a.size))
    if a.size < k + 1:
        return 0.0
    inv_alpha = float(np.mean(np.log(a[:k] / a[k])))
    return _ratio(1.0, inv_alpha)


def max_drawdowns(returns: np.ndarray) -> np.ndarray:
    """Maximum drawdown of each path's price exp(cumsum r) from p = 1: ``[P]`` in [0, 1]."""
    r = np.asarray(returns, dtype=np.float64)
    log_price = np.cumsum(np.where(np.isfinite(r), r, 0.0), axis=1)
    log_price = np.concatenate([np.zeros((r.shape[0], 1)), log_price], axis=1)
    peak = np.maximum.accumulate(log_price, axis=1)
    return np.clip(-np.expm1(log_price - peak).min(axis=1), 0.0, 1.0) if r.shape[1] else np.zeros(r.shape[0])


def facts(returns: np.ndarray, *, lags: Sequence[int] = (1, 5, 10, 20), hill_fraction: float = 0.05) -> Facts:
    """The stylised facts of ``returns`` [P, L] (log returns, NaN for a missing bar).

    Raises ValueError for a shape other than [P, L], a lag outside 1..L-1, a
    ``hill_fraction`` outside (0, 1), or no finite return at all.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must have shape [P, L] (paths x bars), got {r.shape}; "
                         "pass a single series as returns[None, :]")
    lags = tuple(int(k) for k in lags)
    bad = [k for k in lags if not 1 <= k < r.shape[1]]
    if bad:
        raise ValueError(f"lags {bad} need paths longer than the lag: got paths of L={r.shape[1]} bars; "
                         "use longer paths or smaller lags")
    if not 0.0 < hill_fraction < 1.0:
        raise ValueError(f"hill_fraction must be in (0, 1), got {hill_fraction}")
    finite = np.isfinite(r)
    if not finite.any():
        raise ValueError(f"returns [{r.shape[0]}, {r.shape[1]}] hold no finite value")

    x = _demean(r)
    y = _demean(np.where(finite, np.abs(r), np.nan))
    s = _demean(x**2)
    vx, vy, vs = (float(np.mean(v[finite] ** 2)) for v in (x, y, s))
    dd = max_drawdowns(r)
    return Facts(
        excess_kurtosis=excess_kurtosis(r),
        hill_tail=hill_tail(r, fraction=hill_fraction),
        acf_returns=tuple(_ratio(_pooled_lag_mean(x, x, k), vx) for k in lags),
        acf_abs=tuple(_ratio(_pooled_lag_mean(y, y, k), vy) for k in lags),
        leverage=tuple(_ratio(_pooled_lag_mean(x, s, k), math.sqrt(vx * vs)) for k in lags),
        drawdown_median=float(np.quantile(dd, 0.5)),
        drawdown_p90=float(np.quantile(dd, 0.9)),
        paths=int(r.shape[0]),
        bars=int(finite.sum()),
        lags=lags,
        hill_fraction=float(hill_fraction),
    )


def windows(series: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Cut per-asset log-return series (each [T_a]) into non-overlapping paths [P, length],
    from each series' start; a remainder shorter than ``length`` at its end is dropped.
    Paths never span two assets. Raises ValueError when no series holds one whole path."""
    if length < 1:
        raise ValueError(f"length must be >= 1, got {length}")
    paths = []
    for s in series:
        a = np.asarray(s, dtype=np.float64).reshape(-1)
        n = a.size // length
        paths.append(a[: n * length].reshape(n, length))
    if not paths or sum(p.shape[0] for p in paths) == 0:
        longest = max((np.asarray(s).size for s in series), default=0)
        raise ValueError(f"no series holds a path of {length} bars (longest: {longest}); use a shorter length")
    return np.concatenate(paths, axis=0)


def facts_table(real: Facts, dreamed: Facts, *, title: str = "Stylised facts: real vs dreamed") -> Table:
    """One row per fact (one per lag for the autocorrelations and leverage): fact | real | dreamed."""
    if real.lags != dreamed.lags:
        raise ValueError(f"real and dreamed facts must share their lags, got {real.lags} and {dreamed.lags}")

    def num(a: float, b: float, fmt: str = "+.3f") -> tuple[str, str]:
        return f"{a:{fmt}}", f"{b:{fmt}}"

    rows = [("excess kurtosis", *num(real.excess_kurtosis, dreamed.excess_kurtosis)),
            ("Hill tail index α", *num(real.hill_tail, dreamed.hill_tail, ".2f"))]
    for label, key in (("acf r", "acf_returns"), ("acf |r|", "acf_abs"), ("leverage", "leverage")):
        for i, k in enumerate(real.lags):
            rows.append((f"{label}, lag {k}", *num(getattr(real, key)[i], getattr(dreamed, key)[i])))
    rows += [("max drawdown, median", *num(real.drawdown_median, dreamed.drawdown_median, ".1%")),
             ("max drawdown, p90", *num(real.drawdown_p90, dreamed.drawdown_p90, ".1%")),
             ("paths", *num(real.paths, dreamed.paths, ",")),
             ("returns", *num(real.bars, dreamed.bars, ","))]
    fractions = {real.hill_fraction, dreamed.hill_fraction}
    share = ", ".join(f"{f:.0%}" for f in sorted(fractions))
    caption = (
        "Stylised facts of log returns (Cont 2001), NaN bars ignored, returns de-meaned per path. "
        "Excess kurtosis: fourth moment over squared variance minus 3, pooled (0 for a Gaussian). "
        f"Hill tail index α: Hill's (1975) estimator on the largest {share} of |r| (lower means heavier tails). "
        "acf r: autocorrelation of returns at the lag, pooled over pairs inside each path (≈ 0 in liquid markets). "
        "acf |r|: the same for absolute returns (> 0: volatility clustering). "
        "Leverage: corr(r_t, r_{t+k}²) (< 0: volatility rises after falls). "
        "Max drawdown: the largest fall of the price exp(cumsum r) from its running peak in each path, "
        "median and 90th percentile over paths. Returns: finite returns counted over all paths."
    )
    return table(("fact", "real", "dreamed"), rows, caption, title=title)
