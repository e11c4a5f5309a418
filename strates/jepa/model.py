"""Strate II model: a causal token encoder (Mamba-2 + macro cross-attention) and the JEPA
wrapper (context encoder, predictor, EMA target encoder).

```
tokens [B,L] ─ Embed(V→D) + asset Embed(A→D) + Linear(sinusoids of log interval) ─ h
h ─ n_layers × [ h += Mamba2Block(RMSNorm(h)) ], and after every `macro_every`-th block
                 and after the last: [ h += MacroCrossAttention(RMSNorm(h), macro [B,L,M]) ]
  ─ RMSNorm ─ h [B,L,D] float32                                  (Encoder)
JEPA.predictor: h_t [N,D] ─ Linear(D→Dp) + horizon Embed(k), k = 1..K ─ [N,K,Dp]
  ─ pred_layers × Mamba-2 layer (causal over k) ─ RMSNorm ─ Linear(Dp→D) ─ ĥ_{t+k} [N,K,D]
```

Every encoder layer is causal in time (the SSD recurrence, a left-padded convolution,
cross-attention that reads the macro row of the same bar), so `h[:, t]` depends on inputs
at bars `<= t` only. The residual stream is float32 (the reference's `residual_in_fp32`);
blocks compute in the activation `dtype`.

Time scale: `interval_s` [B] (seconds per bar) enters as 8 sinusoid pairs of
log(interval_s) (periods 0.5..64 in log-seconds; 1 min vs 5 min differ by 1.6) through a
learned Linear. This handles any bar interval without a bucket table; pass None when all
data share one interval (the term is then left out).

Param tree (`nnx.split(jepa, nnx.Param)`): `{"context": Encoder, "predictor": Predictor,
"target": Encoder}`; `target` has the same structure as `context` (an EMA copy; see
`jepa_loss.ema_target`). Every param is float32 and names its logical axes (see
`strates.jepa.layers`; the Mamba-2 block's are listed in `strates.jepa.mamba2`):

| param (path under an Encoder / the Predictor) | shape | logical axes |
| --- | --- | --- |
| tokens | [V, D] | ("vocab", "embed") |
| assets | [A, D] | (None, "embed") |
| timescale.kernel / .bias | [16, D] / [D] | (None, "embed") / ("embed",) |
| layers[i].norm.scale, layers[i].mixer.* | | see `mamba2` |
| cross[j].series, cross[j].slope / cross[j].null | [M, D] / [D] | (None, "embed") / ("embed",) |
| cross[j].{q,k,v}.kernel / cross[j].o.kernel | [D, D] | ("embed", "heads") / ("heads", "embed") |
| norm.scale, cross[j].norm.scale | [D] | ("embed",) |
| predictor: inp.kernel / out.kernel | [D, Dp] / [Dp, D] | ("embed", "mlp") / ("mlp", "embed") |
| predictor: steps | [K, Dp] | (None, "embed") |

`logical_axes(params)` returns these as PartitionSpecs of logical names,
and `param_shardings(params, mesh)` as NamedShardings under the topology rules.
`build_model(config, ...)` builds the JEPA a config describes; `embed_sequences` gives
h_t for every bar of whole sequences.

Dimension letters: B batch, L bars, D d_model, Dp predictor width, V vocabulary (codebook
size), A assets, M macro series, K horizon, S spans per sequence, N = B·S.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from strates.jepa.layers import (
    ACT,
    Linear,
    RMSNorm,
    constrain,
    f32,
    fit_spec,
    lookup,
    param,
    use,
)
from strates.jepa.mamba2 import Mamba2Block, MambaLayer

__all__ = [
    "ACT",
    "JEPA",
    "Encoder",
    "MacroCrossAttention",
    "Mamba2Block",
    "MambaLayer",
    "Predictor",
    "build_model",
    "embed_sequences",
    "l2_normalize",
    "logical_axes",
    "param_shardings",
]


def symlog(x: jax.Array) -> jax.Array:
    """`sign(x) · log(1 + |x|)`: linear near 0, logarithmic in the tails."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


