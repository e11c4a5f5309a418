"""Baseline forecasters of future return paths, scored on the same states as the model.

Time convention (the same as Strate III's futures): ``times[s] = t`` is the index of the
last *observed* return ``r_t``; the forecast is for ``r_{t+1}, ..., r_{t+H}``. A baseline
for time t may use ``returns[: t + 1]`` only — never ``r_{t+1}`` or later. Both baselines are
vectorised over states and samples; each state's history is sliced, never the full series.

- ``bootstrap_*``: (block) bootstrap of past returns (Efron 1979; moving-block bootstrap,
  Künsch 1989). Each path concatenates ceil(H / block) blocks of ``block`` consecutive past
  returns with uniformly drawn starts, truncated to H. ``block = 1`` is the i.i.d. bootstrap.
- ``gaussian_rw_paths``: zero-drift Gaussian random walk in returns, r_{t+k} ~ N(0, s_t^2)
  i.i.d., with s_t the sample std (ddof = 1) of the last ``vol_window`` returns up to and
  including t (fewer at the start of the series; at least 2 are required).

Randomness: ``seed`` is an int, ``None`` or a ``numpy.random.Generator``.
"""

from __future__ import annotations

import numpy as np


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _check_times(times, t_len: int, min_history: int) -> np.ndarray:
    t = np.asarray(times)
    if t.ndim != 1 or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"times must be a 1-d integer array of indices, got {t.dtype} {t.shape}")
    if t.size and (t.min() < min_history - 1 or t.max() >= t_len):
        raise ValueError(f"times must lie in [{min_history - 1}, {t_len - 1}] "
                         f"(at least {min_history} observed returns), got [{t.min()}, {t.max()}]")
    return t.astype(np.int64)


def _block_indices(lo, hi, *, n: int, horizon: int, block: int, rng) -> np.ndarray:
    """Indices into a series for S states: ``[S, n, horizon]``, each within [lo_s, hi_s].

    Block starts are uniform on [lo_s, max(lo_s, hi_s - block + 1)]; an index past hi_s (only
    when the history is shorter than ``block``) is clamped to hi_s, so it never leaves the past.
    """
    lo = np.asarray(lo, dtype=np.int64)
    hi = np.asarray(hi, dtype=np.int64)
    n_blocks = -(-horizon // block)
    last_start = np.maximum(lo, hi - block + 1)
    width = (last_start - lo + 1)[:, None, None]
    starts = lo[:, None, None] + np.floor(rng.random((lo.size, n, n_blocks)) * width).astype(np.int64)
    idx = (starts[..., None] + np.arange(block)).reshape(lo.size, n, n_blocks * block)[..., :horizon]
    return np.minimum(idx, hi[:, None, None])


def bootstrap_paths(history_returns, *, n: int, horizon: int, seed=None, block: int = 1) -> np.ndarray:
    """Resample ``n`` future paths ``[n, horizon]`` from ``history_returns [T]``.

    The caller passes the past only (``returns[: t + 1]`` for a forecast made at t); every
    value of the result is one of those returns.
    """
    r = np.asarray(history_returns, dtype=np.float64)
    if r.ndim != 1 or r.size == 0:
        raise ValueError(f"bootstrap_paths needs a non-empty 1-d history, got {r.shape}")
    if n < 1 or horizon < 1 or block < 1:
        raise ValueError(f"n, horizon and block must be >= 1, got {n}, {horizon}, {block}")
    idx = _block_indices([0], [r.size - 1], n=n, horizon=horizon, block=block, rng=_rng(seed))
    return r[idx[0]]


def bootstrap_for_states(returns_by_time, times, *, n: int, horizon: int, window: int | None = None,
                         seed=None, block: int = 1) -> np.ndarray:
    """Bootstrap paths for every forecast time: ``[S, n, horizon]``.

    For ``t = times[s]`` the pool is ``returns_by_time[max(0, t + 1 - window) : t + 1]``
    (all the past when ``window`` is None): strictly before the first forecast return t+1.
    """
    r = np.asarray(returns_by_time, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns_by_time must be 1-d, got {r.shape}")
    if n < 1 or horizon < 1 or block < 1 or (window is not None and window < 1):
        raise ValueError(f"n, horizon, block, window must be >= 1, got {n}, {horizon}, {block}, {window}")
    t = _check_times(times, r.size, min_history=1)
    lo = np.zeros_like(t) if window is None else np.maximum(0, t + 1 - window)
    idx = _block_indices(lo, t, n=n, horizon=horizon, block=block, rng=_rng(seed))
    return r[idx]


def trailing_vol(returns, times, *, vol_window: int = 24) -> np.ndarray:
    """Sample std (ddof = 1) of ``returns[max(0, t - vol_window + 1) : t + 1]`` per t: ``[S]``."""
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be 1-d, got {r.shape}")
    if vol_window < 2:
        raise ValueError(f"vol_window must be >= 2, got {vol_window}")
    t = _check_times(times, r.size, min_history=2)
    padded = np.concatenate([np.full(vol_window - 1, np.nan), r])
    windows = np.lib.stride_tricks.sliding_window_view(padded, vol_window)[t]  # row t: r[t-w+1 .. t]
    return np.nanstd(windows, axis=1, ddof=1)


def gaussian_rw_paths(returns, times, *, n: int, horizon: int, vol_window: int = 24, seed=None) -> np.ndarray:
    """Zero-drift Gaussian random-walk return paths ``[S, n, horizon]`` with trailing vol."""
    if n < 1 or horizon < 1:
        raise ValueError(f"n and horizon must be >= 1, got {n}, {horizon}")
    vol = trailing_vol(returns, times, vol_window=vol_window)
    z = _rng(seed).standard_normal((vol.size, n, horizon))
    return vol[:, None, None] * z
