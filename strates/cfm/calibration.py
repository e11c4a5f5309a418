"""Calibration of sampled futures, spread recalibration, and CRPS skill with a date bootstrap (numpy).

Shapes: S scored states, N sampled futures per state, H horizons (steps of a return path).

PIT (probability integral transform). For a forecast CDF F and outcome y, F(y) is uniform on
(0, 1) when y ~ F (Dawid 1984; Gneiting, Balabdaoui & Raftery 2007, JRSS-B 69(2), "Probabilistic
forecasts, calibration and sharpness"). For an ensemble x_1..x_N the analogue is the rank of y
among the N + 1 values (the rank histogram / Talagrand diagram, Anderson 1996, J. Climate 9),
uniform on {0..N} when y and the members are exchangeable. The *randomised* PIT spreads each rank
over its cell and breaks ties at random::

    PIT = (#{i: x_i < y} + U * (#{i: x_i == y} + 1)) / (N + 1),      U ~ Uniform(0, 1)

which is exactly Uniform(0, 1) for a calibrated ensemble, continuous or discrete. A hump in the
middle of its histogram means an over-dispersed (too wide) ensemble, a U shape an under-dispersed
(too narrow) one, a slope a biased one.

Spread recalibration. ``widen`` rescales each state's members about their mean,
x' = m + f (x - m), leaving the mean unchanged and multiplying the spread by f; ``fit_spread``
picks f minimising the mean fair CRPS (``metrics.crps_ensemble``). With d = x - m and e = y - m,
the fair CRPS of the widened ensemble is, per state::

    CRPS(f) = 1/N sum_i |f d_i - e|  -  f * P,     P = 1/(2N(N-1)) sum_{i != j} |d_i - d_j|

so P is computed once and CRPS(f) is convex in f (an average of |affine| minus a linear term):
a coarse log grid brackets the minimum and a golden-section search refines it.

Skill. CRPSS = 1 - mean(CRPS_model) / mean(CRPS_base) on the same states (Gneiting & Raftery
2007, JASA 102(477), sec. 2.3; > 0: the model beats the baseline). Its interval comes from a
paired stationary block bootstrap over *dates* (Politis & Romano 1994; block length by Politis &
White 2004 with Patton, Politis & White 2009; ``strates.agent.bootstrap``): states scored at the
same date (several assets) are drawn together, and runs of consecutive dates keep the serial
dependence of the scores.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from strates.agent.bootstrap import optimal_block_length, stationary_indices
from strates.cfm.metrics import coverage

LEVELS = (0.5, 0.8, 0.9, 0.95)

# Golden-section refinement: relative tolerance on the factor, and the iteration cap.
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0
_REFINE_TOL = 1e-5
_REFINE_ITERS = 200


def _as_float(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _check_ensemble(name: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise ValueError(f"{name} wants samples [S, N] and obs [S], got {x.shape} and {y.shape}")
    if x.shape[1] == 0:
        raise ValueError(f"{name} needs at least one sample per state, got samples {x.shape}")


def pit(samples, obs, *, rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT of an ensemble: ``samples [S, N]``, ``obs [S]`` -> ``[S]``, strictly in (0, 1).

    PIT = (#{x_i < y} + U (#{x_i == y} + 1)) / (N + 1), one U ~ Uniform(0, 1) per state drawn
    from ``rng`` (consumes S draws). Uniform on (0, 1) when obs and members are exchangeable
    (a calibrated ensemble), ties included (Anderson 1996; Gneiting, Balabdaoui & Raftery 2007).
    """
    x = _as_float(samples)
    y = _as_float(obs)
    _check_ensemble("pit", x, y)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("pit needs finite samples and obs (NaN/inf found); drop those states first")
    s, n = x.shape
    below = np.count_nonzero(x < y[:, None], axis=1)
    ties = np.count_nonzero(x == y[:, None], axis=1)
    # (k + 1/2) / 2^52 with k uniform on {0..2^52 - 1}: uniform on a grid strictly inside (0, 1).
    u = (rng.integers(0, 2**52, size=s) + 0.5) / 2.0**52
    return (below + u * (ties + 1)) / (n + 1)


