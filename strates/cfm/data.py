"""Strate III data: futures built from the JEPA states h_t (`strates.jepa.artifact.embed`)
and the bars after t.

A future for state t is x = [sqrt(D) * h_{t+1}, ..., sqrt(D) * h_{t+H}, r_{t+1}/sigma_t, ...,
r_{t+H}/sigma_t] with sigma_t the asset's causal trailing volatility at t (`scale.unit`), so
every entry is O(1) whatever the level of volatility (returns clipped at +-CLIP units in
training; the first `scale.unit_window` bars of an asset, whose unit is not measured yet, are
neither trained on nor scored). Examples are indexed by (asset, t); a
period's examples have t and t + H inside it, so a training target never reaches into
validation data.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from strates.jepa.artifact import States

# Training targets in units of sigma_t are clipped to +-CLIP: a jump after a stale spell can
# be hundreds of units, and one such row would dominate the squared flow-matching loss. 12
# units keeps every move a Student-t(4) market makes in practice (P(|z| > 12) ~ 1e-4).
CLIP = 12.0


def period_index(states: list[States], start: dt.datetime, end: dt.datetime, horizon: int, *,
                 history: int = 0) -> list[np.ndarray]:
    """Per asset, the indices t with t and t + horizon inside [start, end) and at least
    `history` returns observed before t (t >= history: e.g. a full window for the unit)."""
    a = np.datetime64(start.replace(tzinfo=None), "us")
    b = np.datetime64(end.replace(tzinfo=None), "us")
    out = []
    for s in states:
        t = np.arange(min(history, len(s.ts)), max(len(s.ts) - horizon, 0))
        ok = (s.ts[t] >= a) & (s.ts[t + horizon] < b)
        out.append(t[ok])
    return out


def futures(s: States, t: np.ndarray, horizon: int, sigma: np.ndarray) -> np.ndarray:
    """[len(t), H * D + H] futures of asset `s` at indices `t`, `sigma [N]` its unit per bar
    (see the module docstring)."""
    d = s.h.shape[1]
    steps = t[:, None] + np.arange(1, horizon + 1)  # [S, H]
    states = s.h[steps].reshape(len(t), horizon * d) * np.sqrt(d)
    returns = np.clip(s.r[steps] / sigma[t][:, None], -CLIP, CLIP)
    return np.concatenate([states, returns], axis=1).astype(np.float32)


def split_future(x: np.ndarray, *, horizon: int, dim: int, sigma) -> tuple[np.ndarray, np.ndarray]:
    """x [..., H*D + H] -> (states [..., H, D] re-normalised onto the sphere, log returns
    [..., H] rescaled by `sigma`, the unit of each state, shaped like a prefix of x's
    leading axes (e.g. [S] for x [S, N, F]) or a scalar)."""
    states = x[..., : horizon * dim].reshape(*x.shape[:-1], horizon, dim)
    states = states / np.maximum(np.linalg.norm(states, axis=-1, keepdims=True), 1e-12)
    unit = np.asarray(sigma, np.float64)
    unit = unit.reshape(unit.shape + (1,) * (x.ndim - unit.ndim))
    return states, x[..., horizon * dim :] * unit
