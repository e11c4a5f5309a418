"""Fitting the tokenizer and applying it: training windows, loss, encoding, metrics.

Training sees windows cut from the training period only. Encoding runs the causal model
over each asset's whole series at once (right-padding is harmless: outputs at t depend on
inputs at <= t only).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from strates.fsq.artifact import PeriodMetrics
from strates.fsq.config import Config, ModelConfig
from strates.fsq.features import FEATURES

ENCODE_BUCKET = 1024  # series are right-padded to a multiple of this, to reuse compilations


def build_model(config: ModelConfig, *, seed: int, features: int = len(FEATURES)):
    """The tokenizer for `features` input features per bar (FEATURES for bars; two per
    channel for a series dataset)."""
    from flax import nnx

    from strates.fsq.model import Tokenizer

    return Tokenizer(
        features=features, width=config.width, depth=config.depth, decoder_depth=config.decoder_depth,
        kernel=config.kernel, levels=tuple(config.levels), rngs=nnx.Rngs(seed),
    )


def split_model(model):
    """(graphdef, params): everything of the tokenizer is a parameter (no batch stats)."""
    from flax import nnx

    graphdef, params = nnx.split(model, nnx.Param)
    return graphdef, params


def code_usage(z, levels: tuple[int, ...], *, temperature: float, max_positions: int = 2048):
    """Normalised entropy (0..1) of the soft code distribution of a batch.

    z: [..., d] bounded latents in level units (`Tokenizer.encode`); channel i's levels are
    the integers `arange(L_i) - L_i // 2`. Returns H(mean_n p_n) / log K, where p_n is the
    outer product over channels of softmax(-(z_ni - level)^2 / temperature).
    """
    import jax
    import jax.numpy as jnp

    flat = z.reshape(-1, z.shape[-1])
    if len(flat) > max_positions:  # a strided subsample estimates the batch distribution well enough
        flat = flat[:: -(-len(flat) // max_positions)]
    joint = None
    for i, level_count in enumerate(levels):
        centers = jnp.arange(level_count, dtype=flat.dtype) - level_count // 2
        p = jax.nn.softmax(-jnp.square(flat[:, i : i + 1] - centers) / temperature, axis=-1)  # [N, L_i]
        # the codes' mixed radix puts channel 0 least significant: it varies fastest
        joint = p if joint is None else (p[:, :, None] * joint[:, None, :]).reshape(len(flat), -1)
    assert joint is not None  # levels is never empty (ModelConfig checks)
    mean = joint.mean(axis=0)
    entropy = -(mean * jnp.log(mean + 1e-12)).sum()
    return entropy / jnp.log(mean.shape[0])


def make_loss(graphdef, config: Config, names: tuple[str, ...] = FEATURES) -> Callable:
    """loss_fn(params, x [B, T, F], key) -> (MSE + usage term, metrics); the MSE of the
    first two features (`names`) is logged apart."""
    import jax.numpy as jnp
    from flax import nnx

    from strates.fsq.quantize import quantize

    levels = tuple(config.model.levels)
    weight, temperature = config.loss.usage_weight, config.loss.temperature

    def loss_fn(params, batch, key):
        del key  # the tokenizer is deterministic
        model = nnx.merge(graphdef, params)
        z = model.encode(batch)
        x_hat = model.decode(quantize(z, levels))
        err = jnp.square(x_hat - batch)
        per_feature = err.mean(axis=(0, 1))
        mse = err.mean()
        usage = code_usage(z, levels, temperature=temperature)
        metrics = {"mse": mse, "usage": usage}
        metrics.update({f"mse_{name}": per_feature[i] for i, name in enumerate(names[:2])})
        return mse + weight * (1.0 - usage), metrics

    return loss_fn


def window_sampler(series: list[np.ndarray], *, window: int, batch_size: int, seed: int) -> Callable[[int], np.ndarray]:
    """batches(step) -> [B, window, F]: windows drawn uniformly over all positions of all
    series (each `[N_a, F]`, training period only), a pure function of (seed, step)."""
    lengths = np.array([len(s) - window + 1 for s in series])
    usable = [i for i, n in enumerate(lengths) if n > 0]
    if not usable:
        from strates.core.errors import InvalidInput

        longest = max(len(s) for s in series) if series else 0
        raise InvalidInput(
            f"no asset has {window} bars in the training period (longest: {longest})",
            rule="too-few-bars", fix=f"use a shorter window (--set data.window={max(8, longest // 2)}) or more data",
        )
    weights = lengths[usable] / lengths[usable].sum()

    def batches(step: int) -> np.ndarray:
        rng = np.random.default_rng([seed, step])
        picks = rng.choice(len(usable), size=batch_size, p=weights)
        out = np.empty((batch_size, window, series[0].shape[1]), np.float32)
        for b, p in enumerate(picks):
            s = series[usable[p]]
            start = rng.integers(0, len(s) - window + 1)
            out[b] = s[start : start + window]
        return out

    return batches


def make_encoder(graphdef) -> Callable:
    """encode(params, x [N, F]) -> (codes [N] int32, reconstruction [N, F] float32)."""
    import jax
    from flax import nnx

    @jax.jit
    def apply(params, x):
        x_hat, _, idx = nnx.merge(graphdef, params)(x)
        return idx, x_hat

    def encode(params, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(x)
        padded = max(ENCODE_BUCKET, math.ceil(n / ENCODE_BUCKET) * ENCODE_BUCKET)
        buf = np.zeros((1, padded, x.shape[1]), np.float32)
        buf[0, :n] = x
        idx, x_hat = apply(params, buf)
        return np.asarray(idx[0, :n], np.int32), np.asarray(x_hat[0, :n], np.float32)

    return encode


def period_metrics(codes: np.ndarray, x: np.ndarray, x_hat: np.ndarray, *, codebook_size: int,
                   names: tuple[str, ...] = FEATURES) -> PeriodMetrics:
    """codes [N], x and x_hat [N, F] -> PeriodMetrics (R² = 1 - SSE / SST per feature,
    named by `names` [F])."""
    counts = np.bincount(codes, minlength=codebook_size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    err = ((x - x_hat) ** 2).sum(axis=0)
    sst = ((x - x.mean(axis=0)) ** 2).sum(axis=0)
    return PeriodMetrics(
        bars=len(codes),
        codes_used=int((counts > 0).sum()),
        utilization=float((counts > 0).mean()),
        perplexity=float(np.exp(-(p * np.log(p)).sum())),
        mse={name: float(err[i] / len(x)) for i, name in enumerate(names)},
        r2={name: float(1.0 - err[i] / sst[i]) if sst[i] > 0 else 0.0 for i, name in enumerate(names)},
    )


def fit(config: Config, train_series: list[np.ndarray], *, checkpoint_dir: str, on_log=None, stop_after=None,
        names: tuple[str, ...] = FEATURES):
    """Train a tokenizer on `train_series` (each `[N_a, F]`, normalised, training period
    only; `names` [F] the features).

    Resumes from the checkpoints in `checkpoint_dir` if an earlier attempt left some.
    Returns (graphdef, TrainResult).
    """
    import jax

    from strates.core.train import train

    model = build_model(config.model, seed=config.train.seed, features=len(names))
    graphdef, params = split_model(model)
    batches = window_sampler(
        train_series, window=config.data.window, batch_size=config.train.batch_size, seed=config.train.seed
    )
    result = train(
        loss_fn=make_loss(graphdef, config, tuple(names)), params=params, batches=batches, config=config.train,
        checkpoint_dir=checkpoint_dir, key=jax.random.key(config.train.seed), on_log=on_log, stop_after=stop_after,
    )
    return graphdef, result
