"""Representation diagnostics: effective rank (RankMe), per-dimension spread, linear probes.

- RankMe (Garrido et al., ICML 2023): exp(entropy of the normalised singular values of the
  embedding matrix [N, D]); 1 means collapse to a line, D means full rank.
- Linear probes, fitted on training-period states and scored on later states (the
  diagnostic part of validation, which chose nothing; see `strates.jepa.stage`):
  next-`horizon` realised volatility, log(sqrt(mean of squared log returns over bars
  t+1..t+h)), by ridge regression (R²), and the sign of the return over t+1..t+h by
  ridge-regularised logistic regression (accuracy, and the majority-class rate as the
  floor). The same probes run on the raw features at t and on a trailing window of raw
  features, so the representation is compared with simple baselines.
"""

from __future__ import annotations

import numpy as np


def rankme(z: np.ndarray, *, eps: float = 1e-7) -> float:
    """Effective rank of `z` [N, D]."""
    s = np.linalg.svd(np.asarray(z, np.float64), compute_uv=False)
    p = s / (s.sum() + eps) + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def forward_targets(log_returns: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """For one asset's log returns [N]: (log realised vol over t+1..t+h, sign of the summed
    return over t+1..t+h), both [N] with NaN where the horizon runs past the end."""
    n = len(log_returns)
    sq = np.concatenate([[0.0], np.cumsum(log_returns.astype(np.float64) ** 2)])
    cs = np.concatenate([[0.0], np.cumsum(log_returns.astype(np.float64))])
    vol = np.full(n, np.nan)
    sign = np.full(n, np.nan)
    t = np.arange(n - horizon)
    vol[t] = 0.5 * np.log((sq[t + 1 + horizon] - sq[t + 1]) / horizon + 1e-12)
    sign[t] = (cs[t + 1 + horizon] - cs[t + 1] > 0).astype(np.float64)
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


def ridge_r2(x_train, y_train, x_test, y_test, *, alpha: float = 1.0) -> float:
    """Fit ridge regression on train, return R² on test."""
    a, b = _standardise(np.asarray(x_train, np.float64), np.asarray(x_test, np.float64))
    reg = alpha * np.eye(a.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(a.T @ a + reg, a.T @ y_train)
    pred = b @ w
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
    (vol, sign) arrays aligned with the inputs, without NaN."""
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
