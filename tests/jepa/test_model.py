"""Strate II model: shapes, causality, the Mamba-2 block against an unrolled numpy form,
the JEPA loss (finite, stop-gradient to the target, trainable), bf16, EMA, sharding."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from strates.core import topology
from strates.jepa import model as jm
from strates.jepa.jepa_loss import ema_target, jepa_loss, sample_starts, target_mask

B, L, M, K, V = 2, 24, 3, 3, 64
KW: dict[str, Any] = {"vocab": V, "n_assets": 3, "d_model": 32, "n_layers": 2, "horizon": K, "d_state": 16,
                      "head_dim": 16, "n_macro": M, "macro_heads": 2, "chunk": 8, "pred_layers": 1}
LOSS_KW: dict[str, Any] = {"n_spans": 4, "ctx_min": 4}


def _batch(seed=0, b=B):
    k1, k2 = jax.random.split(jax.random.key(seed))
    tokens = jax.random.randint(k1, (b, L), 0, V)
    assets = jnp.arange(b, dtype=jnp.int32) % 3
    macro = jax.random.normal(k2, (b, L, M))
    return tokens, assets, macro


@pytest.fixture(scope="module")
def jepa():
    return jm.JEPA(**KW, rngs=nnx.Rngs(0))


@functools.partial(jax.jit, static_argnums=0)
def _context(graphdef, params, tokens, assets, macro):
    m = nnx.merge(graphdef, params)
    return m.context(tokens, assets, macro, interval_s=jnp.full((B,), 60.0))


@pytest.fixture(scope="module")
def split(jepa):
    return nnx.split(jepa, nnx.Param)


def _loss_fn(params, graphdef, batch, key):
    return jepa_loss(nnx.merge(graphdef, params), *batch, key=key, **LOSS_KW)


_value_and_grad = jax.jit(jax.value_and_grad(_loss_fn, has_aux=True), static_argnums=1)


def test_shapes_param_tree_and_logical_axes(jepa, split):
    _, params = split
    assert set(params.keys()) == {"context", "predictor", "target"}
    ctx, tgt = nnx.to_pure_dict(params["context"]), nnx.to_pure_dict(params["target"])
    assert jax.tree.structure(ctx) == jax.tree.structure(tgt)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(ctx), jax.tree.leaves(tgt), strict=True))
    h = _context(*split, *_batch())
    assert h.shape == (B, L, 32) and h.dtype == jnp.float32
    starts = sample_starts(jax.random.key(0), B, length=L, n_spans=5, horizon=K, ctx_min=4)
    assert starts.shape == (B, 5) and int(starts.min()) >= 4 and int(starts.max()) < L - K
    pred = jax.eval_shape(jepa.predict, h, starts)
    assert pred.shape == (B, 5, K, 32) and pred.dtype == jnp.float32
    known = {name for name, _ in topology.DEFAULT_RULES}
    for p, spec in zip(jax.tree.leaves(params), jax.tree.leaves(jm.logical_axes(params)), strict=True):
        assert len(spec) == p.ndim and p.dtype == jnp.float32
        assert all(n is None or n in known for n in spec), spec
        topology.logical_to_mesh_axes(tuple(spec))  # no name used twice
    mixer = nnx.to_pure_dict(jm.logical_axes(params))["context"]["layers"][0]["mixer"]
    assert tuple(mixer["in_proj"]["kernel"]) == ("embed", "mlp")
    assert tuple(mixer["out_proj"]["kernel"]) == ("mlp", "embed")
    assert tuple(mixer["A_log"]) == ("heads",)
    assert jm.macro_positions(4, 2) == (1, 3) and jm.macro_positions(3, 2) == (1, 2)
    assert jm.macro_positions(1, 2) == (0,)


def test_encoder_is_causal_in_tokens_and_macro(split):
    ctx = functools.partial(_context, *split)
    tokens, assets, macro = _batch(1)
    h = ctx(tokens, assets, macro)
    t0 = 13
    tokens2 = tokens.at[:, t0 + 1:].set((tokens[:, t0 + 1:] + 7) % V)
    macro2 = macro.at[:, t0 + 1:].set(jnp.nan)  # later NaNs (missing) must not leak back
    for t_in, m_in in ((tokens2, macro), (tokens, macro2), (tokens2, macro2)):
        h2 = ctx(t_in, assets, m_in)
        np.testing.assert_allclose(h2[:, :t0 + 1], h[:, :t0 + 1], rtol=0, atol=1e-6)
        assert bool(jnp.all(jnp.isfinite(h2)))
        assert float(jnp.abs(h2[:, t0 + 1:] - h[:, t0 + 1:]).max()) > 1e-3  # it did see them
    # a macro change at bar t0 itself is seen at t0, not before
    h3 = ctx(tokens, assets, macro.at[:, t0].add(2.0))
    np.testing.assert_allclose(h3[:, :t0], h[:, :t0], rtol=0, atol=1e-6)
    assert float(jnp.abs(h3[:, t0] - h[:, t0]).max()) > 1e-4


def _block_numpy(blk: jm.Mamba2Block, u: np.ndarray) -> np.ndarray:
    """The Mamba-2 block unrolled in float64 numpy, straight from its parameters."""
    p = jax.tree.map(lambda a: np.asarray(a, np.float64), nnx.to_pure_dict(nnx.state(blk)))
    b, length, _ = u.shape
    di, h, pd, g, n = blk.d_inner, blk.heads, blk.head_dim, blk.n_groups, blk.d_state
    zxbcdt = u @ p["in_proj"]["kernel"]
    z, xbc, dt = zxbcdt[..., :di], zxbcdt[..., di:2 * di + 2 * g * n], zxbcdt[..., -h:]
    w, cb = p["conv_w"], p["conv_b"]
    k = w.shape[0]
    conv = np.zeros_like(xbc) + cb
    for t in range(length):
        for j in range(k):
            if t - (k - 1) + j >= 0:
                conv[:, t] += w[j] * xbc[:, t - (k - 1) + j]
    silu = lambda a: a / (1 + np.exp(-a))  # noqa: E731
    xbc = silu(conv)
    x = xbc[..., :di].reshape(b, length, h, pd)
    Bm = xbc[..., di:di + g * n].reshape(b, length, g, n)
    Cm = xbc[..., di + g * n:].reshape(b, length, g, n)
    dt = np.log1p(np.exp(dt + p["dt_bias"]))
    A = -np.exp(p["A_log"])
    y = np.zeros((b, length, h, pd))
    for bi in range(b):
        for hi in range(h):
            gi = hi // (h // g)
            S = np.zeros((pd, n))
            for t in range(length):
                S = np.exp(dt[bi, t, hi] * A[hi]) * S + dt[bi, t, hi] * np.outer(x[bi, t, hi], Bm[bi, t, gi])
                y[bi, t, hi] = S @ Cm[bi, t, gi] + p["D"][hi] * x[bi, t, hi]
    gated = (y.reshape(b, length, di) * silu(z)).reshape(b, length, g, di // g)
    gated = gated / np.sqrt(np.mean(gated**2, axis=-1, keepdims=True) + 1e-5)
    return (gated.reshape(b, length, di) * p["norm_scale"]) @ p["out_proj"]["kernel"]


def test_mamba2_block_matches_unrolled_numpy_and_both_scan_forms():
    kw = {"d_model": 16, "d_state": 4, "head_dim": 8, "expand": 2, "d_conv": 3, "n_groups": 2, "chunk": 4}
    blk = jm.Mamba2Block(**kw, impl="reference", rngs=nnx.Rngs(3))
    u = jax.random.normal(jax.random.key(4), (2, 9, 16))
    y = blk(u)
    assert y.shape == (2, 9, 16) and y.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(y), _block_numpy(blk, np.asarray(u, np.float64)),
                               rtol=1e-4, atol=1e-5)
    dt = jax.nn.softplus(blk.dt_bias[...])  # the init: softplus(dt_bias) in [1e-3, 1e-1]
    assert float(dt.min()) >= 1e-3 * 0.999 and float(dt.max()) <= 1e-1 * 1.001
    A = np.exp(np.asarray(blk.A_log[...]))
    assert A.min() >= 1 and A.max() <= 16 and np.all(np.asarray(blk.D[...]) == 1)
    auto = jm.Mamba2Block(**kw, impl="auto", rngs=nnx.Rngs(3))  # the kernel, if it exists
    np.testing.assert_allclose(np.asarray(auto(jnp.pad(u, ((0, 0), (0, 3), (0, 0))))[:, :9]),
                               np.asarray(y), rtol=1e-4, atol=1e-5)


@functools.partial(jax.jit, static_argnums=0)
def _embed(graphdef, params, tokens, assets, macro):
    return nnx.merge(graphdef, params).embed(tokens, assets, macro)


def test_embed_is_unit_norm(split):
    e = _embed(*split, *_batch(2, b=8))
    assert e.shape == (8, L, 32) and e.dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(np.asarray(e), axis=-1), 1.0, atol=1e-5)
    assert float(jnp.abs(e[:, 1:] - e[:, :-1]).max()) > 1e-3  # not a constant


def test_loss_is_finite_and_only_the_online_side_gets_gradients(split):
    graphdef, params = split
    (loss, metrics), grads = _value_and_grad(params, graphdef, _batch(3), jax.random.key(0))
    assert np.isfinite(float(loss))
    assert set(metrics) == {"pred", "variance", "covariance", "cos", "std"}
    assert all(np.isfinite(float(v)) for v in metrics.values())
    for part in ("context", "predictor"):
        leaves = jax.tree.leaves(grads[part])
        assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
        assert float(optax.tree.norm(grads[part])) > 0
    assert all(float(jnp.abs(g).max()) == 0.0 for g in jax.tree.leaves(grads["target"]))
    # the macro cross-attention and the token embedding are trained too
    cross = nnx.to_pure_dict(grads["context"])["cross"]
    assert float(optax.tree.norm(cross)) > 0


def test_a_few_adam_steps_reduce_the_loss(split):
    graphdef, params = split
    batch, key = _batch(4), jax.random.key(1)
    labels = jax.tree.map(lambda f: "frozen" if f else "train", target_mask(params))
    tx = optax.multi_transform({"train": optax.adamw(1e-2), "frozen": optax.set_to_zero()},
                               labels)  # what core.train.make_optimizer(frozen=...) builds
    opt = tx.init(params)

    @jax.jit
    def update(grads, opt, params):
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), opt

    losses = []
    for _ in range(6):
        (loss, _), grads = _value_and_grad(params, graphdef, batch, key)
        params, opt = update(grads, opt, params)
        losses.append(float(loss))
    assert losses[-1] < losses[0], losses
    # the target never moved (no gradient), and the EMA moves it towards the context
    tgt0 = jax.tree.leaves(split[1]["target"])
    assert all(np.array_equal(a, b) for a, b in zip(tgt0, jax.tree.leaves(params["target"]), strict=True))
    moved = ema_target(params, 0.0)
    assert jax.tree.structure(moved) == jax.tree.structure(params)  # a drop-in post_update
    for a, b in zip(jax.tree.leaves(moved["target"]), jax.tree.leaves(params["context"]), strict=True):
        np.testing.assert_array_equal(a, b)
    half = ema_target(params, 0.5)
    for a, t, c in zip(*(jax.tree.leaves(x) for x in (half["target"], params["target"],
                                                       params["context"])), strict=True):
        np.testing.assert_allclose(a, 0.5 * (t + c), rtol=1e-6, atol=1e-7)
    nnx.merge(graphdef, moved)  # still a valid param tree


def test_bf16_activations_without_macro_stay_finite():
    kw = {**KW, "n_macro": 0, "n_layers": 1, "horizon": 2}
    model = jm.JEPA(**kw, dtype=jnp.bfloat16, rngs=nnx.Rngs(5))
    assert len(model.context.cross) == 0 and model.context.macro_after == ()
    graphdef, params = nnx.split(model, nnx.Param)
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    tokens, assets, _ = _batch(5)
    blk = model.context.layers[0].mixer
    assert jax.eval_shape(blk, jnp.ones((1, 5, 32))).dtype == jnp.bfloat16

    @jax.jit
    def f(params, tokens, assets):
        m = nnx.merge(graphdef, params)
        loss, metrics = jepa_loss(m, tokens, assets, None, key=jax.random.key(0), **LOSS_KW)
        return loss, metrics, m.embed(tokens, assets)

    loss, metrics, e = f(params, tokens, assets)
    assert np.isfinite(float(loss)) and all(np.isfinite(float(v)) for v in metrics.values())
    assert e.dtype == jnp.float32
    np.testing.assert_allclose(np.linalg.norm(np.asarray(e), axis=-1), 1.0, atol=1e-4)


def test_bad_inputs_raise_actionable_errors(jepa):
    tokens, assets, macro = _batch()
    with pytest.raises(ValueError, match=r"macro must be \[B, L, M\]"):
        jepa.context(tokens, assets, macro[..., :2])
    with pytest.raises(ValueError, match="no room for spans"):
        sample_starts(jax.random.key(0), 2, length=8, n_spans=2, horizon=4, ctx_min=4)
    with pytest.raises(ValueError, match="head_dim"):
        jm.Mamba2Block(d_model=24, head_dim=20, rngs=nnx.Rngs(0))


def test_sharded_forward_matches_unsharded(split):
    """Params placed by their logical axes (FSDP over 4 devices), the batch over all 8."""
    graphdef, params = split
    mesh = topology.build_mesh(topology.plan("cpu", devices=8, mesh="data=2,fsdp=4"))
    b = 8
    tokens, assets, macro = _batch(6, b=b)
    f = functools.partial(_embed, graphdef)
    ref = f(params, tokens, assets, macro)
    with jax.set_mesh(mesh):
        ps = jax.device_put(params, jm.param_shardings(params, mesh))
        args = (topology.shard(np.asarray(tokens), mesh, ("batch", "length")),
                topology.shard(np.asarray(assets), mesh, ("batch",)),
                topology.shard(np.asarray(macro), mesh, ("batch", "length", None)))
        out = f(ps, *args)
    assert out.sharding.spec[0] in ("data", ("data",), ("data", "fsdp"))
    np.testing.assert_allclose(np.asarray(out), np.asarray(ref), rtol=1e-5, atol=1e-5)
