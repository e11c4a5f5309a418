"""The SSD scan as a Pallas kernel: one program per (batch, head) walks the chunks in order.

Dimension letters as in `kernels.ssd` (B L H P G N) and `kernels.ssd.chunked` (Q C R):

| letter | meaning |
| ------ | ------- |
| Q | chunk length |
| C | number of chunks (L padded up to C * Q) |
| R | heads per group, H // G |

Forward, per program (b, h), with the [P, N] state carried through a `fori_loop` over the C
chunks (in registers / VMEM, never written to HBM between chunks):

    for c in 0 .. C-1:                                   # rows i, j of chunk c
        y_c   = ((C_c B_c^T) o exp(a_cum[i] - a_cum[j]) [i >= j]) (dt x)_c    # [Q, Q] @ [Q, P]
              + exp(a_cum) o (C_c S^T)                                         # [Q, N] @ [N, P]
        S     = exp(a_cum[Q-1]) S + ((dt x)_c o exp(a_cum[Q-1] - a_cum))^T B_c # [P, Q] @ [Q, N]

so every step is a matmul; the sequential part is C steps, not L. The within-chunk cumulative
log-decay `a_cum` ([B, H, C, Q], O(L H) work) and the layout changes are done in XLA around the
call; the D skip (`y += D x`) too.

Gradients: `jax.custom_vjp` whose backward is the VJP of the chunked pure-JAX form
(`kernels.ssd.chunked.ssd_chunked_core`), recomputed from the saved inputs (the residuals are
just the inputs); the kernel itself is forward-only. That is exact (same function) and
memory-light, but a training step pays the chunked forward again inside the backward: a
backward kernel is the next step when accelerator time shows it matters.

`interpret=None` picks interpret mode when the default backend is CPU (Pallas has no native
CPU lowering) and native lowering otherwise. In interpret mode the kernel is tested against the
reference; its native lowering to Mosaic (TPU) and Triton (GPU) is checked without a device
(tests lower it for an abstract TPU v5e and H100), but it has not yet been run or timed on an
accelerator here.

Sharding: a pallas_call is one opaque program, so under any mesh it runs inside `shard_map`
on each device's batch rows (`kernels.ssd.chunked.per_batch_shard`).

Sizes: each program holds its (b, h) slice of the whole padded sequence as blocks (x and y
[Lp, P], B and C [Lp, N]): at L = 8192, P = N = 64, fp32 that is 2 MiB per block, about 16 MiB
double-buffered, which is at or above the default scoped-VMEM limit of some TPUs. Longer
sequences want a grid axis over sequence blocks with the state in scratch (a TODO), or
splitting the sequence across calls with `initial_state`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from kernels.ssd.chunked import _compute_dtype, check_inputs, pad_to_chunks, per_batch_shard, ssd_chunked_core

_F32 = jnp.float32


def _ssd_kernel(x_ref, dt_ref, cum_ref, b_ref, c_ref, s0_ref, y_ref, s_ref, *, q: int, nc: int, cdt):
    """One (batch, head): x [Lp, P], dt/cum [C, Q], B/C [Lp, N], s0 [P, N] -> y [Lp, P], S [P, N]."""
    causal = jax.lax.broadcasted_iota(jnp.int32, (q, q), 0) >= jax.lax.broadcasted_iota(jnp.int32, (q, q), 1)
    contract_last = (((1,), (1,)), ((), ()))  # [Q, N] x [Q', N] -> [Q, Q']
    contract_first = (((0,), (0,)), ((), ()))  # [Q, P] x [Q, N] -> [P, N]

    def chunk_step(c, s):
        rows = pl.ds(pl.multiple_of(c * q, q), q)
        x = x_ref[rows, :].astype(_F32)  # [Q, P]
        bm = b_ref[rows, :].astype(cdt)  # [Q, N]
        cm = c_ref[rows, :].astype(cdt)
        dt_row = dt_ref[pl.ds(c, 1), :]  # [1, Q]
        cum_row = cum_ref[pl.ds(c, 1), :]
        dt_col, cum_col = dt_row.T, cum_row.T  # [Q, 1]
        a_last = cum_ref[pl.ds(c, 1), pl.ds(q - 1, 1)]  # [1, 1]

        xdt = x * dt_col
        decay = jnp.exp(jnp.where(causal, cum_col - cum_row, -jnp.inf))  # [Q, Q]
        cb = jax.lax.dot_general(cm, bm, contract_last, preferred_element_type=_F32)
        y = jnp.dot((cb * decay).astype(cdt), xdt.astype(cdt), preferred_element_type=_F32)
        y_carry = jax.lax.dot_general(cm, s.astype(cdt), contract_last, preferred_element_type=_F32)  # [Q, P]
        y_ref[rows, :] = (y + jnp.exp(cum_col) * y_carry).astype(y_ref.dtype)

        xdt_end = (xdt * jnp.exp(a_last - cum_col)).astype(cdt)
        s_new = jax.lax.dot_general(xdt_end, bm, contract_first, preferred_element_type=_F32)  # [P, N]
        return jnp.exp(a_last) * s + s_new

    s_ref[...] = jax.lax.fori_loop(0, nc, chunk_step, s0_ref[...].astype(_F32))


def _pallas_core(x, dt, A, B, C, s0, chunk: int, interpret: bool):
    """y [B, L, H, P] float32 (no D skip), final [B, H, P, N] float32, via the kernel."""
    b, length, h, p = x.shape
    g, n = B.shape[-2:]
    r, q = h // g, chunk
    x, dt, B, C = pad_to_chunks(x, dt, B, C, q)
    lp = x.shape[1]
    nc = lp // q

    dt_h = jnp.moveaxis(dt.astype(_F32), 1, -1).reshape(b, h, nc, q)  # [B, H, C, Q]
    cum = jnp.cumsum(dt_h * A.astype(_F32)[:, None, None], axis=-1)
    x_h = jnp.moveaxis(x, 1, 2)  # [B, H, Lp, P]
    b_g, c_g = jnp.moveaxis(B, 1, 2), jnp.moveaxis(C, 1, 2)  # [B, G, Lp, N]

    sq = pl.squeezed
    per_head = lambda *tail: pl.BlockSpec((sq, sq, *tail), lambda i, j: (i, j, 0, 0))  # noqa: E731
    per_group = pl.BlockSpec((sq, sq, lp, n), lambda i, j: (i, j // r, 0, 0))
    kernel = functools.partial(_ssd_kernel, q=q, nc=nc, cdt=_compute_dtype(x.dtype))
    y, final = pl.pallas_call(
        kernel,
        grid=(b, h),
        in_specs=[per_head(lp, p), per_head(nc, q), per_head(nc, q), per_group, per_group, per_head(p, n)],
        out_specs=[per_head(lp, p), per_head(p, n)],
        out_shape=[jax.ShapeDtypeStruct((b, h, lp, p), _F32), jax.ShapeDtypeStruct((b, h, p, n), _F32)],
        interpret=interpret,
        name="ssd_chunked_scan",
    )(x_h, dt_h, cum, b_g, c_g, s0.astype(_F32))
    return jnp.moveaxis(y, 2, 1)[:, :length], final


@functools.partial(jax.custom_vjp, nondiff_argnums=(6, 7))
def _ssd_pallas_core(x, dt, A, B, C, s0, chunk, interpret):
    return _pallas_core(x, dt, A, B, C, s0, chunk, interpret)


def _fwd(x, dt, A, B, C, s0, chunk, interpret):
    return _pallas_core(x, dt, A, B, C, s0, chunk, interpret), (x, dt, A, B, C, s0)


def _bwd(chunk, interpret, residuals, cotangents):
    del interpret
    length = residuals[0].shape[1]

    def chunked(x, dt, A, B, C, s0):
        y, final = ssd_chunked_core(x, dt, A, B, C, s0, chunk=chunk)
        return y[:, :length], final

    _, vjp = jax.vjp(chunked, *residuals)
    return vjp(cotangents)


_ssd_pallas_core.defvjp(_fwd, _bwd)


def ssd_pallas(x, dt, A, B, C, D=None, *, chunk: int = 64, initial_state=None, interpret: bool | None = None):
    """The SSD scan through the Pallas kernel (same arguments and results as `ssd_reference`).

    Args:
      x, dt, A, B, C, D, initial_state: as in `kernels.ssd.reference.ssd_reference`.
      chunk: Q, steps per chunk inside the kernel; any L works (padded with dt = 0).
      interpret: run the kernel in Pallas interpret mode; None = when the default backend is CPU.
        On GPU (Triton) keep chunk, P and N powers of two >= 16, as `tl.dot` wants.

    Returns:
      (y [B, L, H, P] in x.dtype, final_state [B, H, P, N] float32). Differentiable: the
      backward is the chunked form's VJP (see the module docstring).
    """
    check_inputs(x, dt, A, B, C, D, initial_state, chunk=chunk)
    if interpret is None:
        interpret = jax.default_backend() == "cpu"
    _, _, h, p = x.shape
    n = B.shape[-1]

    def core(x, dt, A, B, C, s0):
        s0 = jnp.zeros((x.shape[0], h, p, n), _F32) if s0 is None else s0
        return _ssd_pallas_core(x, dt, A, B, C, s0, chunk, bool(interpret))

    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        y, final = core(x, dt, A, B, C, initial_state)
    else:  # a pallas_call is one opaque program: under a mesh it must see local arrays
        y, final = per_batch_shard(core, mesh, x, dt, A, B, C, initial_state)
    if D is not None:
        y = y + x.astype(_F32) * D.astype(_F32)[:, None]
    return y.astype(x.dtype), final
