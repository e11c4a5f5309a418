"""The futures alone (`strates.multiverse.futures`), through the real sampler and readings,
with small hand-made flows whose answers are known."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from flax import nnx

from strates.cfm.model import VectorField
from strates.multiverse import PRESETS, Config, futures
from strates.multiverse.crossing import lyapunov_floor
from strates.multiverse.futures import Sampler, chunk_size, cross

D, K, H = 8, 3, 4  # state dims, scale features, steps
DEBUG = dataclasses.replace(Config(), **PRESETS["debug"])


def _flow(*, ignores: bool, seed: int = 0) -> VectorField:
    f = VectorField(x_dim=H * (D + 1), cond_dim=D + K, width=16, depth=1, time_features=4, rngs=nnx.Rngs(seed))
    if ignores:  # the condition's rows of the first layer are 0: the futures do not depend on the state
        f.embed_in.kernel[...] = f.embed_in.kernel[...].at[f.time_features:].set(0.0)
    else:  # a strong condition, so the futures follow it
        f.embed_in.kernel[...] = f.embed_in.kernel[...].at[f.time_features:].multiply(8.0)
    return f


def _obs(r: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = rng.standard_normal((r, D))
    h /= np.linalg.norm(h, axis=-1, keepdims=True)
    obs = np.concatenate([h, rng.standard_normal((r, K)) / np.sqrt(K), np.full((r, 1), np.log(0.01))], axis=1)
    return obs.astype(np.float32), np.repeat(np.arange(2), r // 2), np.tile(np.arange(r // 2) * 7, 2)


def _cross(flows, config=DEBUG, r=8, n=16):
    obs, assets, times = _obs(r)
    return cross(Sampler(flows, futures=n, nfe=2, method="euler"), obs, assets, times, config, state_dim=D, horizon=H)


def test_a_flow_that_ignores_its_condition_reads_the_floor():
    out = _cross([_flow(ignores=True)])
    np.testing.assert_allclose(out["lyapunov_per_bar"], lyapunov_floor(DEBUG.sigma, H), rtol=1e-5)
    np.testing.assert_array_equal(out["sensitivity"], 0.0)
    follows = _cross([_flow(ignores=False)])
    assert (follows["lyapunov_per_bar"] > lyapunov_floor(DEBUG.sigma, H) + 0.3).all()
    assert (follows["sensitivity"] > 0).all() and np.isfinite(follows["lyapunov_per_bar"]).all()
    assert ((follows["modes"] >= 1) & (follows["modes"] == np.round(follows["modes"]))).all()


def test_sigma_zero_reads_nothing():
    out = _cross([_flow(ignores=False)], dataclasses.replace(DEBUG, sigma=0.0))
    np.testing.assert_array_equal(out["lyapunov_per_bar"], 0.0)
    np.testing.assert_array_equal(out["sensitivity"], 0.0)


def test_readings_do_not_depend_on_the_batching(monkeypatch):
    flows = [_flow(ignores=False, seed=2)]
    whole = _cross(flows)
    monkeypatch.setattr(futures, "CHUNK_FLOATS", 2 * (DEBUG.universes + 1) * 16 * H * (D + 1))  # 2 decisions a chunk
    assert chunk_size(8, (DEBUG.universes + 1) * 16 * H * (D + 1)) == 2
    parts = _cross(flows)
    for name, v in whole.items():
        np.testing.assert_allclose(parts[name], v, rtol=1e-5, atol=1e-6)


def test_an_ensemble_shares_the_futures_between_its_members():
    # two identical members, 8 futures each from their share of the noise: the single flow's 16
    f = _flow(ignores=False, seed=4)
    single, pair = _cross([f]), _cross([f, f])
    for name, v in single.items():
        np.testing.assert_allclose(pair[name], v, rtol=1e-5, atol=1e-6)
    assert Sampler([f, f, f], futures=16, nfe=2, method="euler").futures == 18  # 6 each: N rounded up


def test_chunks_are_powers_of_two_within_the_budget():
    assert [chunk_size(r, 1) for r in (1, 3, 48, 64, 65)] == [1, 4, 64, 64, 128]
    assert chunk_size(1000, int(futures.CHUNK_FLOATS // 100)) == 64  # the budget allows 100: 64
    assert chunk_size(5, int(futures.CHUNK_FLOATS * 10)) == 1  # at least one decision


def test_non_finite_futures_are_an_error():
    f = _flow(ignores=False)
    bias = f.out.bias
    assert bias is not None
    bias[...] = bias[...].at[0].set(np.nan)
    with pytest.raises(FloatingPointError, match="non-finite futures at 8 of 8"):
        _cross([f])
