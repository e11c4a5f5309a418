"""GARCH(1,1) with Student-t innovations: a volatility-clustering baseline of future return paths.

Time convention (the same as ``strates.cfm.baselines``): ``times[s] = t`` is the index of the
last *observed* return ``r_t``; the forecast is for ``r_{t+1}, ..., r_{t+H}``, using
``returns[: t + 1]`` only.

Model (Bollerslev 1986, J. Econometrics 31; Student-t errors, Bollerslev 1987, REStat 69)::

    r_i = mu + e_i,   e_i = sigma_i z_i,   z_i ~ t_nu scaled to unit variance
    sigma^2_{i+1} = omega + alpha e_i^2 + beta sigma^2_i

All parameters are in raw return units (``mu`` in returns, ``omega`` in squared returns).
A unit-variance t draw is ``z = T sqrt((nu - 2) / nu)`` with ``T ~ t_nu``, so ``nu > 2``.

Fitting (`fit_garch_t`): maximum likelihood by ``arch`` (``arch_model(mean="Constant",
vol="GARCH", p=1, q=1, dist="t")``) on the sample divided by its own std ``s`` (ddof = 0), so
the optimiser sees O(1) numbers; parameters are mapped back with ``mu = mu_y s``,
``omega = omega_y s^2`` (``alpha, beta, nu`` are scale-free). Guards, each recorded as
``converged = False`` (the parameters are then not arch's optimum):

- the fit raises, returns non-finite values, or reports a failed optimisation: fall back to
  ``alpha = 0.05, beta = 0.90, nu = 8``, ``mu`` = the sample mean and ``omega`` such that the
  unconditional variance ``omega / (1 - alpha - beta)`` equals the sample variance ``s^2``;
- persistence ``alpha + beta > 0.999`` (the SLSQP optimum often sits on the integrated
  boundary ``alpha + beta = 1``, where the unconditional variance is infinite): scale
  ``alpha, beta`` by the same factor to sum to 0.999 and set ``omega = 0.001 s^2`` (unconditional
  variance = sample variance);
- ``omega`` below ``1e-3 s^2 (1 - alpha - beta)`` (the fitted unconditional variance under 0.1%
  of the sample's, e.g. ``omega = 0``, which lets the variance decay to zero): raised to it.

Filtering (`conditional_variance`): the recursion runs from ``fit.start`` with the initial
variance ``sigma^2_start`` = the fit sample's mean squared residual ``mean((r_i - mu)^2)``
(not arch's exponential backcast); one pass is a linear IIR filter (``scipy.signal.lfilter``).

Forecasting (`garch_t_paths`): causal refits at ``p = k refit_every - 1`` (k >= 1), each on
``returns[max(0, p + 1 - window) : p + 1]`` (expanding when ``window`` is None); the forecast
at t uses the last refit point ``p <= t``, filters the variance through ``r_t`` and simulates.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from strates.cfm.baselines import _check_times, _rng

MIN_FIT = 20  # fewest returns fit_garch_t accepts
MAX_PERSISTENCE = 0.999
_FALLBACK_ALPHA, _FALLBACK_BETA, _FALLBACK_NU = 0.05, 0.90, 8.0
_OMEGA_FLOOR = 1e-3  # fitted unconditional variance >= this share of the sample variance
_U_MIN = 2.0**-54  # uniforms are clipped below so the t quantile stays finite


@dataclasses.dataclass(frozen=True)
class GarchFit:
    """GARCH(1,1)-t parameters in raw return units, fitted on ``returns[start:end]``.

    ``mu`` (returns), ``omega`` (squared returns), ``alpha``, ``beta`` (alpha + beta <= 0.999),
    ``nu`` (> 2, degrees of freedom of the unit-variance t). ``converged``: False when arch's
    optimum was not used as is (see the module docstring).
    """

    mu: float
    omega: float
    alpha: float
    beta: float
    nu: float
    start: int
    end: int
    converged: bool


def _arch_fit(y: np.ndarray) -> tuple[np.ndarray, bool]:
    """arch's MLE on standardised returns ``y [T]``: ``[mu, omega, alpha, beta, nu]`` and whether
    the optimiser reported success. Warnings are recorded and dropped (arch also edits the global
    warning filters inside ``fit``; ``catch_warnings`` restores them)."""
    from arch import arch_model
    from arch.utility.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist="t", rescale=False)
        res = model.fit(disp="off", show_warning=False)
    p = res.params
    params = np.array([p["mu"], p["omega"], p["alpha[1]"], p["beta[1]"], p["nu"]], dtype=np.float64)
    ok = res.convergence_flag == 0 and not any(issubclass(w.category, ConvergenceWarning) for w in caught)
    return params, bool(ok)


def fit_garch_t(returns: np.ndarray, *, start: int = 0) -> GarchFit:
    """Fit GARCH(1,1)-t on ``returns[start:]`` (at least `MIN_FIT` finite returns, not constant).

    Returns a `GarchFit` with ``end = len(returns)``. Never emits warnings; see the module
    docstring for the standardisation and the fallbacks (``converged = False``).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"fit_garch_t wants 1-d returns, got {r.shape}")
    if not 0 <= start <= r.size:
        raise ValueError(f"fit_garch_t start must lie in [0, {r.size}], got {start}")
    x = r[start:]
    if x.size < MIN_FIT:
        raise ValueError(f"fit_garch_t needs at least {MIN_FIT} returns, got {x.size} (returns[{start}:{r.size}])")
    if not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise ValueError(f"fit_garch_t: returns[{start}:{r.size}] holds {bad} non-finite values")
    s = float(x.std())
    if s == 0.0:
        raise ValueError(f"fit_garch_t: returns[{start}:{r.size}] are constant; a GARCH cannot be fitted")
    var = s * s
    try:
        params, ok = _arch_fit(x / s)
    except (ValueError, ArithmeticError, RuntimeError):
        params, ok = np.full(5, np.nan), False
    mu, omega = float(params[0] * s), float(params[1] * var)
    alpha, beta, nu = float(params[2]), float(params[3]), float(params[4])
    if not (ok and np.isfinite(params).all() and alpha >= 0 and beta >= 0 and nu > 2):
        ok = False
        mu, alpha, beta, nu = float(x.mean()), _FALLBACK_ALPHA, _FALLBACK_BETA, _FALLBACK_NU
        omega = var * (1.0 - alpha - beta)
    if alpha + beta > MAX_PERSISTENCE:
        ok = False
        alpha, beta = (v * MAX_PERSISTENCE / (alpha + beta) for v in (alpha, beta))
        omega = var * (1.0 - MAX_PERSISTENCE)
    floor = _OMEGA_FLOOR * var * (1.0 - alpha - beta)
    if omega < floor:
        ok, omega = False, floor
    return GarchFit(mu, omega, alpha, beta, nu, start=start, end=r.size, converged=ok)


