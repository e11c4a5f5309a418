"""The JEPA objective: predict the EMA target encoder's future states from causal context.

For each sequence, S span starts t_s are drawn uniformly in [ctx_min, L − K). The context
encoder runs causally over the whole window, so its state at t_s has seen bars <= t_s only;
the predictor maps it to K predictions of the target encoder's states at t_s + k,
k = 1..K (I-JEPA, Assran et al., CVPR 2023, with time playing the role of the masked
blocks). Targets carry no gradient (`stop_gradient`); the target encoder is updated
outside the gradient by EMA (`ema_target`, BYOL / I-JEPA).

Both sides are compared on the sphere scaled by sqrt(D): `p̃ = sqrt(D)·p/‖p‖`, likewise t̃,
so each entry is O(1). With `distance="mse"`, `mean_d (p̃ − t̃)² = 2 − 2 cos(p, t)`;
`"smooth_l1"` is the Huber form with `beta` (V-JEPA uses L1 on normalised targets).

Collapse is kept away by VICReg's variance and covariance terms (`vicreg.py`) on the
context embeddings at every position >= ctx_min (scaled the same way): the hinge pushes
each dimension's std towards `gamma` = 1, which on the scaled sphere is the isotropic
spread (the average variance can be at most 1 there), so the variance term is small but
not exactly 0 in practice.

    loss = pred_weight · pred + var_weight · variance + cov_weight · covariance

Defaults keep VICReg's 25 : 1 ratio of variance to covariance weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from strates.jepa import vicreg
from strates.jepa.model import JEPA, l2_normalize


def sample_starts(key: jax.Array, batch: int, *, length: int, n_spans: int, horizon: int,
                  ctx_min: int) -> jax.Array:
    """Span starts `int32 [B, S]`, uniform in [ctx_min, length − horizon). Consumes `key`."""
    if not 0 <= ctx_min < length - horizon:
        raise ValueError(
            f"no room for spans: need 0 <= ctx_min ({ctx_min}) < length - horizon "
            f"({length} - {horizon} = {length - horizon}); lengthen the window or lower "
            f"ctx_min / horizon")
    return jax.random.randint(key, (batch, n_spans), ctx_min, length - horizon, jnp.int32)


def _distance(p: jax.Array, t: jax.Array, kind: str, beta: float) -> jax.Array:
    d = p - t
    if kind == "mse":
        return jnp.mean(d * d)
    if kind == "smooth_l1":
        a = jnp.abs(d)
        return jnp.mean(jnp.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta))
    raise ValueError(f"distance = {kind!r}; use 'mse' or 'smooth_l1'")


def jepa_loss(model: JEPA, tokens: jax.Array, assets: jax.Array, macro: jax.Array | None = None,
              *, key: jax.Array, n_spans: int = 8, ctx_min: int = 16,
              pred_weight: float = 1.0, var_weight: float = 1.0, cov_weight: float = 0.04,
              distance: str = "mse", beta: float = 1.0, gamma: float = 1.0,
              interval_s: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The JEPA loss of one batch; pure (merge params into `model` with `nnx.merge`).

    tokens: int [B, L]; assets: int [B]; macro: [B, L, M] or None; interval_s: [B] or None.
    key: consumed to draw the span starts. K is `model.horizon`.

    Returns `(loss [], metrics)`, metrics (all float32 scalars): `pred` (distance between
    normalised predictions and targets), `variance`, `covariance` (on context embeddings),
    `cos` (mean cosine of prediction and target), `std` (mean per-dim std of the scaled
    context embeddings; 0 means collapse, 1 isotropic).
    """
    b, length = tokens.shape
    k = model.horizon
    starts = sample_starts(key, b, length=length, n_spans=n_spans, horizon=k, ctx_min=ctx_min)
    h = model.context(tokens, assets, macro, interval_s=interval_s)  # [B, L, D]
    d = h.shape[-1]
    h_tgt = jax.lax.stop_gradient(model.target(tokens, assets, macro, interval_s=interval_s))
    idx = starts[..., None] + jnp.arange(1, k + 1)  # [B, S, K]
    tgt = jnp.take_along_axis(h_tgt, idx.reshape(b, -1)[..., None], axis=1)
    tgt = l2_normalize(tgt.reshape(b, n_spans, k, d))
    pred = l2_normalize(model.predict(h, starts))  # [B, S, K, D]
    scale = jnp.sqrt(jnp.float32(d))
    pred_term = _distance(scale * pred, scale * tgt, distance, beta)
    z = scale * l2_normalize(h[:, ctx_min:]).reshape(-1, d)
    var_term = vicreg.variance_term(z, gamma=gamma)
    cov_term = vicreg.covariance_term(z)
    loss = pred_weight * pred_term + var_weight * var_term + cov_weight * cov_term
    metrics = {
        "pred": pred_term,
        "variance": var_term,
        "covariance": cov_term,
        "cos": jnp.mean(jnp.sum(pred * tgt, axis=-1)),
        "std": jnp.mean(jnp.std(z, axis=0)),
    }
    return loss, metrics


def ema_target(params, tau: float | jax.Array):
    """`target ← τ·target + (1 − τ)·context` on a `nnx.split(jepa, nnx.Param)` param tree.

    Returns a tree of exactly the structure of `params` (an `nnx.State` or nested dicts),
    context and predictor unchanged. Pure; use it as the training loop's `post_update`
    with τ scheduled from tau_start to 1.
    """
    tau = jnp.asarray(tau, jnp.float32)
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)

    def top(path):
        return str(getattr(path[0], "key", getattr(path[0], "name", path[0])))

    context = {path[1:]: leaf for path, leaf in flat if top(path) == "context"}
    leaves = [(tau * leaf + (1 - tau) * context[path[1:]]).astype(leaf.dtype)
              if top(path) == "target" else leaf for path, leaf in flat]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def target_mask(params):
    """True for every param of the target encoder: the training loop's `frozen` (the
    optimizer must leave it alone, weight decay included; only `ema_target` moves it).
    A prefix tree of `params` (each `nnx.Variable` replaced by a bool)."""
    from flax import nnx

    def leaf(path, _):
        return str(getattr(path[0], "key", getattr(path[0], "name", path[0]))) == "target"
    return jax.tree_util.tree_map_with_path(leaf, params,
                                            is_leaf=lambda x: isinstance(x, nnx.Variable))
