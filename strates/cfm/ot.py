"""Minibatch couplings of noise and data for conditional flow matching (host side, numpy).

A training minibatch holds noise `x0 [B, D]` (drawn i.i.d. N(0, I), no condition) and data
`x1 [B, D]` with conditions `h [B, C]`. A coupling is a permutation `perm [B]`: the flow is
trained on the pairs `(x0[i], x1[perm[i]])` under condition `h[perm[i]]`.

- `"independent"`: `perm = arange(B)`, the independent coupling (I-CFM, Lipman et al. 2023;
  Tong et al., TMLR 2024).
- `"ot"`: the exact minibatch optimal assignment for the squared Euclidean cost
  `C_ij = ||x0_i - x1_j||^2` (OT-CFM, Tong et al., TMLR 2024, Sec. 3.2). It ignores the
  condition, so a noise point may be sent to a data point of any condition; the noise that
  ends up under condition h is then not N(0, I) any more and sampling from N(0, I) at test
  time is biased (the "curse of conditions", Cheng & Schwing 2025).
- `"cot"`: condition-aware OT (C²OT, Cheng & Schwing 2025). Noise row i first inherits the
  condition of data row i under the identity pairing, `c_i = cond0[i]` (default `h[i]`),
  which keeps the noise under every condition N(0, I) because noise and data are drawn
  independently. The cost then adds the distance between that condition and the data
  point's own: `C_ij = ||x0_i - x1_j||^2 + w * ||c_i - h_j||^2`. With `w = 0` this is
  `"ot"`; as `w -> inf` with distinct conditions the identity is the only pairing whose
  condition term is zero, so the coupling becomes `"independent"`; with conditions that
  repeat (classes) it becomes OT within each class. Scale `w` with the data: `||x0 - x1||^2` grows like `2 D` while
  `||h_i - h_j||^2` of unit-norm states stays in [0, 4].

The assignment is exact (Hungarian / Jonker-Volgenant via
`scipy.optimize.linear_sum_assignment`, O(B^3), a few ms at B = 256): it runs in numpy in
the host-side batch pipeline, never inside `jit`.

Dimension letters: B minibatch, D data dims, C condition dims.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

KINDS = ("independent", "ot", "cot")


def sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances in float64. `a: [B, D], b: [B', D] -> [B, B']`."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    b = np.asarray(b, np.float64).reshape(len(b), -1)
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def cost_matrix(
    x0: np.ndarray,
    x1: np.ndarray,
    *,
    cond0: np.ndarray | None = None,
    cond1: np.ndarray | None = None,
    cond_weight: float = 0.0,
) -> np.ndarray:
    """`C [B, B]`, `C_ij = ||x0_i - x1_j||^2 + cond_weight * ||c_i - h_j||^2`.

    `x0, x1: [B, D]`; `cond1: [B, C]` the data conditions h; `cond0: [B, C]` the conditions
    the noise rows carry (default `cond1`: row i inherits h_i). The condition term is left
    out when `cond_weight == 0`.
    """
    cost = sq_dists(x0, x1)
    if cond_weight:
        if cond1 is None:
            raise ValueError("cond_weight > 0 needs the data conditions: pass cond1=h [B, C]")
        c0 = cond1 if cond0 is None else cond0
        cost = cost + float(cond_weight) * sq_dists(c0, cond1)
    return cost


def coupling(
    x0: np.ndarray,
    x1: np.ndarray,
    *,
    kind: str = "ot",
    cond0: np.ndarray | None = None,
    cond1: np.ndarray | None = None,
    cond_weight: float = 0.0,
) -> np.ndarray:
    """The permutation `perm: int64 [B]` pairing noise `x0[i]` with data `x1[perm[i]]`.

    `x0, x1: [B, D]` (trailing dims are flattened). `kind`: `"independent"` (identity),
    `"ot"` (exact assignment minimising `sum_i ||x0_i - x1_perm[i]||^2`; the conditions and
    `cond_weight` are ignored) or `"cot"` (adds `cond_weight * ||c_i - h_perm[i]||^2`, with
    `h = cond1: [B, C]` and `c = cond0`, default `cond1`; see the module docstring).
    Train on `(x0, x1[perm], h[perm])`. Host-side numpy; do not call under `jit`.
    """
    if kind not in KINDS:
        raise ValueError(f"coupling kind {kind!r} is not one of {KINDS}")
    if len(x0) != len(x1):
        raise ValueError(f"x0 and x1 need the same batch size, got {len(x0)} and {len(x1)}")
    if kind == "independent":
        return np.arange(len(x0), dtype=np.int64)
    if kind == "cot":
        if cond1 is None:
            raise ValueError("coupling kind 'cot' needs the data conditions: pass cond1=h [B, C]")
        if cond_weight < 0:
            raise ValueError(f"cond_weight must be >= 0, got {cond_weight}")
        cost = cost_matrix(x0, x1, cond0=cond0, cond1=cond1, cond_weight=cond_weight)
    else:
        cost = cost_matrix(x0, x1)
    rows, cols = linear_sum_assignment(cost)
    perm = np.empty(len(x0), np.int64)
    perm[rows] = cols
    return perm


def transport_cost(x0: np.ndarray, x1: np.ndarray, perm: np.ndarray) -> float:
    """Mean squared distance of the pairing, `mean_i ||x0_i - x1_perm[i]||^2` (the
    minibatch W2^2 estimate when `perm` is the OT assignment). `x0, x1: [B, D]`, `perm: [B]`."""
    a = np.asarray(x0, np.float64).reshape(len(x0), -1)
    b = np.asarray(x1, np.float64).reshape(len(x1), -1)[np.asarray(perm)]
    return float(np.square(a - b).sum(axis=1).mean())


def pair(
    x0: np.ndarray,
    x1: np.ndarray,
    h: np.ndarray,
    *,
    kind: str = "ot",
    cond_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Couple a minibatch: `(x0 [B, D], x1[perm] [B, D], h[perm] [B, C])`, `perm` from
    `coupling(x0, x1, kind=kind, cond1=h, cond_weight=cond_weight)`."""
    perm = coupling(x0, x1, kind=kind, cond1=h, cond_weight=cond_weight)
    return x0, np.asarray(x1)[perm], np.asarray(h)[perm]
