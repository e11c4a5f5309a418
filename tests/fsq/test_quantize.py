"""FSQ: grid membership for any input, index bijection, straight-through gradient, stats."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from strates.core.errors import InvalidInput
from strates.fsq import quantize as fsq

LEVELS = [(8, 8, 4, 4), (8, 5, 5, 5), (3, 4)]


def _grid_ok(zhat, levels):
    """Each channel of `zhat` is an integer in [-L//2, (L-1)//2] after scaling by L//2."""
    hw = fsq.half_width(levels)
    ints = np.asarray(zhat) * hw
    np.testing.assert_allclose(ints, np.round(ints), atol=1e-5)
    lo = -(np.asarray(levels) // 2)
    hi = (np.asarray(levels) - 1) // 2
    assert np.all(np.round(ints) >= lo) and np.all(np.round(ints) <= hi)


@pytest.mark.parametrize("levels", LEVELS)
def test_codes_on_grid_for_any_magnitude(levels):
    scale = jnp.array([1e-3, 1.0, 30.0, 1e6]).repeat(128)[:, None]  # 128 draws per scale
    z = scale * jax.random.normal(jax.random.key(0), (512, len(levels)))
    zhat = fsq.fsq(z, levels)
    assert zhat.shape == z.shape and zhat.dtype == jnp.float32
    assert bool(jnp.all(jnp.isfinite(zhat)))
    assert float(jnp.max(jnp.abs(zhat))) <= 1.0
    _grid_ok(zhat, levels)
    idx = fsq.codes_to_indices(zhat, levels)
    assert idx.dtype == jnp.int32 and idx.shape == (512,)
    assert int(idx.min()) >= 0 and int(idx.max()) < math.prod(levels)


@pytest.mark.parametrize("levels", LEVELS)
def test_extremes_and_infinities_stay_on_grid(levels):
    d = len(levels)
    z = jnp.array([[1e6] * d, [-1e6] * d, [jnp.inf] * d, [-jnp.inf] * d, [0.0] * d])
    zhat = fsq.fsq(z, levels)
    assert bool(jnp.all(jnp.isfinite(zhat)))
    _grid_ok(zhat, levels)
    np.testing.assert_array_equal(zhat[-1], 0.0)  # bound(0) = 0, also for even L


@pytest.mark.parametrize("levels", LEVELS)
def test_each_channel_reaches_exactly_its_levels(levels):
    z = jnp.tile(jnp.linspace(-20.0, 20.0, 4001)[:, None], (1, len(levels)))
    zhat = np.asarray(fsq.fsq(z, levels))
    for c, level in enumerate(levels):
        assert len(np.unique(zhat[:, c])) == level


@pytest.mark.parametrize("levels", LEVELS)
def test_indices_codes_bijection(levels):
    k = fsq.codebook_size(levels)
    idx = jnp.arange(k, dtype=jnp.int32)
    codes = fsq.indices_to_codes(idx, levels)
    np.testing.assert_array_equal(fsq.codes_to_indices(codes, levels), idx)
    book = np.asarray(fsq.codebook(levels))
    assert book.shape == (k, len(levels))
    assert len(np.unique(book, axis=0)) == k
    np.testing.assert_array_equal(book, codes)
    _grid_ok(book, levels)
    # codes -> indices -> codes for codes reached by quantizing random inputs
    zhat = fsq.fsq(3.0 * jax.random.normal(jax.random.key(1), (4, 7, len(levels))), levels)
    back = fsq.indices_to_codes(fsq.codes_to_indices(zhat, levels), levels)
    np.testing.assert_array_equal(back, zhat)


def test_default_codebook_is_1024():
    assert fsq.codebook_size(fsq.DEFAULT_LEVELS) == 1024


@pytest.mark.parametrize("levels", LEVELS)
def test_straight_through_gradient_is_identity_inside_bounds(levels):
    key_z, key_w = jax.random.split(jax.random.key(2))
    z = jax.random.normal(key_z, (64, len(levels)))
    w = jax.random.normal(key_w, (64, len(levels)))
    hw = jnp.asarray(fsq.half_width(levels), jnp.float32)

    g_ste = jax.grad(lambda z: (fsq.quantize(fsq.bound(z, levels), levels) * w).sum())(z)
    g_cont = jax.grad(lambda z: (fsq.bound(z, levels) / hw * w).sum())(z)
    np.testing.assert_allclose(g_ste, g_cont, rtol=1e-6, atol=1e-7)
    assert float(jnp.abs(g_ste).min()) > 0.0
    # and the rounding itself passes gradients through unchanged
    np.testing.assert_array_equal(jax.grad(lambda b: (fsq.round_ste(b) * w).sum())(z), w)


def test_deterministic_and_jit_consistent():
    levels = fsq.DEFAULT_LEVELS
    z = 5.0 * jax.random.normal(jax.random.key(3), (2, 16, 4))
    a = fsq.fsq(z, levels)
    b = fsq.fsq(z, levels)
    c = jax.jit(fsq.fsq, static_argnums=1)(z, levels)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(
        fsq.codes_to_indices(a, levels), jax.jit(fsq.codes_to_indices, static_argnums=1)(a, levels)
    )


def test_perplexity_and_utilization():
    k = 1024
    uniform = jax.random.randint(jax.random.key(4), (200_000,), 0, k)
    assert float(fsq.perplexity(uniform, k)) == pytest.approx(k, rel=0.01)
    assert float(fsq.utilization(uniform, k)) == 1.0
    const = jnp.full((5, 7), 17, jnp.int32)
    assert float(fsq.perplexity(const, k)) == pytest.approx(1.0)
    assert float(fsq.utilization(const, k)) == pytest.approx(1 / k)
    two = jnp.array([0, 1, 0, 1])
    assert float(fsq.perplexity(two, k)) == pytest.approx(2.0)


@pytest.mark.parametrize("levels", [(), (8, 2, 4), (8, 1), (4.5, 4)])
def test_bad_levels_are_rejected(levels):
    with pytest.raises(InvalidInput, match="FSQ"):
        fsq.check_levels(levels)