def _variance_path(returns: np.ndarray, fit: GarchFit, stop: int) -> np.ndarray:
    """``[stop - fit.start]``: entry i is sigma^2_{fit.start + i + 1}, filtered through
    ``returns[fit.start : fit.start + i + 1]``. One O(T) pass of the recursion as the IIR filter
    v_{i+1} = beta v_i + (omega + alpha e_i^2), started from v_start = the fit sample's mean squared
    residual ``mean((returns[fit.start : fit.end] - mu)^2)``."""
    from scipy.signal import lfilter

    if fit.end > returns.size:
        raise ValueError(f"the fit's sample ends at {fit.end}, past the {returns.size} returns given")
    var0 = float(np.mean((returns[fit.start:fit.end] - fit.mu) ** 2))
    e = returns[fit.start:stop] - fit.mu
    drive = fit.omega + fit.alpha * e * e
    out, _ = lfilter([1.0], [1.0, -fit.beta], drive, zi=[fit.beta * var0])
    return np.asarray(out, dtype=np.float64)


def conditional_variance(returns: np.ndarray, fit: GarchFit, *, upto: int) -> float:
    """sigma^2_{upto+1}: the one-step variance forecast of ``r_{upto+1}`` given ``returns[: upto + 1]``.

    Filters ``returns[fit.start : upto + 1]`` with the fit's parameters from the initial variance
    sigma^2_start = the fit sample's mean squared residual ``mean((returns[fit.start : fit.end] - mu)^2)``
    (not arch's exponential backcast). Causal only if ``fit.end <= upto + 1``.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1 or not fit.start <= upto < r.size:
        raise ValueError(f"conditional_variance: upto must lie in [fit.start={fit.start}, {r.size - 1}], got {upto}")
    return float(_variance_path(r, fit, upto + 1)[-1])


def _fit_sample(t: int, *, refit_every: int, window: int | None, min_history: int) -> tuple[int, int]:
    """``(start, end)`` of the sample the forecast at t is fitted on (see `garch_t_paths`)."""
    p = ((t + 1) // refit_every) * refit_every - 1  # last refit point <= t (-1: none)
    if p >= 0:
        lo = 0 if window is None else max(0, p + 1 - window)
        if p + 1 - lo >= min_history:
            return lo, p + 1
    if t + 1 < MIN_FIT:
        raise ValueError(f"garch_t_paths: no forecast at t={t} (only {t + 1} observed returns). A forecast uses the "
                         f"last refit point p = k*refit_every - 1 <= t (refit_every={refit_every}) whose window holds "
                         f">= min_history={min_history} returns, else a fit on the returns up to t, which needs "
                         f">= {MIN_FIT}; pass times >= {MIN_FIT - 1}")
    return (0 if window is None else max(0, t + 1 - window)), t + 1


def state_fits(returns, times, *, refit_every: int = 250, window: int | None = None,
               min_history: int = 100) -> list[GarchFit]:
    """The `GarchFit` each state of ``times [S]`` is forecast with, one fit per distinct sample
    (the same object for the states sharing it). Rule (causal: every sample ends at or before t):

    - the last refit point ``p = k refit_every - 1 <= t`` (k >= 1), fitted on
      ``returns[max(0, p + 1 - window) : p + 1]`` (``returns[: p + 1]`` when ``window`` is None),
      if that holds at least ``min_history`` returns;
    - otherwise a fit on ``returns[max(0, t + 1 - window) : t + 1]`` if ``t + 1 >= MIN_FIT``
      (``returns[: t + 1]`` when ``window`` is None); otherwise ValueError.
    """
    r, t = _checked(returns, times, refit_every=refit_every, window=window, min_history=min_history)
    fits, group = _state_fits(r, t, refit_every=refit_every, window=window, min_history=min_history)
    return [fits[g] for g in group.tolist()]


def _checked(returns, times, *, refit_every: int, window: int | None,
             min_history: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-d, got {r.shape}")
    if refit_every < 1 or min_history < MIN_FIT:
        raise ValueError(f"refit_every must be >= 1 and min_history >= {MIN_FIT}, got {refit_every}, {min_history}")
    if window is not None and window < min_history:
        raise ValueError(f"window ({window}) must be None or >= min_history ({min_history})")
    t = _check_times(times, r.size, min_history=1)
    if t.size and not np.isfinite(r[: t.max() + 1]).all():
        raise ValueError(f"returns[: {t.max() + 1}] (the history of the latest state) holds non-finite values")
    return r, t


def _state_fits(r: np.ndarray, t: np.ndarray, *, refit_every: int, window: int | None,
                min_history: int) -> tuple[list[GarchFit], np.ndarray]:
    """The distinct fits (in order of first use) and the index of each state's fit ``[S]``."""
    index: dict[tuple[int, int], int] = {}
    group = np.empty(t.size, dtype=np.int64)
    for s, ts in enumerate(t.tolist()):
        key = _fit_sample(ts, refit_every=refit_every, window=window, min_history=min_history)
        group[s] = index.setdefault(key, len(index))
    fits = [fit_garch_t(r[:end], start=start) for start, end in index]
    return fits, group


