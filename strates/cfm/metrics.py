"""Proper scores and diversity measures for N sampled futures per state (pure numpy).

Conventions: ``samples`` holds N draws per scored state, ``obs`` the realised value.
Lower CRPS / energy score is better; a forecast is judged against baselines scored on the
same states (see ``strates.cfm.baselines``).

Formulas
--------
CRPS (Gneiting & Raftery 2007, JASA 102(477), eq. 21), for an ensemble x_1..x_N and obs y::

    CRPS = 1/N sum_i |x_i - y|  -  1/(2 N (N-1)) sum_{i != j} |x_i - x_j|      (fair)

The *fair* (unbiased) spread term divides by N(N-1) instead of N^2, so that an ensemble of N
draws from F has the same expected score as F itself (Ferro 2014, QJRMS 140; Zamo &
Naveau 2018, Math. Geosci. 50). The pair sum is computed in O(N log N) from the order
statistics x_(0) <= ... <= x_(N-1)::

    sum_{i != j} |x_i - x_j| = 2 sum_k (2k - N + 1) x_(k)

``fair=False`` gives the plug-in (empirical-CDF) CRPS, spread term / (2 N^2).

Energy score (Gneiting & Raftery 2007, eq. 22, beta = 1), for vectors in R^H::

    ES = 1/N sum_i ||x_i - y||  -  1/(2 N (N-1)) sum_{i != j} ||x_i - x_j||      (fair)

In one dimension ES and CRPS are the same formula: ES == CRPS exactly (tested).

Vendi score (Friedman & Dieng 2023, TMLR, "The Vendi Score: a diversity evaluation metric
for machine learning"): with a kernel matrix K (K_ii = 1), VS = exp(-sum_i l_i log l_i), l_i
the eigenvalues of K/N. Identical points give 1, N mutually orthogonal points (K = I) give N.

Effective number of modes (DESIGN.md, canonical definition): exp(entropy of the normalised
eigenvalues of the covariance of the points), i.e. the exponential of the Shannon entropy of
the explained-variance spectrum (the Vendi score with the linear kernel on centred data).
An isotropic D-dimensional cloud gives about D; a cloud on one line gives 1.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# Budget (number of float64 pair distances held at once) for the O(N^2) energy score.
_PAIR_BUDGET = 4_000_000


def _as_float(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def crps_ensemble(samples, obs, *, fair: bool = True) -> np.ndarray:
    """CRPS of an N-member ensemble per state: ``samples [S, N]``, ``obs [S]`` -> ``[S]``.

    Fair (unbiased) estimator by default; with N == 1 the spread term is 0 (the score is
    the absolute error). See the module docstring for the formula and references.
    """
    x = _as_float(samples)
    y = _as_float(obs)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"crps_ensemble wants samples [S, N] and obs [S], got {x.shape} and {y.shape}")
    n = x.shape[1]
    if n == 0:
        raise ValueError("crps_ensemble needs at least one sample per state")
    skill = np.mean(np.abs(x - y[:, None]), axis=1)
    if n == 1:
        return skill
    xs = np.sort(x, axis=1)
    w = 2.0 * np.arange(n) - n + 1.0  # sum_{i!=j}|xi-xj| = 2 * sum_k w_k x_(k)
    pair_sum = 2.0 * (xs @ w)
    denom = 2.0 * n * (n - 1) if fair else 2.0 * n * n
    return skill - pair_sum / denom


def energy_score(samples, obs, *, fair: bool = True) -> np.ndarray:
    """Energy score (beta = 1) per state: ``samples [S, N, H]``, ``obs [S, H]`` -> ``[S]``.

    Fair version by default (pair term over i != j divided by 2N(N-1)). Pairwise distances
    are computed in chunks of states so memory stays bounded (O(N^2 H) work per state).
    """
    x = _as_float(samples)
    y = _as_float(obs)
    if x.ndim != 3 or y.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"energy_score wants samples [S, N, H] and obs [S, H], got {x.shape} and {y.shape}")
    s, n, h = x.shape
    if n == 0:
        raise ValueError("energy_score needs at least one sample per state")
    skill = np.linalg.norm(x - y[:, None, :], axis=-1).mean(axis=1)
    if n == 1:
        return skill
    denom = 2.0 * n * (n - 1) if fair else 2.0 * n * n
    spread = np.empty(s)
    chunk = max(1, _PAIR_BUDGET // max(1, n * n * h))
    for a in range(0, s, chunk):  # loop over chunks of states, not over samples
        xc = x[a:a + chunk]
        d = np.linalg.norm(xc[:, :, None, :] - xc[:, None, :, :], axis=-1)  # [c, N, N], zero diagonal
        spread[a:a + chunk] = d.sum(axis=(1, 2)) / denom
    return skill - spread


def coverage(samples, obs, level: float) -> float:
    """Share of ``obs [S]`` inside the central ``level`` interval of the ensembles ``samples [S, N]``.

    Measured through the rank of each observation among its N draws, so that an ensemble of
    N draws from the true distribution scores ``level`` in expectation whatever N. (Sample
    quantiles of N draws make intervals too narrow: the full range of 8 draws covers a new
    draw only 7/9 of the time, so "the 90% interval of 8 futures" would cover ~75%.) With
    k = #{x_i < y} and m = #{x_i == y}, the randomised PIT of y is uniform on
    [k / (N + 1), (k + m + 1) / (N + 1)] (Anderson 1996; Gneiting, Balabdaoui & Raftery 2007);
    a state's coverage is the share of that range inside [(1 - level) / 2, (1 + level) / 2],
    the expected coverage of the randomised PIT, computed exactly (no random numbers).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"coverage level must be in (0, 1), got {level}")
    x = _as_float(samples)
    y = _as_float(obs)
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"coverage wants samples [S, N] and obs [S], got {x.shape} and {y.shape}")
    n = x.shape[1]
    below = (x < y[:, None]).sum(axis=1)
    ties = (x == y[:, None]).sum(axis=1)
    a, b = below / (n + 1.0), (below + ties + 1.0) / (n + 1.0)
    inside = np.clip(np.minimum(b, (1.0 + level) / 2.0) - np.maximum(a, (1.0 - level) / 2.0), 0.0, None)
    return float(np.mean(inside / (b - a)))


