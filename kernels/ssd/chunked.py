"""The chunked SSD algorithm of Mamba-2 in pure JAX: the XLA fast path and the VJP of record.

Dao & Gu, "Transformers are SSMs" (ICML 2024), section 6 ("SSD algorithm"). Dimension letters
as in `kernels.ssd` (B L H P G N), plus:

| letter | meaning |
| ------ | ------- |
| Q | chunk length (`chunk`) |
| C | number of chunks, ceil(L / Q) (in einsum strings: `c`) |
| R | heads per group, H // G (heads are split as `h = g * R + r`) |
| I, J | positions inside one chunk (output, input) |

The sequence is cut into C chunks of Q steps. With the within-chunk cumulative log-decay
`a_cum[i] = sum_{k <= i} dt_k A` (the "segment sum" of the paper), four pieces make the output:

1. intra-chunk, an attention-like masked matmul:
   `y_diag[i] = sum_{j <= i} (C_i . B_j) exp(a_cum[i] - a_cum[j]) dt_j x_j`   ([Q, Q] per chunk)
2. each chunk's own final state: `S_c = sum_j exp(a_cum[Q-1] - a_cum[j]) dt_j x_j B_j^T`
3. inter-chunk state passing, a short `lax.scan` over the C chunks:
   `S_in[c+1] = exp(a_cum_c[Q-1]) S_in[c] + S_c`
4. the carried state's contribution: `y_off[i] = exp(a_cum[i]) S_in C_i`

Two schedules compute exactly this (`SCHEDULES`, chosen by `schedule=`, "auto" by backend):

- "sequential" (CPU): one `lax.scan` over chunks carrying the state; its body does pieces 1, 4
  and the state update for one chunk and is wrapped in `jax.checkpoint`, so the backward stores
  only the state entering each chunk (O(C H P N)) and recomputes the rest chunk by chunk, with
  each step's working set in cache. This is the algorithm of the Pallas kernel, in XLA.
- "parallel" (accelerators): pieces 1 and 2 for all chunks at once, a short scan for 3, then 4;
  more work per op, O(L Q H) autodiff residuals.

Neither builds anything bigger than one chunk's [Q, Q] per (batch, head), forward or backward;
the reference scan's backward stores O(L H P N).

Padding L up to a multiple of Q uses dt = 0 (and zero x, B, C): `exp(0 * A) = 1` and
`0 * x B^T = 0`, so padded steps leave the state unchanged and the final state is exact.

Accumulation is float32 (`preferred_element_type`); for 16-bit inputs the matmul operands stay
16-bit, decays and the carried state are always float32.

Sharding: under a mesh with Explicit axes (sharding in the types) the scan runs inside
`shard_map` on each device's batch rows, other axes gathered (`per_batch_shard`); with no mesh
or Auto axes, XLA's partitioner handles the plain ops.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_F32 = jnp.float32


def check_inputs(x, dt, A, B, C, D=None, initial_state=None, *, chunk: int | None = None) -> None:
    """Raise ValueError, with the offending shapes, unless the arguments fit the SSD conventions."""
    if x.ndim != 4:
        raise ValueError(f"x must be [B, L, H, P]; got shape {x.shape}")
    b, length, h, p = x.shape
    if B.ndim != 4 or C.shape != B.shape:
        raise ValueError(f"B and C must both be [B, L, G, N]; got B {B.shape}, C {C.shape}")
    g, n = B.shape[-2:]
    want = {
        "dt": (dt.shape, (b, length, h)),
        "A": (A.shape, (h,)),
        "B": (B.shape[:2], (b, length)),
    }
    if D is not None:
        want["D"] = (D.shape, (h,))
    if initial_state is not None:
        want["initial_state"] = (initial_state.shape, (b, h, p, n))
    for name, (got, expected) in want.items():
        if tuple(got) != expected:
            raise ValueError(f"{name} has shape {tuple(got)}, expected {expected} (from x {x.shape}, B {B.shape})")
    if h % g:
        raise ValueError(f"heads H={h} must be a multiple of groups G={g}")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise ValueError(f"chunk must be a positive int; got {chunk!r}")


def pad_to_chunks(x, dt, B, C, chunk: int):
    """Pad the L axis of x, dt, B, C with zeros up to a multiple of `chunk` (dt = 0: a no-op step)."""
    length = x.shape[1]
    pad = -length % chunk
    if pad == 0:
        return x, dt, B, C

    def zpad(t):
        return jnp.pad(t, [(0, 0), (0, pad)] + [(0, 0)] * (t.ndim - 2))

    return zpad(x), zpad(dt), zpad(B), zpad(C)


def _compute_dtype(dtype):
    """Matmul operand dtype: 16-bit floats stay 16-bit (fp32 accumulation); all else fp32."""
    return dtype if jnp.dtype(dtype).itemsize == 2 else _F32


def per_batch_shard(core, mesh, x, dt, A, B, C, initial_state):
    """`core(x, dt, A, B, C, initial_state) -> (y, final)` under `shard_map`, per batch shard.

    The scan is independent per batch row, so running it on each device's rows is exact. The
    batch axis keeps x's batch sharding; every other axis (L, heads, ...) is gathered first,
    which keeps the kernels free of sharding rules. A, and D outside, are replicated.
    """
    rows = jax.sharding.PartitionSpec(jax.typeof(x).sharding.spec[0])
    whole = jax.sharding.PartitionSpec()
    args = [x, dt, A, B, C] + ([] if initial_state is None else [initial_state])
    specs = [rows, rows, whole, rows, rows] + ([] if initial_state is None else [rows])
    args = [jax.sharding.reshard(t, spec) for t, spec in zip(args, specs, strict=True)]

    def local(*a):
        return core(*a[:5], a[5] if len(a) > 5 else None)

    # check_vma=False: pallas_call outputs, and the scans' zero carries, have no varying-axes type.
    return jax.shard_map(local, mesh=mesh, in_specs=tuple(specs), out_specs=(rows, rows), check_vma=False)(*args)


def _explicit_mesh():
    """The context mesh if any of its axes is Explicit (sharding in the types), else None."""
    mesh = jax.sharding.get_abstract_mesh()
    explicit = jax.sharding.AxisType.Explicit
    return None if mesh.empty or explicit not in tuple(mesh.axis_types) else mesh


def ssd_chunked(x, dt, A, B, C, D=None, *, chunk: int = 64, initial_state=None, schedule: str = "auto"):
    """The SSD scan by chunks of `chunk` steps (same arguments and results as `ssd_reference`).

    Args:
      x:  [B, L, H, P] inputs.
      dt: [B, L, H] positive step sizes.
      A:  [H] negative decay rates.
      B:  [B, L, G, N] input projections.
      C:  [B, L, G, N] output projections.
      D:  [H] skip weights, or None.
      chunk: Q, the chunk length; any L works (padded inside).
      initial_state: [B, H, P, N] state before the first step, or None (zeros).
      schedule: how chunks are ordered (same math, same results): "sequential", "parallel", or
        "auto" (sequential on CPU, parallel elsewhere); see `SCHEDULES`.

    Returns:
      (y [B, L, H, P] in x.dtype, final_state [B, H, P, N] float32).
    """
    check_inputs(x, dt, A, B, C, D, initial_state, chunk=chunk)
    length = x.shape[1]
    chunk = max(1, min(chunk, length))  # a sequence shorter than one chunk is one chunk: no padding
    schedule = resolve_schedule(schedule)

    def core(x, dt, A, B, C, s0):
        return ssd_chunked_core(x, dt, A, B, C, s0, chunk=chunk, schedule=schedule)

    mesh = _explicit_mesh()
    if mesh is None:  # no mesh, or one with Auto axes: XLA's partitioner shards the plain ops
        y, final = core(x, dt, A, B, C, initial_state)
    else:  # explicit sharding: run on local rows, so no op needs an output-sharding rule
        y, final = per_batch_shard(core, mesh, x, dt, A, B, C, initial_state)
    y = y[:, :length]
    if D is not None:
        y = y + x.astype(_F32) * D.astype(_F32)[:, None]
    return y.astype(x.dtype), final


SCHEDULES = {
    "sequential": "one lax.scan over chunks carrying the state; the body (one chunk: intra-chunk "
    "matmul, carried-state term, state update) is rematerialised in the backward, so only the "
    "[B, H, P, N] state entering each chunk is stored, and each step's data stays in cache. "
    "Fastest on CPU, lightest in memory.",
    "parallel": "all chunks' intra-chunk and chunk-state matmuls at once, then a short lax.scan "
    "passing states across chunks, then the carried-state term: more parallel work per op, "
    "meant for accelerators (not yet timed on one). Plain autodiff stores O(L Q H) residuals.",
}


def resolve_schedule(schedule: str = "auto", backend: str | None = None) -> str:
    """"sequential" or "parallel"; "auto" = sequential on CPU, parallel on other backends."""
    if schedule not in ("auto", *SCHEDULES):
        raise ValueError(f"unknown chunk schedule {schedule!r}; valid: auto, {', '.join(SCHEDULES)}")
    if schedule != "auto":
        return schedule
    return "sequential" if (backend or jax.default_backend()) == "cpu" else "parallel"


def ssd_chunked_core(x, dt, A, B, C, initial_state=None, *, chunk: int, schedule: str = "auto"):
    """The SSD scan without the D skip: (y [B, Lp, H, P] float32, final [B, H, P, N] float32).

    Lp is L rounded up to a multiple of `chunk`; rows past L are padding for the caller to drop.
    """
    if resolve_schedule(schedule) == "sequential":
        return _sequential(x, dt, A, B, C, initial_state, chunk)
    return _parallel(x, dt, A, B, C, initial_state, chunk)


def _cumsum_by_matmul(a, q: int):
    """Cumulative sum over the last axis (length q) as a matmul with a triangle of ones.

    It materialises the result once, where XLA's cumsum (a reduce-window) gets fused into, and
    recomputed by, every [Q, Q] elementwise loop that reads it.
    """
    upper = jnp.triu(jnp.ones((q, q), _F32))  # upper[k, i] = 1 if k <= i
    return jnp.einsum("...k,ki->...i", a, upper, precision=jax.lax.Precision.HIGHEST, preferred_element_type=_F32)


def _einsum_f32(spec: str, *operands):
    """`jnp.einsum` that accumulates in fp32 whatever the operands' dtype."""
    return jnp.einsum(spec, *operands, preferred_element_type=_F32)