class MacroCrossAttention(nnx.Module):
    """Pre-norm residual cross-attention from bar states to the macro series of that bar.

    At bar t, the M macro series are M key/value tokens (plus one learned *null* token, so
    that a bar can attend to "no macro" and a bar whose series are all missing is well
    defined). Token m is `e_m + symlog(v_{t,m}) · s_m`: a series-id embedding plus a
    per-series direction scaled by the value. Queries come from `RMSNorm(h_t)`.

    Causal by construction: bar t reads the macro row of bar t only, which the as-of join
    already limits to values public at t; macro history reaches later bars through the
    Mamba recurrence of the following blocks. It is cheap: since the tokens are affine in
    the value, `k_{t,m} = W_k e_m + v_{t,m} W_k s_m` and the attention reduces to a few
    [B, L, heads, M] einsums; no [B, L, M, D] tensor is formed. (Attention over a window of
    past macro rows was the alternative: macro series move daily to quarterly, so a window
    of intraday bars mostly repeats one row, at O(L·W·D) cost.)

    Values enter through `symlog` (sign(v)·log(1+|v|)), so that the z-scores of a crisis
    (5-10) do not saturate the softmax. Missing values (NaN, e.g. before a series' first
    release) are masked out of the attention.
    """

    def __init__(self, *, d_model: int, n_macro: int, heads: int, dtype, out_scale: float = 1.0,
                 rngs: nnx.Rngs):
        if d_model % heads:
            raise ValueError(f"d_model = {d_model} is not a multiple of macro_heads = {heads}")
        self.heads, self.dtype = heads, dtype
        self.norm = RMSNorm(d_model, dtype=dtype)
        self.series = param(rngs, nnx.initializers.normal(1.0), (n_macro, d_model), (None, "embed"))
        self.slope = param(rngs, nnx.initializers.normal(1.0), (n_macro, d_model), (None, "embed"))
        self.null = param(rngs, nnx.initializers.normal(1.0), (d_model,), ("embed",))
        self.q = Linear(d_model, d_model, ("embed", "heads"), dtype=dtype, rngs=rngs)
        self.k = Linear(d_model, d_model, ("embed", "heads"), dtype=dtype, rngs=rngs)
        self.v = Linear(d_model, d_model, ("embed", "heads"), dtype=dtype, rngs=rngs)
        self.o = Linear(d_model, d_model, ("heads", "embed"), dtype=dtype, rngs=rngs,
                        scale=out_scale)

    def __call__(self, h: jax.Array, macro: jax.Array) -> jax.Array:
        """`h: [B, L, D] float32`, `macro: [B, L, M]` (NaN = missing) -> `[B, L, D]` float32."""
        b, length, d = h.shape
        nh, dh = self.heads, d // self.heads
        q = self.q(self.norm(h)).reshape(b, length, nh, dh).astype(f32)
        present = jnp.isfinite(macro)
        v = symlog(jnp.where(present, macro.astype(f32), 0.0))  # [B, L, M]
        tokens = jnp.concatenate([use(self.series), use(self.slope), use(self.null)[None]])
        kt = self.k(tokens.astype(self.dtype)).astype(f32).reshape(-1, nh, dh)  # [2M+1, nh, dh]
        vt = self.v(tokens.astype(self.dtype)).astype(f32).reshape(-1, nh, dh)
        m = macro.shape[-1]
        k_e, k_s, k_0 = kt[:m], kt[m:2 * m], kt[2 * m]
        v_e, v_s, v_0 = vt[:m], vt[m:2 * m], vt[2 * m]
        scale = 1.0 / math.sqrt(dh)
        s = (jnp.einsum("blhd,mhd->blhm", q, k_e)
             + v[:, :, None, :] * jnp.einsum("blhd,mhd->blhm", q, k_s)) * scale
        s = jnp.where(present[:, :, None, :], s, -jnp.inf)
        s0 = jnp.einsum("blhd,hd->blh", q, k_0)[..., None] * scale  # the null token
        a = jax.nn.softmax(jnp.concatenate([s0, s], axis=-1), axis=-1)  # [B, L, nh, 1+M]
        a0, am = a[..., 0], a[..., 1:]
        out = (jnp.einsum("blhm,mhd->blhd", am, v_e)
               + jnp.einsum("blhm,mhd->blhd", am * v[:, :, None, :], v_s)
               + a0[..., None] * v_0)
        out = self.o(out.reshape(b, length, d).astype(self.dtype))
        return constrain(h + out.astype(f32), ACT)


