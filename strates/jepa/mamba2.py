"""Mamba-2 (Dao & Gu, "Transformers are SSMs", ICML 2024): the block, its pre-norm
residual layer, and the one call site of the SSD scan.

Dimension letters: B batch, L bars, D d_model, Di = expand·D inner width, H = Di / P heads,
P head_dim, G groups sharing B/C, N d_state, K conv kernel, C = Di + 2GN conv channels.

Logical axes of the block's params (see `strates.jepa.layers`):

| param | shape | logical axes |
| --- | --- | --- |
| in_proj.kernel | [D, 2Di + 2GN + H] | ("embed", "mlp") |
| out_proj.kernel | [Di, D] | ("mlp", "embed") |
| conv_w / conv_b | [K, C] / [C] | (None, "mlp") / ("mlp",) |
| A_log, dt_bias, D | [H] | ("heads",) |
| norm_scale (gated norm) | [Di] | ("mlp",) |
| norm.scale (pre-norm, in MambaLayer) | [D] | ("embed",) |

`in_proj`'s output packs [z, x, B, C, dt] as in the reference, so sharding "mlp" over a
mesh axis of size > 1 would split those parts unevenly (the reference's tensor-parallel
form interleaves them per shard); the default rules map "mlp" to `model`, which every
default mesh keeps at size 1. The residual stream [B, L, D] is constrained to
("batch", "length", "embed").
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from kernels.ssd import ssd  # the one import site of the SSD scan (see `ssd_scan`)
from strates.jepa.layers import ACT, Linear, RMSNorm, constrain, f32, ones, param, use


def ssd_scan(x, dt, A, B, C, D, *, chunk: int, impl: str):
    """The SSD scan, `kernels.ssd.ssd`: `impl` is "auto" (Pallas on TPU/GPU, the chunked
    XLA form on CPU), "xla", "pallas" or "reference" (the step-by-step definition).

    `x: [B,L,H,P]`, `dt: [B,L,H]` (softplus-ed), `A, D: [H]`, `B, C: [B,L,G,N]` ->
    `y: [B,L,H,P]` in x.dtype (float32 accumulation).
    """
    s0 = None
    if not jax.sharding.get_abstract_mesh().empty:
        # the scans start from zeros; under an explicit mesh their carry must be sharded
        # like the batch, or `lax.scan` rejects the carry's type
        spec = jax.sharding.PartitionSpec(jax.typeof(x).sharding.spec[0], None, None, None)
        s0 = jnp.zeros((x.shape[0], x.shape[2], x.shape[3], B.shape[-1]), f32, out_sharding=spec)
    return ssd(x, dt, A, B, C, D, chunk=chunk, impl=impl, initial_state=s0)[0]


def causal_depthwise_conv(x: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
    """`y[:, t] = b + Σ_j w[j] · x[:, t − (K−1) + j]` with zeros before t = 0.

    `x: [B, L, C]`, `w: [K, C]`, `b: [C]` -> `[B, L, C]` (PyTorch `Conv1d(groups=C,
    padding=K−1)` truncated to the first L outputs, as the reference Mamba-2 block runs it).
    """
    k = w.shape[0]
    xp = jnp.pad(x, ((0, 0), (k - 1, 0), (0, 0)))
    length = x.shape[1]
    return b.astype(x.dtype) + sum(xp[:, j:j + length] * w[j].astype(x.dtype) for j in range(k))


def _dt_bias_init(key, shape, dtype, *, dt_min=1e-3, dt_max=1e-1, floor=1e-4):
    """Inverse softplus of dt ~ log-uniform[dt_min, dt_max] (the Mamba-2 init)."""
    u = jax.random.uniform(key, shape, f32)
    dt = jnp.maximum(jnp.exp(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)), floor)
    return (dt + jnp.log(-jnp.expm1(-dt))).astype(dtype)


def _a_log_init(key, shape, dtype, *, lo=1.0, hi=16.0):
    return jnp.log(jax.random.uniform(key, shape, f32, lo, hi)).astype(dtype)


class Mamba2Block(nnx.Module):
    """The Mamba-2 mixer (Dao & Gu, ICML 2024; `mamba_ssm.modules.mamba2.Mamba2`).

    `u: [B, L, D] -> [B, L, D]` in `dtype`:

        z, xBC, dt = in_proj(u)                 [Di], [Di + 2GN], [H]
        xBC = silu(causal depthwise conv_K(xBC));  x, B, C = xBC   ([H,P], [G,N], [G,N])
        dt = softplus(dt + dt_bias);  A = −exp(A_log)
        y = SSD(x, dt, A, B, C) + D ⊙ x         (float32 accumulation)
        out = out_proj(RMSNorm_G(y ⊙ silu(z)))  (gated, per-group RMSNorm, scale init 1)

    Inits as the reference: A = −U[1, 16], softplus(dt_bias) log-uniform in
    [1e-3, 1e-1] (floored at 1e-4), D = 1, conv weight and bias U(±1/sqrt(K)), no biases
    on the projections. Parameters are float32; `dtype` is the activation dtype.

    Departures from the reference, and why:
    - projections use lecun-normal init (truncated normal, var 1/fan_in), the flax
      default used across this project, where PyTorch's kaiming-uniform(a=√5) has 1/√3
      the std; the pre-norms make the block insensitive to that factor. `out_proj` is
      further scaled by `out_scale` (the encoder passes 1/√n_layers: the GPT-2 rescale
      the reference applies in its model-level init rather than in the block);
    - only the reference defaults are built: no `dt_limit` clamp, no `D_has_hdim`, no
      `d_mlp` (extra gated MLP), `norm_before_gate=False`, no projection biases;
    - no `step` decode method: `kernels.ssd.ssd_step` is the one-token recurrence, and
      the conv state would be its only extra piece;
    - under an explicit-sharding mesh, params are all-gathered at use (`layers.use`) and
      the scan starts from batch-sharded zeros; numerically a no-op.
    The residual and pre-norm live in the wrapper layer (`MambaLayer`), as in the
    reference `Block`; the residual stream is float32 (its `residual_in_fp32`).
    """

    def __init__(self, *, d_model: int, d_state: int = 64, head_dim: int = 64, expand: int = 2,
                 d_conv: int = 4, n_groups: int = 1, chunk: int = 64, dtype=f32,
                 impl: str = "auto", out_scale: float = 1.0, rngs: nnx.Rngs):
        d_inner = expand * d_model
        if d_inner % head_dim:
            raise ValueError(f"expand*d_model = {d_inner} is not a multiple of head_dim = "
                             f"{head_dim}; pick head_dim dividing {d_inner}")
        heads = d_inner // head_dim
        if heads % n_groups:
            raise ValueError(f"{heads} heads do not split into n_groups = {n_groups}")
        self.d_inner, self.heads, self.head_dim = d_inner, heads, head_dim
        self.n_groups, self.d_state, self.chunk = n_groups, d_state, chunk
        self.dtype, self.impl = dtype, impl
        conv_dim = d_inner + 2 * n_groups * d_state
        self.in_proj = Linear(d_model, d_inner + conv_dim + heads, ("embed", "mlp"),
                              dtype=dtype, rngs=rngs)
        bound = 1.0 / math.sqrt(d_conv)
        uni = lambda k, s, d: jax.random.uniform(k, s, d, -bound, bound)  # noqa: E731
        self.conv_w = param(rngs, uni, (d_conv, conv_dim), (None, "mlp"))
        self.conv_b = param(rngs, uni, (conv_dim,), ("mlp",))
        self.dt_bias = param(rngs, _dt_bias_init, (heads,), ("heads",))
        self.A_log = param(rngs, _a_log_init, (heads,), ("heads",))
        self.D = param(None, ones, (heads,), ("heads",))
        self.norm_scale = param(None, ones, (d_inner,), ("mlp",))
        self.out_proj = Linear(d_inner, d_model, ("mlp", "embed"), dtype=dtype, rngs=rngs,
                               scale=out_scale)

    def gated_norm(self, y: jax.Array, z: jax.Array, *, eps: float = 1e-5) -> jax.Array:
        """RMSNorm over each group of `y ⊙ silu(z)`, times the scale. `[B,L,Di]` -> dtype."""
        g = (y.astype(f32) * jax.nn.silu(z.astype(f32)))
        g = g.reshape(*g.shape[:-1], self.n_groups, -1)
        g = g * jax.lax.rsqrt(jnp.mean(g * g, axis=-1, keepdims=True) + eps)
        return (g.reshape(y.shape) * use(self.norm_scale)).astype(self.dtype)

    def __call__(self, u: jax.Array) -> jax.Array:
        """`u: [B, L, D] -> [B, L, D]` in `dtype`."""
        b, length, _ = u.shape
        gn = self.n_groups * self.d_state
        zxbcdt = self.in_proj(u.astype(self.dtype))
        z, xbc, dt = jnp.split(zxbcdt, [self.d_inner, 2 * self.d_inner + 2 * gn], axis=-1)
        xbc = jax.nn.silu(causal_depthwise_conv(xbc, use(self.conv_w), use(self.conv_b)))
        x, Bm, Cm = jnp.split(xbc, [self.d_inner, self.d_inner + gn], axis=-1)
        x = x.reshape(b, length, self.heads, self.head_dim)
        Bm = Bm.reshape(b, length, self.n_groups, self.d_state)
        Cm = Cm.reshape(b, length, self.n_groups, self.d_state)
        dt = jax.nn.softplus(dt.astype(f32) + use(self.dt_bias))  # [B, L, H]
        A = -jnp.exp(use(self.A_log))
        y = ssd_scan(x, dt, A, Bm, Cm, use(self.D), chunk=self.chunk, impl=self.impl)
        y = self.gated_norm(y.reshape(b, length, self.d_inner), z)
        return self.out_proj(y)


class MambaLayer(nnx.Module):
    """Pre-norm residual: `h + Mamba2Block(RMSNorm(h))`; the residual stays float32."""

    def __init__(self, *, d_model: int, dtype, rngs: nnx.Rngs, **block):
        self.norm = RMSNorm(d_model, dtype=dtype)
        self.mixer = Mamba2Block(d_model=d_model, dtype=dtype, rngs=rngs, **block)

    def __call__(self, h: jax.Array) -> jax.Array:
        """`h: [B, L, D] float32 -> [B, L, D] float32`."""
        return constrain(h + self.mixer(self.norm(h)).astype(f32), ACT)
