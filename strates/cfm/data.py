"""Strate III data: futures built from the JEPA states h_t (`strates.jepa.artifact.embed`)
and the bars after t.

A future for state t is x = [sqrt(D) * h_{t+1}, ..., sqrt(D) * h_{t+H}, r_{t+1}/sigma_t, ...,
r_{t+H}/sigma_t] with sigma_t the asset's causal trailing volatility at t (`scale.unit`), so
every entry is O(1) whatever the level of volatility. Examples are indexed by (asset, t); a
period's examples have t and t + H inside it, so a training target never reaches into
validation data.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from strates.jepa.artifact import States


def period_index(states: list[States], start: dt.datetime, end: dt.datetime, horizon: int) -> list[np.ndarray]:
    """Per asset, the indices t with t and t + horizon inside [start, end)."""
    a = np.datetime64(start.replace(tzinfo=None), "us")
    b = np.datetime64(end.replace(tzinfo=None), "us")
    out = []
    for s in states:
        t = np.arange(len(s.ts) - horizon)
        ok = (s.ts[t] >= a) & (s.ts[t + horizon] < b)
        out.append(t[ok])
    return out


def futures(s: States, t: np.ndarray, horizon: int, sigma: np.ndarray) -> np.ndarray:
    """[len(t), H * D + H] futures of asset `s` at indices `t`, `sigma [N]` its unit per bar
    (see the module docstring)."""
    d = s.h.shape[1]
    steps = t[:, None] + np.arange(1, horizon + 1)  # [S, H]
    states = s.h[steps].reshape(len(t), horizon * d) * np.sqrt(d)
    returns = s.r[steps] / sigma[t][:, None]
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