def _sequential(x, dt, A, B, C, initial_state, q: int):
    b, _, h, p = x.shape
    g, n = B.shape[-2:]
    r = h // g
    x, dt, B, C = pad_to_chunks(x, dt, B, C, q)
    nc = x.shape[1] // q
    cdt = _compute_dtype(x.dtype)

    # Chunk-major, head-major layouts, so that the scan slices one chunk off the front.
    x_c = jnp.transpose(x.reshape(b, nc, q, h, p), (1, 0, 3, 2, 4))  # [c, b, h, q, p]
    dt_c = jnp.transpose(dt.astype(_F32).reshape(b, nc, q, h), (1, 0, 3, 2))  # [c, b, h, q]
    B_c = jnp.transpose(B.astype(cdt).reshape(b, nc, q, g, n), (1, 0, 3, 2, 4))  # [c, b, g, q, n]
    C_c = jnp.transpose(C.astype(cdt).reshape(b, nc, q, g, n), (1, 0, 3, 2, 4))
    a_cum = _cumsum_by_matmul(dt_c * A.astype(_F32)[:, None], q)  # [c, b, h, q]
    causal = jnp.tril(jnp.ones((q, q), bool))
    s0 = jnp.zeros((b, h, p, n), _F32) if initial_state is None else initial_state.astype(_F32)

    @jax.checkpoint
    def one_chunk(s, inputs):  # s: [b, h, p, n], the state entering this chunk
        # The barrier materialises this chunk's slices: without it XLA fuses the scan's
        # dynamic-slice into the [Q, Q] exp loop below, which then runs ~10x slower on CPU.
        xk, dtk, ak, Bk, Ck = jax.lax.optimization_barrier(inputs)
        a_last = ak[..., -1:]  # [b, h, 1]
        xdt = xk.astype(_F32) * dtk[..., None]  # [b, h, q, p]
        # 1. intra-chunk: (C B^T o L) (dt x), L[i, j] = exp(a[i] - a[j]) for i >= j.
        decay = jnp.exp(jnp.where(causal, ak[..., :, None] - ak[..., None, :], -jnp.inf))
        cb = _einsum_f32("bgin,bgjn->bgij", Ck, Bk)  # shared by the R heads of a group
        m = (cb[:, :, None] * decay.reshape(b, g, r, q, q)).astype(cdt)
        y = _einsum_f32("bgrij,bgrjp->bgrip", m, xdt.reshape(b, g, r, q, p).astype(cdt))
        # 2. the carried state's share: exp(a[i]) S C_i.
        y_in = _einsum_f32("bgin,bgrpn->bgrip", Ck, s.reshape(b, g, r, p, n).astype(cdt))
        y = (y + y_in * jnp.exp(ak).reshape(b, g, r, q, 1)).reshape(b, h, q, p)
        # 3. the state leaving the chunk.
        x_end = (xdt * jnp.exp(a_last - ak)[..., None]).reshape(b, g, r, q, p).astype(cdt)
        s_own = _einsum_f32("bgrqp,bgqn->bgrpn", x_end, Bk).reshape(b, h, p, n)
        return jnp.exp(a_last)[..., None] * s + s_own, y

    final, ys = jax.lax.scan(one_chunk, s0, (x_c, dt_c, a_cum, B_c, C_c))
    y = jnp.transpose(ys, (1, 0, 3, 2, 4)).reshape(b, nc * q, h, p)
    return y, final