def garch_t_paths(returns, times, *, n: int, horizon: int, refit_every: int = 250, window: int | None = None,
                  min_history: int = 100, seed=None) -> np.ndarray:
    """GARCH(1,1)-t return paths ``[S, n, horizon]`` for the states ``times [S]`` (any order).

    For ``t = times[s]``: the fit of `state_fits` (one arch fit per distinct sample, reused by
    every state using it), the variance filtered through ``r_t`` (one pass per fit up to its
    latest state, then indexed), and ``n`` simulated paths::

        r_{t+k} = mu + sigma_{t+k} z_k,  sigma^2_{t+k+1} = omega + alpha (r_{t+k} - mu)^2 + beta sigma^2_{t+k}

    with ``sigma^2_{t+1}`` = `conditional_variance` at t and ``z_k`` unit-variance t_nu draws.
    Randomness: one draw of ``[S, n, horizon]`` uniforms from ``seed`` (int, None or Generator),
    mapped through the t quantile, so a state's paths depend only on ``returns[: t + 1]``, the
    seed and its position s, never on other states' data.
    """
    if n < 1 or horizon < 1:
        raise ValueError(f"n and horizon must be >= 1, got {n}, {horizon}")
    r, t = _checked(returns, times, refit_every=refit_every, window=window, min_history=min_history)
    fits, group = _state_fits(r, t, refit_every=refit_every, window=window, min_history=min_history)
    var1 = np.empty(t.size)
    for g, fit in enumerate(fits):
        members = np.flatnonzero(group == g)
        path = _variance_path(r, fit, int(t[members].max()) + 1)  # one pass up to the fit's latest state
        var1[members] = path[t[members] - fit.start]
    mu, omega, alpha, beta, nu = (np.array([getattr(f, k) for f in fits])[group, None]
                                  for k in ("mu", "omega", "alpha", "beta", "nu"))
    return _simulate(var1[:, None], mu, omega, alpha, beta, nu, n=n, horizon=horizon, rng=_rng(seed))


def _simulate(var1, mu, omega, alpha, beta, nu, *, n: int, horizon: int, rng: np.random.Generator) -> np.ndarray:
    """Paths ``[S, n, horizon]`` from per-state ``[S, 1]`` parameters and one-step variances."""
    from scipy.special import stdtrit

    u = np.maximum(rng.random((var1.shape[0], n, horizon)), _U_MIN)
    z = stdtrit(nu[:, :, None], u) * np.sqrt((nu - 2.0) / nu)[:, :, None]
    out = np.empty_like(z)
    v = np.broadcast_to(var1, z.shape[:2])
    for k in range(horizon):
        e = np.sqrt(v) * z[:, :, k]
        out[:, :, k] = mu + e
        v = omega + alpha * e * e + beta * v
    return out