@dataclasses.dataclass(frozen=True)
class HorizonScore:
    """Scores of the cumulative return over the first `horizon` steps: mean fair `crps`
    over states, and the coverage of the central 50% / 90% intervals (`cov50`, `cov90`)."""

    horizon: int
    crps: float
    cov50: float
    cov90: float


@dataclasses.dataclass(frozen=True)
class PathScores:
    """Scores of sampled return paths: one `HorizonScore` per horizon (ascending), the mean
    fair `energy_score` of the whole paths, and the `states` and `samples` scored."""

    horizons: tuple[HorizonScore, ...]
    energy_score: float
    states: int
    samples: int

    def at(self, horizon: int) -> HorizonScore:
        """The scores at `horizon` (one of `horizons`)."""
        for h in self.horizons:
            if h.horizon == horizon:
                return h
        raise KeyError(f"no horizon {horizon}; scored: {[h.horizon for h in self.horizons]}")


def path_scores(samples, obs, *, horizons=None) -> PathScores:
    """Scores of sampled return paths ``samples [S, N, H]`` against realised ``obs [S, H]``.

    For each horizon h (default ``(1, 4, 12, H)``, kept if 1 <= h <= H, deduplicated) the
    cumulative return over the first h steps (sum of returns 1..h) is scored: its mean fair
    CRPS over states and the coverage of the central 50% / 90% intervals (`HorizonScore`).
    ``energy_score`` is the mean fair energy score of the whole H-step return paths. Values
    are plain Python floats / ints (JSON- and TOML-friendly).
    """
    x = _as_float(samples)
    y = _as_float(obs)
    if x.ndim != 3 or y.shape != (x.shape[0], x.shape[2]):
        raise ValueError(f"path_scores wants samples [S, N, H] and obs [S, H], got {x.shape} and {y.shape}")
    s, n, h_max = x.shape
    if horizons is None:
        horizons = (1, 4, 12, h_max)
    hs = sorted({int(h) for h in horizons if 1 <= int(h) <= h_max})
    cx = np.cumsum(x, axis=2)
    cy = np.cumsum(y, axis=1)
    scores = []
    for h in hs:
        xs, ys = cx[:, :, h - 1], cy[:, h - 1]
        scores.append(HorizonScore(h, float(np.mean(crps_ensemble(xs, ys))), coverage(xs, ys, 0.5),
                                   coverage(xs, ys, 0.9)))
    return PathScores(tuple(scores), float(np.mean(energy_score(x, y))), int(s), int(n))


def _entropy_exp(weights: np.ndarray) -> float:
    """exp(Shannon entropy) of non-negative weights after normalising them to sum 1."""
    w = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = w.sum()
    if not np.isfinite(total) or total <= 0.0:
        return 1.0
    p = w / total
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def _sq_dists(x: np.ndarray) -> np.ndarray:
    sq = np.sum(x * x, axis=1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    np.fill_diagonal(d2, 0.0)
    return np.clip(d2, 0.0, None)


def vendi_score(x, *, bandwidth: float | None = None) -> float:
    """Vendi score of ``x [N, D]`` with the RBF kernel K_ij = exp(-||x_i - x_j||^2 / (2 bw^2)).

    ``bandwidth=None`` uses the median heuristic: bw = median of the non-zero pairwise
    distances (bw = 1 if all points coincide). Returns exp(entropy of eigenvalues of K/N),
    between 1 (all identical) and N (all mutually far apart relative to bw).
    """
    x = _as_float(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"vendi_score wants x [N, D] with N >= 1, got {x.shape}")
    n = x.shape[0]
    d2 = _sq_dists(x)
    if bandwidth is None:
        iu = np.triu_indices(n, k=1)
        dist = np.sqrt(d2[iu])
        dist = dist[dist > 0]
        bandwidth = float(np.median(dist)) if dist.size else 1.0
    if bandwidth <= 0:
        raise ValueError(f"vendi_score bandwidth must be > 0, got {bandwidth}")
    k = np.exp(-d2 / (2.0 * bandwidth * bandwidth))
    lam = np.linalg.eigvalsh(k / n)
    return _entropy_exp(lam)


def effective_modes(x) -> float:
    """Effective number of modes of ``x [N, D]``: exp(entropy of the normalised eigenvalues
    of the (sample) covariance). DESIGN.md's "effective number of future modes". Returns 1.0
    when the covariance is zero (all points equal, or N < 2)."""
    x = _as_float(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"effective_modes wants x [N, D], got {x.shape}")
    if x.shape[0] < 2:
        return 1.0
    xc = x - x.mean(axis=0, keepdims=True)
    # Non-zero eigenvalues of the covariance are the squared singular values of xc (/(N-1)).
    sv = np.linalg.svd(xc, compute_uv=False)
    return _entropy_exp(sv * sv)
