"""Market regimes as clusters of a world model's latent states (numpy + scikit-learn).

Glossary: N latent states, Z latent dimensions, K regimes; ``labels`` are regime numbers
per bar, ``-1`` for a bar without a state (a gap: no transition or run spans it).

`fit` fits Gaussian mixtures with full covariances (Bishop 2006, "Pattern Recognition and
Machine Learning", ch. 9) for K = 1..k_max on training-period latents only, and keeps the
K with the lowest Bayesian information criterion (Schwarz 1978):
BIC = -2 log L + p log N, p = K - 1 + K Z + K Z (Z + 1) / 2 free parameters. Regimes are
numbered by mixture weight, largest first. The fitted parameters are stored as plain tuples,
so a `Regimes` read back from TOML / JSON predicts without a pickle.

`transitions` counts regime changes bar to bar inside each asset's sequence; `profile`
describes each regime by what follows it: labels[t] is the regime of the state known at the
close of bar t, and the return it is credited with is returns[t + 1], the next bar's log
return (the one a position taken on the regime earns).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from scipy.linalg import solve_triangular
from sklearn.mixture import GaussianMixture

from strates.core.table import Table, table

CRITERIA = ("bic", "aic")


@dataclasses.dataclass(frozen=True)
class Regimes:
    """A Gaussian mixture over latents, regimes numbered by weight (largest first).

    ``k``: K chosen; ``criterion``: what chose it; ``bic``, ``aic``: [k_max] the criterion
    of every K = 1..k_max; ``weights`` [K]; ``means`` [K][Z]; ``covariances`` [K][Z][Z];
    ``rows``: N given to `fit`; ``rows_fitted``: how many of them the mixtures saw; ``seed``.
    """

    k: int
    criterion: str
    bic: tuple[float, ...]
    aic: tuple[float, ...]
    weights: tuple[float, ...]
    means: tuple[tuple[float, ...], ...]
    covariances: tuple[tuple[tuple[float, ...], ...], ...]
    rows: int
    rows_fitted: int
    seed: int

    def log_joint(self, z: np.ndarray) -> np.ndarray:
        """log(w_j N(z; mu_j, Sigma_j)) for ``z`` [N, Z]: ``[N, K]``."""
        z = np.asarray(z, dtype=np.float64)
        means = np.asarray(self.means, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != means.shape[1]:
            raise ValueError(f"z must have shape [N, {means.shape[1]}], got {z.shape}")
        out = np.empty((z.shape[0], self.k))
        for j, (w, mu, cov) in enumerate(zip(self.weights, means, self.covariances, strict=True)):
            chol = np.linalg.cholesky(np.asarray(cov, dtype=np.float64))
            u = solve_triangular(chol, (z - mu).T, lower=True)
            log_det = 2.0 * float(np.log(np.diag(chol)).sum())
            out[:, j] = math.log(w) - 0.5 * (np.sum(u**2, axis=0) + log_det + z.shape[1] * math.log(2 * math.pi))
        return out

    def predict(self, z: np.ndarray) -> np.ndarray:
        """The most probable regime of each row of ``z`` [N, Z]: labels ``[N]`` int."""
        return np.argmax(self.log_joint(z), axis=1).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Regimes:
        def tup(v: Any) -> Any:
            return tuple(tup(x) for x in v) if isinstance(v, list | tuple) else v

        return cls(**{f.name: tup(d[f.name]) for f in dataclasses.fields(cls)})


def fit(z_train: np.ndarray, *, k_max: int = 6, seed: int = 0, criterion: str = "bic", n_init: int = 3,
        max_fit: int = 20_000) -> Regimes:
    """Fit mixtures of K = 1..k_max Gaussians to ``z_train`` [N, Z] and keep the K with the
    lowest ``criterion`` ("bic" or "aic").

    At most ``max_fit`` rows, drawn without replacement with ``seed``, are fitted (all of
    them when N <= max_fit); the criteria are computed on those rows. Each K runs ``n_init``
    k-means-initialised EM fits seeded by ``seed``; the same inputs give the same `Regimes`.
    Needs N >= k_max (Z + 1) finite rows, so each component can hold a full covariance.
    """
    z = np.asarray(z_train, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"z_train must have shape [N, Z], got {z.shape}")
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}, got {criterion!r}")
    if k_max < 1 or n_init < 1:
        raise ValueError(f"k_max and n_init must be >= 1, got k_max={k_max}, n_init={n_init}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"z_train holds {int((~np.isfinite(z)).sum())} non-finite values; drop those rows first")
    need = k_max * (z.shape[1] + 1)
    if z.shape[0] < need:
        raise ValueError(f"fit needs at least k_max * (Z + 1) = {k_max} * {z.shape[1] + 1} = {need} rows of "
                         f"z_train, got {z.shape[0]}; give more training latents or lower k_max")
    rng = np.random.default_rng(seed)
    x = z if z.shape[0] <= max_fit else z[np.sort(rng.choice(z.shape[0], size=max_fit, replace=False))]

    models, bic, aic = [], [], []
    for k in range(1, k_max + 1):
        gm = GaussianMixture(k, covariance_type="full", n_init=n_init, random_state=seed).fit(x)
        models.append(gm)
        bic.append(float(gm.bic(x)))
        aic.append(float(gm.aic(x)))
    scores = bic if criterion == "bic" else aic
    best = models[int(np.argmin(scores))]
    weights = np.asarray(best.weights_, dtype=np.float64)
    means = np.asarray(best.means_, dtype=np.float64)
    covs = np.asarray(best.covariances_, dtype=np.float64)
    # largest weight first; ties broken by the means, so the order never depends on EM's labels
    order = np.lexsort((*means.T[::-1], -weights))
    return Regimes(
        k=int(weights.size), criterion=criterion, bic=tuple(bic), aic=tuple(aic),
        weights=tuple(float(w) for w in weights[order]),
        means=tuple(tuple(float(v) for v in m) for m in means[order]),
        covariances=tuple(tuple(tuple(float(v) for v in row) for row in c) for c in covs[order]),
        rows=int(z.shape[0]), rows_fitted=int(x.shape[0]), seed=int(seed),
    )


def _labels(labels_by_asset: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    out = []
    for a, lab in enumerate(labels_by_asset):
        lab = np.asarray(lab).reshape(-1).astype(np.int64)
        if lab.size and lab.max() >= k:
            raise ValueError(f"asset {a}: label {int(lab.max())} is not a regime of k={k} (0..{k - 1})")
        out.append(lab)
    return out


def transitions(labels_by_asset: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Row-stochastic transition matrix ``[k, k]``: entry (i, j) is the share of bars in
    regime i whose next bar, in the same asset, is in regime j. Pairs are counted inside each
    asset's ``labels`` [T_a] only, never across assets nor across a gap (label < 0). A regime
    never followed by a labelled bar has a row of zeros (its row sums to 0, not 1)."""
    counts = np.zeros((k, k))
    for lab in _labels(labels_by_asset, k):
        src, dst = lab[:-1], lab[1:]
        ok = (src >= 0) & (dst >= 0)
        np.add.at(counts, (src[ok], dst[ok]), 1.0)
    total = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)


