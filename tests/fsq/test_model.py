"""Tokenizer: shapes, causality, receptive field, straight-through gradients, overfitting."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from strates.fsq import model as fsq_model
from strates.fsq import quantize as fsq

F = 6
KW = {"features": F, "width": 16, "depth": 3, "decoder_depth": 2, "kernel": 3, "levels": (8, 8, 4, 4)}


def _tok(seed=0, **overrides):
    return fsq_model.Tokenizer(**{**KW, **overrides}, rngs=nnx.Rngs(seed))


def _x(b=2, t=40, seed=0):
    return jax.random.normal(jax.random.key(seed), (b, t, F))


_call = nnx.jit(lambda m, x: m(x))
_encode = nnx.jit(lambda m, x: m.encode(x))


@pytest.fixture(scope="module")
def tok():
    return _tok()


def test_shapes_and_dtypes(tok):
    x = _x(3, 24)
    x_hat, zhat, idx = tok(x)  # eager once, the rest of the file runs jitted
    assert x_hat.shape == (3, 24, F) and x_hat.dtype == jnp.float32
    assert zhat.shape == (3, 24, 4) and zhat.dtype == jnp.float32
    assert idx.shape == (3, 24) and idx.dtype == jnp.int32
    z = tok.encode(x)
    assert z.shape == (3, 24, 4)
    np.testing.assert_allclose(_call(tok, x)[0], x_hat, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(zhat, fsq.quantize(z, tok.levels))
    np.testing.assert_array_equal(idx, fsq.codes_to_indices(zhat, tok.levels))
    assert int(idx.min()) >= 0 and int(idx.max()) < tok.codebook_size == 1024
    np.testing.assert_array_equal(tok.decode(zhat), x_hat)


def test_receptive_field_formula():
    assert fsq_model.dilations(4) == (1, 2, 4, 8)
    assert fsq_model.dilations(10)[8:] == (1, 2)  # wraps after 2**7
    assert fsq_model.receptive_field(depth=5, kernel=3) == 1 + 2 * 31
    assert _tok().receptive_field == 1 + 2 * (1 + 2 + 4)


def test_causal_conv_matches_shifted_matmul_reference():
    conv = fsq_model.CausalConv(5, kernel=3, dilation=4, rngs=nnx.Rngs(1))
    x = jax.random.normal(jax.random.key(1), (2, 19, 5))
    w = conv.conv.kernel[...]  # [k, C_in, C_out]
    assert conv.conv.bias is not None
    xp = jnp.pad(x, ((0, 0), (8, 0), (0, 0)))
    ref = sum(xp[:, 4 * j : 4 * j + 19] @ w[j] for j in range(3)) + conv.conv.bias[...]
    np.testing.assert_allclose(conv(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_future_inputs_never_change_past_outputs(tok, seed):
    x = _x(2, 40, seed)
    t = int(np.random.default_rng(seed).integers(0, 39))
    x2 = x.at[:, t + 1 :].set(100.0 * jax.random.normal(jax.random.key(99), (2, 39 - t, F)))
    (xh1, _, i1), (xh2, _, i2) = _call(tok, x), _call(tok, x2)
    z1, z2 = _encode(tok, x), _encode(tok, x2)
    np.testing.assert_array_equal(i1[:, : t + 1], i2[:, : t + 1])
    np.testing.assert_allclose(z1[:, : t + 1], z2[:, : t + 1], rtol=0, atol=1e-6)
    np.testing.assert_allclose(xh1[:, : t + 1], xh2[:, : t + 1], rtol=0, atol=1e-5)
    assert not np.allclose(z1[:, t + 1 :], z2[:, t + 1 :])  # the change did reach later bars


def test_receptive_field_is_exact(tok):
    rf, t = tok.receptive_field, 30
    x = _x(2, 40, 3)
    # gradient support of z[0, t] over input bars is exactly [t - rf + 1, t]
    graphdef, state = nnx.split(tok)
    jac = jax.jit(jax.grad(lambda x: nnx.merge(graphdef, state).encode(x)[0, t].sum()))(x)
    touched = np.nonzero(np.abs(np.asarray(jac[0])).sum(-1) > 0)[0]
    np.testing.assert_array_equal(touched, np.arange(t - rf + 1, t + 1))
    # perturbing every bar just outside leaves z[t] unchanged; the oldest bar inside changes it
    z = _encode(tok, x)[:, t]
    outside = x.at[:, : t - rf + 1].add(10.0)
    np.testing.assert_allclose(_encode(tok, outside)[:, t], z, rtol=0, atol=1e-6)
    inside = x.at[:, t - rf + 1].add(10.0)
    assert not np.allclose(_encode(tok, inside)[:, t], z, atol=1e-4)


def _mse(model, x):
    x_hat, _, _ = model(x)
    return jnp.mean((x_hat - x) ** 2)


def test_straight_through_gradients_reach_encoder(tok):
    grads = nnx.jit(nnx.grad(_mse))(tok, _x(2, 40))
    enc = grads.encoder
    for block in enc.blocks.values():
        assert float(jnp.abs(block.conv.conv.kernel[...]).max()) > 0
        assert float(jnp.abs(block.out.kernel[...]).max()) > 0
    assert float(jnp.abs(enc.inp.kernel[...]).max()) > 0
    assert float(jnp.abs(grads.decoder.out.kernel[...]).max()) > 0
    leaves = jax.tree.leaves(nnx.state(grads, nnx.Param))
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)


def test_deterministic_with_fixed_rngs():
    a, b = _tok(0), _tok(0)
    for pa, pb in zip(jax.tree.leaves(nnx.state(a)), jax.tree.leaves(nnx.state(b)), strict=True):
        np.testing.assert_array_equal(pa, pb)
    x = _x(2, 40)
    for oa, ob in zip(_call(a, x), _call(b, x), strict=True):
        np.testing.assert_array_equal(oa, ob)
    c = _tok(1)
    assert not np.array_equal(c.encoder.inp.kernel[...], a.encoder.inp.kernel[...])


def test_overfits_a_small_batch():
    model = _tok(0, depth=2, decoder_depth=2)
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param)
    # smooth, learnable inputs: random walks, standardised
    x = jnp.cumsum(jax.random.normal(jax.random.key(5), (4, 32, F)), axis=1)
    x = (x - x.mean((0, 1))) / x.std((0, 1))

    @nnx.jit
    def step(model, opt, x):
        loss, grads = nnx.value_and_grad(_mse)(model, x)
        opt.update(model, grads)
        return loss

    first = float(_mse(model, x))
    for _ in range(200):
        step(model, opt, x)
    last = float(_mse(model, x))
    assert last < first / 10, (first, last)