def _parallel(x, dt, A, B, C, initial_state, q: int):
    b, _, h, p = x.shape
    g, n = B.shape[-2:]
    r = h // g
    x, dt, B, C = pad_to_chunks(x, dt, B, C, q)
    nc = x.shape[1] // q
    cdt = _compute_dtype(x.dtype)

    # Reshapes split one axis at a time, which explicit (batch-)sharding can follow.
    dtc = dt.astype(_F32).reshape(b, nc, q, h).reshape(b, nc, q, g, r)
    xdt = (x.astype(_F32).reshape(b, nc, q, h, p).reshape(b, nc, q, g, r, p) * dtc[..., None]).astype(cdt)
    Bc = B.astype(cdt).reshape(b, nc, q, g, n)
    Cc = C.astype(cdt).reshape(b, nc, q, g, n)
    # Within-chunk cumulative log-decay, heads-major for the [Q, Q] work: [b, c, g, r, q].
    a_cum = _cumsum_by_matmul(jnp.moveaxis(dtc * A.astype(_F32).reshape(g, r), 2, -1), q)
    a_last = a_cum[..., -1]  # [b, c, g, r]

    # 1. Intra-chunk: (C B^T o L) (dt x), L[i, j] = exp(a_cum[i] - a_cum[j]) for i >= j.
    causal = jnp.tril(jnp.ones((q, q), bool))
    decay = jnp.exp(jnp.where(causal, a_cum[..., :, None] - a_cum[..., None, :], -jnp.inf))
    cb = _einsum_f32("bcign,bcjgn->bcgij", Cc, Bc)  # shared by the R heads of a group
    m = (cb[:, :, :, None] * decay).astype(cdt)
    y_diag = _einsum_f32("bcgrij,bcjgrp->bcigrp", m, xdt)

    # 2. Each chunk's final state from its own inputs: [b, c, g, r, p, n].
    decay_to_end = jnp.exp(a_last[..., None] - a_cum)  # [b, c, g, r, q]
    xdt_end = (xdt.astype(_F32) * jnp.moveaxis(decay_to_end, -1, 2)[..., None]).astype(cdt)
    states = _einsum_f32("bcqgn,bcqgrp->bcgrpn", Bc, xdt_end)

    # 3. Pass states across chunks; S_in[c] is the state entering chunk c.
    if initial_state is None:
        s0 = jnp.zeros((b, g, r, p, n), _F32)
    else:
        s0 = initial_state.astype(_F32).reshape(b, g, r, p, n)

    def carry(s, inputs):
        s_c, a_c = inputs
        return jnp.exp(a_c)[..., None, None] * s + s_c, s

    final, s_in = jax.lax.scan(carry, s0, (jnp.moveaxis(states, 1, 0), jnp.moveaxis(a_last, 1, 0)))

    # 4. The carried state's share of each output: exp(a_cum[i]) S_in C_i.
    y_off = _einsum_f32("bcign,cbgrpn->bcigrp", Cc, s_in.astype(cdt))
    y_off = y_off * jnp.moveaxis(jnp.exp(a_cum), -1, 2)[..., None]

    y = (y_diag + y_off).reshape(b, nc, q, h, p).reshape(b, nc * q, h, p)
    return y, final.reshape(b, h, p, n)