def timescale_features(interval_s: jax.Array, *, n_freq: int = 8) -> jax.Array:
    """Sinusoids of `log(interval seconds)`, periods 0.5 .. 64 (log units). `[B] -> [B, 2F]`."""
    periods = 0.5 * 2.0 ** jnp.arange(n_freq, dtype=f32)
    ang = 2 * jnp.pi * jnp.log(jnp.maximum(interval_s.astype(f32), 1e-3))[:, None] / periods
    return jnp.concatenate([jnp.sin(ang), jnp.cos(ang)], axis=-1)


def macro_positions(n_layers: int, every: int) -> tuple[int, ...]:
    """0-based indices of the Mamba layers followed by a macro cross-attention layer."""
    if every < 1:
        raise ValueError(f"macro_every = {every} must be >= 1")
    return tuple(i for i in range(n_layers) if (i + 1) % every == 0 or i == n_layers - 1)


class Encoder(nnx.Module):
    """Tokens (+ asset, time scale, macro) to causal states `h: [B, L, D]` float32.

    vocab: codebook size V; n_assets: rows of the asset table; n_macro: macro series M
    (0: no cross-attention layers); macro_every: a cross-attention layer follows every
    `macro_every`-th Mamba layer and the last one (`macro_positions`). The Mamba-2 knobs
    (d_state, head_dim, expand, d_conv, n_groups, chunk, ssd_impl) go to every block.
    Each block's `out_proj` (and each cross-attention output) is scaled by
    1/sqrt(n_layers).
    """

    def __init__(self, *, vocab: int = 1024, n_assets: int, d_model: int, n_layers: int,
                 d_state: int = 64, head_dim: int = 64, expand: int = 2, d_conv: int = 4,
                 n_groups: int = 1, n_macro: int = 0, macro_heads: int = 4, macro_every: int = 2,
                 chunk: int = 64, dtype=f32, ssd_impl: str = "auto", rngs: nnx.Rngs):
        self.vocab, self.n_assets, self.n_macro, self.d_model = vocab, n_assets, n_macro, d_model
        self.dtype = dtype
        emb = nnx.initializers.normal(0.02)  # the Mamba / GPT-2 embedding init
        self.tokens = param(rngs, emb, (vocab, d_model), ("vocab", "embed"))
        self.assets = param(rngs, emb, (n_assets, d_model), (None, "embed"))
        self.timescale = Linear(16, d_model, (None, "embed"), bias=True, scale=0.02, rngs=rngs)
        out_scale = 1.0 / math.sqrt(n_layers)
        self.layers = nnx.List([
            MambaLayer(d_model=d_model, d_state=d_state, head_dim=head_dim, expand=expand,
                       d_conv=d_conv, n_groups=n_groups, chunk=chunk, dtype=dtype,
                       impl=ssd_impl, out_scale=out_scale, rngs=rngs)
            for _ in range(n_layers)])
        self.macro_after = macro_positions(n_layers, macro_every) if n_macro else ()
        self.cross = nnx.List([
            MacroCrossAttention(d_model=d_model, n_macro=n_macro, heads=macro_heads, dtype=dtype,
                                out_scale=out_scale, rngs=rngs)
            for _ in self.macro_after])
        self.norm = RMSNorm(d_model, dtype=f32)

    def __call__(self, tokens: jax.Array, assets: jax.Array, macro: jax.Array | None = None, *,
                 interval_s: jax.Array | None = None) -> jax.Array:
        """`tokens: int [B, L]`, `assets: int [B]`, `macro: [B, L, M]` (NaN = missing; None
        when M = 0), `interval_s: [B]` seconds per bar or None -> `h: [B, L, D]` float32."""
        if self.n_macro and (macro is None or macro.shape[-1] != self.n_macro
                             or macro.shape[:2] != tokens.shape):
            got = None if macro is None else macro.shape
            raise ValueError(f"macro must be [B, L, M] = [{tokens.shape[0]}, {tokens.shape[1]}, "
                             f"{self.n_macro}] for this encoder; got {got}")
        h = lookup(self.tokens, tokens, ACT)
        h = h + lookup(self.assets, assets, ("batch", "embed"))[:, None, :]
        if interval_s is not None:
            ts = jnp.broadcast_to(jnp.asarray(interval_s, f32), (tokens.shape[0],))
            h = h + self.timescale(timescale_features(ts))[:, None, :]
        h = constrain(h, ACT)
        cross = iter(self.cross)
        for i, layer in enumerate(self.layers):
            h = layer(h)
            if i in self.macro_after:
                assert macro is not None, "an encoder with macro layers needs macro [B, L, M]"
                h = next(cross)(h, macro)
        return self.norm(h)