def durations(labels_by_asset: Sequence[np.ndarray], k: int) -> list[np.ndarray]:
    """Run lengths per regime: ``k`` arrays of the lengths (in bars) of every maximal run of
    one regime inside one asset; a run ends at the asset's end and at a gap (label < 0)."""
    runs: list[list[int]] = [[] for _ in range(k)]
    for lab in _labels(labels_by_asset, k):
        if lab.size == 0:
            continue
        starts = np.flatnonzero(np.diff(lab, prepend=lab[0] - 1) != 0)
        lengths = np.diff(np.append(starts, lab.size))
        for s, n in zip(starts, lengths, strict=True):
            if lab[s] >= 0:
                runs[lab[s]].append(int(n))
    return [np.asarray(r, dtype=np.int64) for r in runs]


@dataclasses.dataclass(frozen=True)
class RegimeStats:
    """One regime's profile. ``share``: its share of labelled bars (``bars`` of them);
    ``mean_return`` / ``volatility``: mean and std (ddof=1) of the next bar's log return over
    its bars, per bar, with ``*_annual`` = x ppy and x sqrt(ppy); ``mean_duration``: mean run
    length in bars over its ``runs`` runs. All 0.0 where undefined (no bar, one return)."""

    regime: int
    share: float
    bars: int
    mean_return: float
    mean_return_annual: float
    volatility: float
    volatility_annual: float
    mean_duration: float
    runs: int