def pit_histogram(values, *, bins: int = 10) -> tuple[float, ...]:
    """Densities of ``bins`` equal-width bins on [0, 1] of PIT ``values [S]`` (they integrate to 1;
    1.0 in every bin for a uniform PIT). Plain floats, ready for TOML/JSON."""
    v = _as_float(values).ravel()
    if bins < 1:
        raise ValueError(f"pit_histogram needs bins >= 1, got {bins}")
    if v.size == 0:
        raise ValueError("pit_histogram needs at least one value")
    if not np.all((v >= 0.0) & (v <= 1.0)):
        raise ValueError(f"PIT values must lie in [0, 1], got range [{v.min()}, {v.max()}]")
    density, _ = np.histogram(v, bins=bins, range=(0.0, 1.0), density=True)
    return tuple(float(d) for d in density)


def coverages(samples, obs, levels=LEVELS) -> tuple[float, ...]:
    """Share of ``obs [S]`` inside the central interval of ``samples [S, N]`` at each of ``levels``
    (``metrics.coverage``: numpy's interpolated quantiles, endpoints included). ~levels if calibrated."""
    return tuple(coverage(samples, obs, float(level)) for level in levels)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Calibration of the forecast at one `horizon`: `coverage[k]`, the share of outcomes in the
    central interval at `levels[k]`, and `pit`, the densities of the equal-width PIT histogram bins
    on [0, 1] (all 1.0 when calibrated); `states` scored."""

    horizon: int
    levels: tuple[float, ...]
    coverage: tuple[float, ...]
    pit: tuple[float, ...]
    states: int = 0

    def __post_init__(self):
        if len(self.levels) != len(self.coverage):
            raise ValueError(f"Calibration has {len(self.levels)} levels but {len(self.coverage)} coverages")

    def at(self, level: float) -> float:
        """The coverage at `level` (one of `levels`, compared to 1e-9)."""
        for lv, cov in zip(self.levels, self.coverage, strict=True):
            if math.isclose(lv, level, abs_tol=1e-9):
                return cov
        raise KeyError(f"no coverage at level {level}; measured: {list(self.levels)}")


def calibration(samples, obs, *, horizon: int, rng: np.random.Generator, levels=LEVELS,
                bins: int = 10) -> Calibration:
    """Coverages at `levels` and the `bins`-bin PIT histogram of ``samples [S, N]`` against
    ``obs [S]`` (the values at one `horizon`, e.g. the cumulative return over it). ``rng``
    draws the PIT's tie-breaking uniforms (S draws)."""
    x = _as_float(samples)
    y = _as_float(obs)
    _check_ensemble("calibration", x, y)
    lv = tuple(float(level) for level in levels)
    return Calibration(int(horizon), lv, coverages(x, y, lv), pit_histogram(pit(x, y, rng=rng), bins=bins),
                       int(x.shape[0]))


def widen(samples, factor: float) -> np.ndarray:
    """Spread recalibration x' = m + factor (x - m) about each state's ensemble mean m.

    ``samples [S, N]`` (m over N per state) or return paths ``[S, N, H]`` (m the mean path of
    each state; every path's deviation from it is scaled). The mean is unchanged and every
    member's deviation, hence the std, is multiplied by ``factor``. Linear, so widening per-step
    returns and then summing equals summing and then widening (cumulative returns).
    """
    x = _as_float(samples)
    f = float(factor)
    if not (math.isfinite(f) and f >= 0.0):
        raise ValueError(f"widen factor must be finite and >= 0, got {factor}")
    if x.ndim < 2:
        raise ValueError(f"widen wants samples [S, N] or [S, N, H], got {x.shape}")
    m = x.mean(axis=1, keepdims=True)
    return m + f * (x - m)