class Predictor(nnx.Module):
    """Context state at t to predicted target states at t+1..t+K. `[N, D] -> [N, K, D]`.

    The K horizons form a short sequence `Linear(h_t) + E_k`, k = 1..K, run through
    `n_layers` Mamba-2 layers of width `d_pred`: causal over k, so the prediction for
    horizon k can build on those for < k (a latent rollout).
    """

    def __init__(self, *, d_model: int, d_pred: int, n_layers: int, horizon: int,
                 d_state: int = 64, head_dim: int = 64, expand: int = 2, chunk: int = 64,
                 dtype=f32, ssd_impl: str = "auto", rngs: nnx.Rngs):
        self.horizon = horizon
        self.inp = Linear(d_model, d_pred, ("embed", "mlp"), dtype=dtype, rngs=rngs)
        self.steps = param(rngs, nnx.initializers.normal(0.02), (horizon, d_pred), (None, "embed"))
        self.layers = nnx.List([
            MambaLayer(d_model=d_pred, d_state=d_state, head_dim=head_dim, expand=expand,
                       chunk=chunk, dtype=dtype, impl=ssd_impl,
                       out_scale=1.0 / math.sqrt(n_layers), rngs=rngs)
            for _ in range(n_layers)])
        self.norm = RMSNorm(d_pred, dtype=dtype)
        self.out = Linear(d_pred, d_model, ("mlp", "embed"), dtype=dtype, rngs=rngs)

    def __call__(self, h: jax.Array) -> jax.Array:
        """`h: [N, D]` -> `[N, K, D]` float32 (unnormalised)."""
        u = self.inp(h).astype(f32)[:, None, :] + use(self.steps)[None]  # [N, K, Dp]
        u = constrain(u, ACT)
        for layer in self.layers:
            u = layer(u)
        return self.out(self.norm(u)).astype(f32)


def l2_normalize(x: jax.Array, *, eps: float = 1e-6) -> jax.Array:
    """`x / ||x||` over the last axis, float32 (the DESIGN.md representation)."""
    x = x.astype(f32)
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), eps * eps))