def profile(labels_by_asset: Sequence[np.ndarray], returns_by_asset: Sequence[np.ndarray], k: int, *,
            periods_per_year: float) -> list[RegimeStats]:
    """Per regime 0..k-1: share of bars, next-bar log return (mean, volatility; per bar and
    annualised with ``periods_per_year``) and mean duration. ``labels_by_asset[a]`` and
    ``returns_by_asset[a]`` are [T_a] each, aligned bar for bar; labels[t] is credited with
    returns[t + 1]; a bar whose next return is missing (NaN, or the asset's last bar) counts
    for share and duration but not for the return figures."""
    labels = _labels(labels_by_asset, k)
    if len(labels) != len(returns_by_asset):
        raise ValueError(f"got labels for {len(labels)} assets and returns for {len(returns_by_asset)}")
    lab_next, ret_next = [], []
    for a, (lab, r) in enumerate(zip(labels, returns_by_asset, strict=True)):
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        if r.shape != lab.shape:
            raise ValueError(f"asset {a}: labels have {lab.size} bars but returns {r.size}")
        lab_next.append(lab[:-1])
        ret_next.append(r[1:])
    all_labels = np.concatenate(labels) if labels else np.zeros(0, np.int64)
    lab_n = np.concatenate(lab_next) if lab_next else np.zeros(0, np.int64)
    ret_n = np.concatenate(ret_next) if ret_next else np.zeros(0)
    labelled = int((all_labels >= 0).sum())
    runs = durations(labels, k)
    out = []
    for j in range(k):
        bars = int((all_labels == j).sum())
        r = ret_n[(lab_n == j) & np.isfinite(ret_n)]
        mean = float(r.mean()) if r.size else 0.0
        vol = float(r.std(ddof=1)) if r.size > 1 else 0.0
        out.append(RegimeStats(
            regime=j, share=bars / labelled if labelled else 0.0, bars=bars,
            mean_return=mean, mean_return_annual=mean * periods_per_year,
            volatility=vol, volatility_annual=vol * math.sqrt(periods_per_year),
            mean_duration=float(runs[j].mean()) if runs[j].size else 0.0, runs=int(runs[j].size),
        ))
    return out


class Chosen(Protocol):
    """What `regime_table` reads of a fit: a `Regimes`, or the summary an artifact keeps."""

    @property
    def k(self) -> int: ...
    @property
    def criterion(self) -> str: ...
    @property
    def bic(self) -> tuple[float, ...]: ...
    @property
    def aic(self) -> tuple[float, ...]: ...
    @property
    def weights(self) -> tuple[float, ...]: ...
    @property
    def rows_fitted(self) -> int: ...


def regime_table(regimes: Chosen, stats: Sequence[RegimeStats], matrix: np.ndarray) -> list[Table]:
    """The regimes' profile table and their transition matrix table."""
    rows = [(str(s.regime), f"{w:.3f}", f"{s.share:.1%}", f"{s.bars:,}", f"{s.mean_duration:.1f}",
             f"{s.mean_return:+.5f}", f"{s.mean_return_annual:+.2%}", f"{s.volatility:.5f}",
             f"{s.volatility_annual:.2%}")
            for s, w in zip(stats, regimes.weights, strict=True)]
    scores = regimes.bic if regimes.criterion == "bic" else regimes.aic
    listed = ", ".join(f"K={i + 1}: {v:,.0f}" for i, v in enumerate(scores))
    profile_table = table(
        ("regime", "weight", "share", "bars", "mean run", "mean r/bar", "annual r", "vol/bar", "annual vol"), rows,
        caption=f"Regimes: a {regimes.k}-component Gaussian mixture (full covariances) over the world model's "
                f"latents, fitted on {regimes.rows_fitted:,} training-period states, K chosen by the lowest "
                f"{regimes.criterion.upper()} ({listed}); numbered by mixture weight. Share: of labelled bars; "
                "mean run: mean length in bars of an unbroken stay; returns and volatility are those of the next "
                "bar's log return after a bar in the regime, per bar and annualised.",
        title=f"Regimes (K = {regimes.k})",
    )
    m = np.asarray(matrix, dtype=np.float64)
    transition_table = table(
        ("from \\ to", *(str(j) for j in range(m.shape[1]))),
        [(str(i), *(f"{v:.3f}" for v in row)) for i, row in enumerate(m)],
        caption="Transition matrix: the share of bars in the row's regime whose next bar (same asset) is in the "
                "column's regime; no transition is counted across assets or gaps. A row of zeros: never followed "
                "by a labelled bar.",
        title="Regime transitions",
    )
    return [profile_table, transition_table]