def _spread_parts(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Pieces of the widened fair CRPS for ``x [S, N, H]`` and ``y [S, H]``: deviations d = x - m
    ``[S, N, H]``, e = y - m ``[S, H]``, and the mean over (S, H) of the fair spread term P."""
    n = x.shape[1]
    m = x.mean(axis=1)
    d = x - m[:, None, :]
    e = y - m
    w = 2.0 * np.arange(n) - n + 1.0  # sum_{i!=j}|d_i - d_j| = 2 sum_k w_k d_(k), d sorted over N
    pair = 2.0 * np.einsum("snh,n->sh", np.sort(d, axis=1), w)
    return d, e, float(np.mean(pair) / (2.0 * n * (n - 1)))


def _widened_crps(f: float, d: np.ndarray, e: np.ndarray, spread: float, buf: np.ndarray) -> float:
    """Mean fair CRPS over (S, H) of the ensemble widened by `f` (see the module docstring);
    `buf` is scratch space shaped like `d`."""
    np.multiply(d, f, out=buf)
    buf -= e[:, None, :]
    np.abs(buf, out=buf)
    return float(buf.mean()) - f * spread


def fit_spread(samples, obs, *, grid=None, refine: bool = True, cumulate: bool = False) -> float:
    """Spread factor f minimising the mean fair CRPS of ``widen(samples, f)`` against ``obs``.

    ``samples [S, N]`` with ``obs [S]``, or paths ``[S, N, H]`` with ``obs [S, H]``: then the CRPS
    is averaged over states and the H horizons, each column being the value scored at that
    horizon, i.e. cumulative returns (pass per-step returns with ``cumulate=True`` to have them
    summed first; widening commutes with the sum). ``grid``: the candidate factors (> 0), default
    a log grid from 1/4 to 4 (17 points, ratio 2^(1/4)); the best one is refined by golden-section search
    between its neighbours (``refine=False`` returns the grid point), so the result stays inside
    [min(grid), max(grid)]. The objective is convex in f (module docstring), so the bracket holds
    the minimum over the grid's range.

    With few members the optimum exceeds the plain std ratio: members sit around their own mean,
    which is noisy, while the fair spread term assumes independent draws. For Gaussian members
    with true/ensemble std ratio r, f*^2 ~= (r^2 + 1/N) / ((1 - 1/N)(1 - 2/N)) (e.g. 1.31 at
    r = 1, N = 8; 1.016 at N = 128); that is the factor that makes this N-member ensemble score
    best, not an estimate of r.

    This is a *selection*: a factor fitted on the states it is then scored on flatters them. The
    caller fits it on validation states only and applies it unchanged to the test period.
    """
    x = _as_float(samples)
    y = _as_float(obs)
    if x.ndim == 2 and y.shape == (x.shape[0],):
        x, y = x[:, :, None], y[:, None]
    elif not (x.ndim == 3 and y.shape == (x.shape[0], x.shape[2])):
        raise ValueError(f"fit_spread wants samples [S, N] with obs [S], or [S, N, H] with obs [S, H]; "
                         f"got {x.shape} and {y.shape}")
    if x.shape[0] == 0 or x.shape[1] < 2:
        raise ValueError(f"fit_spread needs S >= 1 states and N >= 2 samples, got samples {x.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("fit_spread needs finite samples and obs (NaN/inf found); drop those states first")
    if cumulate:
        x, y = np.cumsum(x, axis=2), np.cumsum(y, axis=1)
    g = np.geomspace(0.25, 4.0, 17) if grid is None else np.unique(_as_float(grid).ravel())
    if g.size == 0 or not np.all(np.isfinite(g) & (g > 0.0)):
        raise ValueError(f"fit_spread grid must hold finite factors > 0, got {grid}")
    d, e, spread = _spread_parts(x, y)
    if not np.any(d):
        raise ValueError("fit_spread: every ensemble has zero spread, so widening cannot change it")
    buf = np.empty_like(d)

    def objective(f: float) -> float:
        return _widened_crps(f, d, e, spread, buf)

    loss = np.array([objective(float(f)) for f in g])
    k = int(np.argmin(loss))
    if not refine or g.size == 1:
        return float(g[k])
    a, b = float(g[max(k - 1, 0)]), float(g[min(k + 1, g.size - 1)])
    # Golden-section search on [a, b] (the convex loss is unimodal there).
    c, dd = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = objective(c), objective(dd)
    for _ in range(_REFINE_ITERS):
        if b - a <= _REFINE_TOL * max(1.0, abs(b)):
            break
        if fc <= fd:
            b, dd, fd = dd, c, fc
            c = b - _GOLDEN * (b - a)
            fc = objective(c)
        else:
            a, c, fc = c, dd, fd
            dd = a + _GOLDEN * (b - a)
            fd = objective(dd)
    best = (a + b) / 2.0
    # Never return worse than the best grid point (guards the flat / kinked cases).
    return best if objective(best) <= loss[k] else float(g[k])


@dataclasses.dataclass(frozen=True)
class Skill:
    """CRPS skill score 1 - mean(CRPS_model) / mean(CRPS_base) (`value`; > 0: the model is better),
    the `level` percentile interval [`lo`, `hi`] of a paired stationary block bootstrap over dates,
    the mean `block` length (in dates) used, the number of distinct `dates` and `replicates`."""

    value: float
    lo: float
    hi: float
    block: float
    dates: int = 0
    replicates: int = 0
    level: float = 0.95

    @property
    def shown(self) -> bool:
        """The interval excludes 0 (either way)."""
        return self.lo > 0.0 or self.hi < 0.0


def skill(crps_model, crps_base, *, dates=None, replicates: int = 1000, level: float = 0.95, seed: int = 0,
          block: float | None = None) -> Skill:
    """CRPS skill of a model against a baseline scored on the same states, with a date bootstrap.

    ``crps_model``, ``crps_base``: ``[S]`` per-state scores (lower is better). ``dates [S]``: any
    sortable values (datetime64, ints, strings); states with the same date are one unit of the
    bootstrap (several assets scored at one date move together); ``None``: each state is its own
    date, in the given order. The distinct dates are sorted and resampled by a stationary
    bootstrap (``seed``; ``replicates`` resamples drawn at once as a [B, D] index array); the mean
    block length is Politis & White's on the per-date mean difference model - base, unless
    ``block`` is given. Replicate b's skill is 1 - sum(model over its drawn states) / sum(base over
    its drawn states), i.e. per-date sums added over the drawn dates. [lo, hi] are its
    (1 -/+ level) / 2 percentiles. With fewer than 3 dates the interval collapses to the value.
    """
    mod = _as_float(crps_model)
    base = _as_float(crps_base)
    if mod.ndim != 1 or mod.shape != base.shape:
        raise ValueError(f"skill wants crps_model and crps_base [S] of one length, got {mod.shape} and {base.shape}")
    if mod.size == 0:
        raise ValueError("skill needs at least one scored state")
    if not (np.all(np.isfinite(mod)) and np.all(np.isfinite(base))):
        raise ValueError("skill needs finite CRPS values (NaN/inf found); drop those states first")
    if not 0.0 < level < 1.0:
        raise ValueError(f"skill level must be in (0, 1), got {level}")
    if replicates < 1:
        raise ValueError(f"skill needs replicates >= 1, got {replicates}")
    total_base = float(base.sum())
    if total_base <= 0.0:
        raise ValueError(f"skill needs a baseline with positive total CRPS, got {total_base}")
    value = 1.0 - float(mod.sum()) / total_base
    if dates is None:
        codes = np.arange(mod.size)
    else:
        dv = np.asarray(dates)
        if dv.shape != mod.shape:
            raise ValueError(f"skill dates must be [S] like the scores, got {dv.shape} for {mod.shape}")
        codes = np.unique(dv, return_inverse=True)[1].ravel()
    n_dates = int(codes.max()) + 1
    per_mod = np.bincount(codes, weights=mod, minlength=n_dates)
    per_base = np.bincount(codes, weights=base, minlength=n_dates)
    if n_dates < 3:
        return Skill(value, value, value, 1.0, n_dates, 0, level)
    counts = np.bincount(codes, minlength=n_dates)
    blk = optimal_block_length((per_mod - per_base) / counts) if block is None else float(block)
    if not blk >= 1.0:
        raise ValueError(f"skill block length must be >= 1, got {block}")
    idx = stationary_indices(n_dates, block=blk, replicates=replicates, rng=np.random.default_rng(seed))
    num = per_mod[idx].sum(axis=1)
    den = per_base[idx].sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(den > 0.0, 1.0 - num / den, np.nan)  # a draw of zero-CRPS baseline dates only
    lo, hi = np.nanquantile(reps, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return Skill(value, float(lo), float(hi), blk, n_dates, int(replicates), float(level))
