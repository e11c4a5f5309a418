"""The classical estimator beside the multiverse proxy, and how the benchmark scores both.

Rosenstein, Collins & De Luca (Physica D 1993), as implemented by nolds (`nolds.lyap_r`): a
delay embedding of the first channel, each point's nearest neighbour outside a Theiler
window, the mean log distance of the pairs followed forward, and its least-squares slope.
Its parameters are fixed from the sampling, never tuned on the truth:
- embedding dimension 2d + 1 for a d-dimensional system (Takens), at most 10;
- lag: a quarter period (`points_per_period // 4` bars), the usual choice for an
  oscillating signal;
- Theiler window (`min_tsep`) and trajectory length: one period.
nolds fits the slope per bar; times `points_per_period` it is per period, like the truth.

Scores, over the systems of one run (`score`):
- Spearman ρ of each estimator against the true exponents per period, over the chaotic
  systems (a ranking: does the estimator order the systems as the truth does?);
- sign accuracy over every system: the estimate is read as "chaotic" when > 0, the truth as
  chaotic when > 0 (an exponent of 0, a limit cycle or a random walk, is not chaotic);
- median |log(estimate / truth)| over the chaotic systems; an estimate <= 0 of a chaotic
  system has no log-ratio and counts as infinitely far (so the median is finite only when
  fewer than half fail that way).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np


def rosenstein(x: np.ndarray, *, dims: int, points_per_period: int) -> float:
    """Rosenstein's maximal exponent of the series `x [T, C]` (its first channel), per
    period of the system."""
    import nolds

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nolds warns about short series and autocorrelation choices
        per_bar: Any = nolds.lyap_r(np.asarray(x[:, 0], np.float64), emb_dim=min(2 * dims + 1, 10),
                               lag=max(1, points_per_period // 4), min_tsep=points_per_period,
                               trajectory_len=points_per_period, fit="poly")
    return float(per_bar) * points_per_period


@dataclasses.dataclass(frozen=True)
class EstimatorScore:
    """One estimator over a run: Spearman ρ (and its p-value) against the truth over
    `chaotic` systems, sign accuracy over `systems`, median |log ratio| over the chaotic
    systems (inf when half or more were estimated <= 0), and how many chaotic systems it
    estimated <= 0."""

    spearman: float
    spearman_p: float
    sign_accuracy: float
    median_abs_log_ratio: float
    nonpositive_chaotic: int
    chaotic: int
    systems: int


def score(truth, estimate, chaotic) -> EstimatorScore:
    """Score `estimate [S]` against `truth [S]` (both per period); `chaotic [S]` bool marks
    the chaotic systems. NaN estimates (a failed estimator) count as wrong everywhere."""
    from scipy.stats import spearmanr

    truth = np.asarray(truth, np.float64)
    est = np.asarray(estimate, np.float64)
    chaotic = np.asarray(chaotic, bool)
    t, e = truth[chaotic], est[chaotic]
    ok = np.isfinite(e)
    if ok.sum() >= 3 and np.ptp(e[ok]) > 0 and np.ptp(t[ok]) > 0:
        res = spearmanr(t[ok], e[ok])
        rho, p = float(res.statistic), float(res.pvalue)  # pyright: ignore[reportAttributeAccessIssue]
    else:
        rho, p = math.nan, math.nan
    sign = np.where(np.isfinite(est), (est > 0) == (truth > 0), False)
    ratio = np.where(ok & (e > 0), np.abs(np.log(np.where(ok & (e > 0), e, 1.0) / t)), np.inf)
    return EstimatorScore(spearman=rho, spearman_p=p, sign_accuracy=float(sign.mean()) if len(sign) else math.nan,
                          median_abs_log_ratio=float(np.median(ratio)) if len(ratio) else math.nan,
                          nonpositive_chaotic=int((~(ok & (e > 0))).sum()), chaotic=int(chaotic.sum()),
                          systems=len(truth))
