"""Finite Scalar Quantization (FSQ): a fixed grid instead of a learned codebook.

Mentzer, Minnen, Agustsson, Tschannen, "Finite Scalar Quantization: VQ-VAE Made Simple",
ICLR 2024 (arXiv:2309.15505). Each of the `d` latent channels is squashed into a bounded
range (`bound`), rounded to one of `L_i` integer levels with a straight-through gradient
(`quantize`), and rescaled to [-1, 1]. The implicit codebook is the product grid, with
`K = prod(levels)` codes; no codebook loss, no commitment loss, no dead-code resets.

Why `(8, 8, 4, 4)` is the project's default. The paper (Table 1 / Sec. 4.1) recommends
`(8, 5, 5, 5)` for a codebook of about 2^10 (1000 codes). The project wants exactly
2^10 = 1024 tokens (a power of two: token ids fill 10 bits and downstream embedding tables
are sized 1024), so we keep the paper's `d = 4` channels and its rule of at least 4 levels
per channel (fewer levels per channel makes each channel a near-binary decision and
hurts utilisation), and factor 1024 = 8 * 8 * 4 * 4, the split of 1024 into 4 factors
that is closest to the recommended set.

Conventions (as in the paper's reference code):
- even `L` uses a half-step offset so that rounding yields exactly `L` integers
  `{-L/2, ..., L/2 - 1}`; odd `L` yields `{-(L-1)/2, ..., (L-1)/2}`;
- normalised codes are the integers divided by `L // 2`, so they lie in [-1, 1];
- indices are mixed radix with the first channel as the least significant digit.
  The paper's code computes the even-L shift with `tan`; we use `atanh`, the exact
  inverse of `tanh`, so that `bound(0) = 0` (this needs `L >= 3`).

Dimension letters: `d` latent channels (`len(levels)`), `K` codebook size, `...` any
leading batch dimensions. Every function is pure; `levels` is a static tuple of ints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from strates.core.errors import InvalidInput

DEFAULT_LEVELS: tuple[int, ...] = (8, 8, 4, 4)
DEFAULT_EPS = 1e-3


def check_levels(levels: Sequence[int]) -> tuple[int, ...]:
    """Return `levels` as a tuple of ints, or raise `InvalidInput` saying what is wrong."""
    levels = tuple(levels)
    if not levels:
        raise InvalidInput(
            "FSQ levels are empty", rule="fsq-levels", fix="give at least one level, e.g. (8, 8, 4, 4)"
        )
    bad = [lv for lv in levels if not isinstance(lv, (int, np.integer)) or lv < 3]
    if bad:
        raise InvalidInput(
            f"FSQ levels must be integers >= 3, got {levels} (bad: {bad})",
            rule="fsq-levels",
            fix="use levels such as (8, 8, 4, 4) or (8, 5, 5, 5)",
        )
    if math.prod(levels) > 2**31 - 1:
        raise InvalidInput(
            f"FSQ codebook size prod{levels} = {math.prod(levels)} does not fit in int32",
            rule="fsq-levels",
            fix="use fewer or smaller levels",
        )
    return tuple(int(lv) for lv in levels)


def codebook_size(levels: Sequence[int]) -> int:
    """`K = prod(levels)`."""
    return math.prod(levels)


def half_width(levels: Sequence[int]) -> np.ndarray:
    """`L // 2` per channel, the divisor that maps integer codes to [-1, 1]. `[d]`."""
    return np.asarray(levels, np.int64) // 2


def bound(z: jax.Array, levels: Sequence[int], *, eps: float = DEFAULT_EPS) -> jax.Array:
    """Squash each channel so that rounding gives exactly `L_i` integers.

    `half_l = (L-1)(1-eps)/2`, `offset = 0.5` for even `L` else 0,
    `shift = atanh(offset / half_l)`, result `tanh(z + shift) * half_l - offset`.
    The result lies strictly inside `(-L/2, L/2 - 1)` (even `L`) or
    `(-(L-1)/2, (L-1)/2)` (odd `L`), so rounding can only give the `L` grid integers;
    `z = 0` maps to 0, and the result is finite for any finite or infinite input (tanh
    saturates). `z: [..., d] -> [..., d]`, float.
    """
    lv = np.asarray(levels, np.float64)
    half_l = (lv - 1.0) * (1.0 - eps) / 2.0
    offset = np.where(lv % 2 == 0, 0.5, 0.0)
    shift = np.arctanh(offset / half_l)
    dt = z.dtype
    return jnp.tanh(z + shift.astype(dt)) * half_l.astype(dt) - offset.astype(dt)


def round_ste(z: jax.Array) -> jax.Array:
    """Round to the nearest integer; the gradient is the identity (straight-through)."""
    return z + jax.lax.stop_gradient(jnp.round(z) - z)


def quantize(z: jax.Array, levels: Sequence[int]) -> jax.Array:
    """Round an already *bounded* `z` (output of `bound`) and normalise to [-1, 1].

    `zhat = round_ste(z) / (L // 2)`. The gradient wrt `z` is `1 / (L // 2)` per channel
    (straight-through). `z: [..., d] -> zhat: [..., d]`, on the grid of `codebook(levels)`.
    """
    return round_ste(z) / jnp.asarray(half_width(levels), z.dtype)


def fsq(z: jax.Array, levels: Sequence[int], *, eps: float = DEFAULT_EPS) -> jax.Array:
    """`quantize(bound(z))`: any real `z: [..., d]` to a grid code `zhat: [..., d]`."""
    return quantize(bound(z, levels, eps=eps), levels)


def _basis(levels: Sequence[int]) -> np.ndarray:
    """Mixed-radix place values `[1, L_0, L_0 L_1, ...]`. `[d]`, int32."""
    return np.concatenate(([1], np.cumprod(levels[:-1]))).astype(np.int32)


def codes_to_indices(zhat: jax.Array, levels: Sequence[int]) -> jax.Array:
    """Normalised grid codes to token ids. `zhat: [..., d] -> int32 [...]` in `[0, K)`."""
    hw = jnp.asarray(half_width(levels), zhat.dtype)
    digits = jnp.round(zhat * hw + hw).astype(jnp.int32)  # round guards float error
    return jnp.sum(digits * jnp.asarray(_basis(levels)), axis=-1, dtype=jnp.int32)


def indices_to_codes(idx: jax.Array, levels: Sequence[int]) -> jax.Array:
    """Token ids to normalised grid codes. `idx: int [...] -> float32 [..., d]`."""
    idx = jnp.asarray(idx, jnp.int32)[..., None]
    digits = (idx // jnp.asarray(_basis(levels))) % jnp.asarray(levels, jnp.int32)
    hw = jnp.asarray(half_width(levels), jnp.float32)
    return (digits.astype(jnp.float32) - hw) / hw


def codebook(levels: Sequence[int]) -> jax.Array:
    """Every code vector in index order: row `k` is `indices_to_codes(k)`. `[K, d]`, float32."""
    return indices_to_codes(jnp.arange(codebook_size(levels), dtype=jnp.int32), levels)


def code_counts(idx: jax.Array, num_codes: int) -> jax.Array:
    """How often each token id occurs. `idx: int [...] -> int32 [K]`."""
    return jnp.bincount(jnp.ravel(idx), length=num_codes)


def utilization(idx: jax.Array, num_codes: int) -> jax.Array:
    """Share of the `K` codes that occur at least once in `idx`. Scalar in `[0, 1]`."""
    return jnp.mean(code_counts(idx, num_codes) > 0)


def perplexity(idx: jax.Array, num_codes: int) -> jax.Array:
    """`exp(entropy)` of the empirical code distribution of `idx`. Scalar in `[1, K]`.

    `K` when every code is equally frequent, 1 when a single code is used.
    """
    counts = code_counts(idx, num_codes).astype(jnp.float32)
    p = counts / jnp.maximum(counts.sum(), 1.0)
    entropy = -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0))
    return jnp.exp(entropy)
