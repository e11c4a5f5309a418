"""Representation diagnostics: effective rank (RankMe), per-dimension spread, linear probes.

- RankMe (Garrido et al., ICML 2023): exp(entropy of the normalised singular values of the
  embedding matrix [N, D]); 1 means collapse to a line, D means full rank.
- Linear probes, fitted on training-period states and scored on later states (the
  diagnostic part of validation, which chose nothing; see `strates.jepa.stage`):
  next-`horizon` realised volatility relative to its trailing level (`forward_targets`) by
  ridge regression (R²), and the sign of the return over t+1..t+h by ridge-regularised
  logistic regression (accuracy, and the majority-class rate as the floor). The same probes
  run on the raw features at t and on a trailing window of raw features, so the
  representation is compared with simple baselines.

The volatility target is scale-free: log(RV over t+1..t+h) - log(RMS of the returns over
t-w+1..t). An absolute level, log RV, is mostly the period's own volatility: a probe fitted
on a turbulent training period and scored on a calm one is then judged on how well it
extrapolates the level (the review of issue 13 measured R² = -1.78 on a daily index panel),
and inputs made scale-free (`strates.fsq.features`) could not carry that level anyway. The
relative target asks what the state can know: whether volatility is about to rise or fall
from where it has been, and it is unchanged when every return is multiplied by a constant.
"""

from __future__ import annotations

import numpy as np


def rankme(z: np.ndarray, *, eps: float = 1e-7) -> float:
    """Effective rank of `z` [N, D]."""
    s = np.linalg.svd(np.asarray(z, np.float64), compute_uv=False)
    p = s / (s.sum() + eps) + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def forward_targets(log_returns: np.ndarray, horizon: int, *, window: int) -> tuple[np.ndarray, np.ndarray]:
    """For one asset's log returns r [N] (r[0], which has no previous close, is never used):
    (relative realised volatility, sign), both [N] float64, NaN where undefined.

    relative vol_t = 0.5 log(mean r_j^2, j = t+1..t+h) - 0.5 log(mean r_j^2, j = t-w+1..t)
    with h = `horizon` and w = `window`: log realised volatility over the next h bars minus
    log of the trailing RMS over the last w bars up to and including t (known at t). NaN
    where t + h runs past the end or t < w (the trailing window would reach r[0]).
    sign_t = 1 if sum of r_j over j = t+1..t+h > 0, else 0; NaN where t + h runs past the end.
    1e-12 is added to each mean square so flat stretches give finite logs."""
    n = len(log_returns)
    r = np.asarray(log_returns, np.float64)
    sq = np.concatenate([[0.0], np.cumsum(r**2)])
    cs = np.concatenate([[0.0], np.cumsum(r)])
    vol = np.full(n, np.nan)
    sign = np.full(n, np.nan)
    t = np.arange(n - horizon)
    sign[t] = (cs[t + 1 + horizon] - cs[t + 1] > 0).astype(np.float64)
    t = t[t >= window]
    forward = (sq[t + 1 + horizon] - sq[t + 1]) / horizon
    trailing = (sq[t + 1] - sq[t + 1 - window]) / window
    vol[t] = 0.5 * (np.log(forward + 1e-12) - np.log(trailing + 1e-12))
    return vol, sign


def period_rows(ts: np.ndarray, start, end, *, horizon: int, skip: int = 0) -> np.ndarray:
    """[N] bool over one asset's bars `ts` [N] (datetime64[us], UTC): the bars t in
    [start, end) whose forward target (bars t+1..t+horizon) also lies inside it (no target
    reaches past `end`, nor past the last bar), and t >= `skip`."""
    a = np.datetime64(start.replace(tzinfo=None), "us")
    b = np.datetime64(end.replace(tzinfo=None), "us")
    idx = np.arange(len(ts))
    last = idx + horizon
    inside = last < len(ts)
    inside[inside] = ts[last[inside]] < b
    return (ts >= a) & (ts < b) & (idx >= skip) & inside


def trailing_window(x: np.ndarray, window: int) -> np.ndarray:
    """[N, F] -> [N, window * F]: features at t, t-1, ..., t-window+1 (zeros before the start)."""
    n, f = x.shape
    out = np.zeros((n, window * f), x.dtype)
    for lag in range(window):
        out[lag:, lag * f : (lag + 1) * f] = x[: n - lag]
    return out


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = train.mean(axis=0), train.std(axis=0) + 1e-8
    add = lambda a: np.hstack([(a - mean) / std, np.ones((len(a), 1))])  # noqa: E731
    return add(train), add(test)


def ridge_predict(x_train, y_train, x_test, *, alpha: float = 1.0) -> np.ndarray:
    """Fit ridge regression on train (features standardised on train, unpenalised
    intercept), return its predictions on test."""
    a, b = _standardise(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
    reg = alpha * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(a.T @ a + reg, a.T @ y_train)
    return b @ w


def ridge_r2(x_train, y_train, x_test, y_test, *, alpha: float = 1.0) -> float:
    """Fit ridge regression on train, return R² on test."""
    pred = ridge_predict(x_train, y_train, x_test, alpha=alpha)
    return float(1.0 - ((y_test - pred) ** 2).sum() / ((y_test - y_test.mean()) ** 2).sum())


def logistic_accuracy(x_train, y_train, x_test, y_test, *, alpha: float = 1.0, iterations: int = 25) -> float:
    """Fit L2-regularised logistic regression by Newton's method; return test accuracy."""
    a, b = _standardise(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
    w = np.zeros(a.shape[1])
    reg = alpha * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(a @ w, -30, 30)))
        grad = a.T @ (p - y_train) + reg @ w
        hess = (a * (p * (1 - p))[:, None]).T @ a + reg
        w -= np.linalg.solve(hess + 1e-9 * np.eye(len(w)), grad)
    return float((((b @ w) > 0).astype(np.float64) == y_test).mean())


def probe_report(inputs: dict[str, tuple[np.ndarray, np.ndarray]], targets_train, targets_test) -> dict:
    """Run both probes for each named input (train X, test X). `targets_*` are
    (relative vol, sign) arrays from `forward_targets`, aligned with the inputs, without NaN."""
    vol_tr, sign_tr = targets_train
    vol_te, sign_te = targets_test
    out = {"majority_sign_rate": float(max(sign_te.mean(), 1 - sign_te.mean())), "train_rows": len(vol_tr),
           "test_rows": len(vol_te)}
    for name, (x_tr, x_te) in inputs.items():
        out[name] = {
            "vol_r2": ridge_r2(x_tr, vol_tr, x_te, vol_te),
            "sign_accuracy": logistic_accuracy(x_tr, sign_tr, x_te, sign_te),
            "dims": int(x_tr.shape[1]),
        }
    return out