class JEPA(nnx.Module):
    """Context encoder, predictor, and a target encoder that starts as an exact copy.

    Encoder arguments are those of `Encoder`; `horizon` K is the number of future bars
    predicted from each context state; `d_pred` (default max(head_dim, d_model // 2)) and
    `pred_layers` size the predictor. The target encoder is never trained by gradient: the training
    loop freezes it and updates it as `τ·target + (1−τ)·context` (`jepa_loss.ema_target`).
    """

    def __init__(self, *, vocab: int = 1024, n_assets: int, d_model: int, n_layers: int,
                 horizon: int, d_pred: int | None = None, pred_layers: int = 2,
                 d_state: int = 64, head_dim: int = 64, expand: int = 2, n_macro: int = 0,
                 macro_heads: int = 4, macro_every: int = 2, chunk: int = 64, dtype=f32,
                 ssd_impl: str = "auto", rngs: nnx.Rngs):
        if horizon < 1:
            raise ValueError(f"horizon = {horizon} must be >= 1")
        d_pred = d_pred or max(head_dim, d_model // 2)
        if (expand * d_pred) % head_dim:
            raise ValueError(f"expand*d_pred = {expand * d_pred} is not a multiple of "
                             f"head_dim = {head_dim}; set d_pred to a multiple of it")
        self.horizon = horizon
        self.context = Encoder(vocab=vocab, n_assets=n_assets, d_model=d_model,
                               n_layers=n_layers, d_state=d_state, head_dim=head_dim,
                               expand=expand, n_macro=n_macro, macro_heads=macro_heads,
                               macro_every=macro_every, chunk=chunk, dtype=dtype,
                               ssd_impl=ssd_impl, rngs=rngs)
        self.predictor = Predictor(d_model=d_model, d_pred=d_pred, n_layers=pred_layers,
                                   horizon=horizon, d_state=d_state, head_dim=head_dim,
                                   expand=expand, chunk=chunk, dtype=dtype, ssd_impl=ssd_impl,
                                   rngs=rngs)
        target = nnx.clone(self.context)  # own buffers, so both can be donated in one step
        nnx.update(target, jax.tree.map(lambda a: jnp.array(a, copy=True), nnx.state(target)))
        self.target = target

    def embed(self, tokens: jax.Array, assets: jax.Array, macro: jax.Array | None = None, *,
              interval_s: jax.Array | None = None, encoder: str = "target") -> jax.Array:
        """The representation h_t: `[B, L, D]` float32 on the unit sphere.

        `encoder="target"` (default) uses the EMA encoder, as I-JEPA evaluates; "context"
        the online one. Same inputs as `Encoder.__call__`.
        """
        if encoder not in ("target", "context"):
            raise ValueError(f"encoder = {encoder!r}; use 'target' or 'context'")
        enc = self.target if encoder == "target" else self.context
        return l2_normalize(enc(tokens, assets, macro, interval_s=interval_s))

    def predict(self, h: jax.Array, starts: jax.Array) -> jax.Array:
        """Predictions from context states at span starts.

        `h: [B, L, D]` context states, `starts: int [B, S]` -> `[B, S, K, D]` float32, the
        unnormalised prediction of the target state at `starts + k`, k = 1..K.
        """
        b, s = starts.shape
        h_start = jnp.take_along_axis(h, starts[..., None], axis=1)  # [B, S, D]
        pred = self.predictor(h_start.reshape(b * s, -1))
        return constrain(pred.reshape(b, s, self.horizon, -1), ("batch", None, None, "embed"))


def logical_axes(params) -> Any:
    """The logical axes of every param: `params` with each `nnx.Variable` replaced by a
    `PartitionSpec` of logical names (a leaf), e.g. `P("embed", "mlp")`."""
    return jax.tree.map(lambda v: jax.sharding.PartitionSpec(*v.get_metadata()["out_sharding"]),
                        params, is_leaf=lambda x: isinstance(x, nnx.Variable))


def param_shardings(params, mesh: jax.sharding.Mesh, rules=None) -> object:
    """`NamedSharding` per param from its logical axes and `rules` (default
    `topology.DEFAULT_RULES`), replicating any dim a mesh axis does not divide; a prefix
    tree of `params`, ready for `jax.device_put`."""
    sizes = dict(zip(mesh.axis_names, mesh.axis_sizes, strict=True))

    def one(v):
        spec = fit_spec(v.shape, v.get_metadata()["out_sharding"], sizes, rules)
        return jax.sharding.NamedSharding(mesh, spec)

    return jax.tree.map(one, params, is_leaf=lambda x: isinstance(x, nnx.Variable))


def build_model(config, *, n_assets: int, n_macro: int, vocab: int, seed: int) -> JEPA:
    """The JEPA a `strates.jepa.config.Config` describes (its `model` section), for
    `n_assets` assets, `n_macro` macro series and a codebook of `vocab` codes."""
    m = config.model
    return JEPA(
        vocab=vocab, n_assets=n_assets, d_model=m.d_model, n_layers=m.n_layers, horizon=m.horizon,
        d_pred=m.d_pred, pred_layers=m.pred_layers, d_state=m.d_state, head_dim=m.head_dim, expand=m.expand,
        n_macro=n_macro, macro_heads=m.macro_heads, macro_every=m.macro_every, chunk=m.chunk,
        dtype=jnp.bfloat16 if m.dtype == "bfloat16" else f32, ssd_impl=m.ssd_impl, rngs=nnx.Rngs(seed),
    )


EMBED_PAD = 1024  # sequences are right-padded to a multiple of this, so few lengths compile


def embed_sequences(model: JEPA, sequences, scaler, *, interval_s: float, encoder: str = "target") -> list:
    """h_t for every bar of every sequence (`strates.jepa.data.Sequence`, macro scaled by
    `scaler`): one [N_a, D] float32 numpy array per asset, unit norm."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def apply(state, tokens, assets, macro, interval):
        return nnx.merge(graphdef, state).embed(tokens, assets, macro, interval_s=interval, encoder=encoder)

    out = []
    for s in sequences:
        n = len(s.codes)
        padded = max(EMBED_PAD, math.ceil(n / EMBED_PAD) * EMBED_PAD)  # causal: right padding changes nothing before n
        codes = np.zeros((1, padded), np.int32)
        codes[0, :n] = s.codes
        macro = np.zeros((1, padded, len(scaler.names)), np.float32)
        macro[0, :n] = scaler.apply(s.macro)
        h = apply(state, codes, np.array([s.index], np.int32), macro, jnp.full((1,), interval_s, jnp.float32))
        out.append(np.asarray(h[0, :n], np.float32))
    return out
