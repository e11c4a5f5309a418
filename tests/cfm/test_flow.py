"""Strate III flow: couplings, vector field, sampling, and a tiny model learning a bimodal law."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from strates.cfm import ot
from strates.cfm.model import VectorField, cfm_loss
from strates.cfm.sample import disagreement, ensemble_sample, sample, sample_jit, steps


def _batch(seed: int, b: int = 64, d: int = 3):
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=(b, d))
    h = rng.normal(size=(b, 2))
    x1 = rng.normal(size=(b, d)) * 0.5 + 2.0 + h[:, :1]
    return x0, x1, h


@pytest.mark.parametrize("kind", ot.KINDS)
def test_coupling_is_a_permutation(kind):
    x0, x1, h = _batch(0)
    perm = ot.coupling(x0, x1, kind=kind, cond1=h, cond_weight=1.0)
    np.testing.assert_array_equal(np.sort(perm), np.arange(len(x0)))


def test_ot_lowers_transport_cost():
    x0, x1, _ = _batch(1)
    identity = np.arange(len(x0))
    perm = ot.coupling(x0, x1, kind="ot")
    assert ot.transport_cost(x0, x1, perm) < 0.8 * ot.transport_cost(x0, x1, identity)
    for seed in range(5):  # exact: no random permutation does better
        shuffled = np.random.default_rng(seed).permutation(len(x0))
        assert ot.transport_cost(x0, x1, perm) <= ot.transport_cost(x0, x1, shuffled)


def test_cot_limits():
    x0, x1, h = _batch(2)
    np.testing.assert_array_equal(ot.coupling(x0, x1, kind="cot", cond1=h, cond_weight=1e6), np.arange(len(x0)))
    np.testing.assert_array_equal(ot.coupling(x0, x1, kind="cot", cond1=h, cond_weight=0.0),
                                  ot.coupling(x0, x1, kind="ot"))
    # repeated conditions (classes): huge weight = OT within each class, never across
    cls = np.repeat(np.eye(2), len(x0) // 2, axis=0)
    perm = ot.coupling(x0, x1, kind="cot", cond1=cls, cond_weight=1e6)
    np.testing.assert_array_equal(cls[perm], cls)


def test_coupling_errors():
    x0, x1, _ = _batch(3)
    with pytest.raises(ValueError, match="cond1"):
        ot.coupling(x0, x1, kind="cot", cond_weight=1.0)
    with pytest.raises(ValueError, match="not one of"):
        ot.coupling(x0, x1, kind="sinkhorn")
    with pytest.raises(ValueError, match="even"):
        steps(3, "heun")


@pytest.mark.parametrize("method", ["euler", "heun", "midpoint"])
def test_sampling_shapes_and_determinism(method):
    model = VectorField(x_dim=3, cond_dim=2, width=16, depth=1, time_features=4, rngs=nnx.Rngs(0))
    h = jnp.ones((2, 2))
    key = jax.random.key(7)
    a = sample_jit(model, h, key=key, n=5, nfe=4, method=method)
    b = sample(model, h, key=key, n=5, nfe=4, method=method)
    assert a.shape == (2, 5, 3) and a.dtype == jnp.float32
    np.testing.assert_allclose(a, b, atol=1e-5)
    c = sample_jit(model, h, key=jax.random.key(8), n=5, nfe=4, method=method)
    assert not np.allclose(a, c)


def test_ensemble_and_disagreement():
    models = [VectorField(x_dim=3, cond_dim=2, width=16, depth=1, time_features=4, rngs=nnx.Rngs(i))
              for i in range(2)]
    h = jnp.zeros((4, 2))
    x = ensemble_sample(models, h, key=jax.random.key(0), n=6, nfe=2, method="euler")
    assert x.shape == (2, 4, 6, 3)
    d = disagreement(x)
    assert d.shape == (4,) and bool(jnp.all(d > 0))
    same = disagreement(jnp.stack([x[0], x[0]]))
    np.testing.assert_allclose(same, 0.0, atol=1e-10)


def test_learns_bimodal_conditional():
    """Given h in {-1, +1}: x1 = h + 2 m + 0.1 e with m = +-1 equally likely (modes h - 2, h + 2).
    A tiny field trained with condition-aware OT must put both modes under each h."""
    rng = np.random.default_rng(0)
    model = VectorField(x_dim=1, cond_dim=1, width=64, depth=2, time_features=8, rngs=nnx.Rngs(0))
    optimizer = nnx.Optimizer(model, optax.adam(3e-3), wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x0, x1, h, s):
        (loss, _), grads = nnx.value_and_grad(cfm_loss, has_aux=True)(model, x0, x1, h, s)
        optimizer.update(model, grads)
        return loss

    batch = 256
    for _ in range(400):
        h = rng.choice([-1.0, 1.0], size=(batch, 1))
        x1 = h + 2.0 * rng.choice([-1.0, 1.0], size=(batch, 1)) + 0.1 * rng.normal(size=(batch, 1))
        x0 = rng.normal(size=(batch, 1))
        x0, x1, h = ot.pair(x0, x1, h, kind="cot", cond_weight=100.0)
        loss = train_step(model, optimizer, x0, x1, h, rng.uniform(size=batch))
    assert np.isfinite(float(loss))

    hs = jnp.array([[-1.0], [1.0]])
    x = np.asarray(sample_jit(model, hs, key=jax.random.key(1), n=512, nfe=8, method="heun"))[..., 0]
    for i, c in enumerate([-1.0, 1.0]):
        low = np.mean(np.abs(x[i] - (c - 2.0)) < 0.5)
        high = np.mean(np.abs(x[i] - (c + 2.0)) < 0.5)
        between = np.mean(np.abs(x[i] - c) < 1.0)
        assert low > 0.3 and high > 0.3, (c, low, high)
        assert between < 0.1, (c, between)


def test_the_return_dims_start_from_heavy_tailed_noise():
    from strates.cfm import Config
    from strates.cfm.model import build_model, loss_weights, source, source_numpy
    from strates.core.config import apply_overrides
    from strates.core.errors import ConfigError

    config = apply_overrides(Config(), ["future.horizon=4", "model.width=16", "model.depth=1"])
    model = build_model(config, x_dim=4 * (3 + 1), cond_dim=5, seed=0)
    assert (model.tail_dims, model.tail_df) == (4, config.future.tail_df)

    def kurtosis(z):
        z = np.asarray(z, np.float64)
        return float(((z - z.mean()) ** 4).mean() / z.var() ** 2)

    for x0 in (np.asarray(source(jax.random.key(0), (50_000, 16), model)),
               source_numpy(np.random.default_rng(0), (50_000, 16), tail_dims=4, tail_df=config.future.tail_df)):
        states, returns = x0[:, :12], x0[:, 12:]
        assert abs(kurtosis(states) - 3.0) < 0.15  # Gaussian
        assert kurtosis(returns) > 4.5 and abs(returns.var() - 1.0) < 0.1  # Student-t, unit variance
    gaussian = build_model(apply_overrides(config, ["future.tail_df=0"]), x_dim=16, cond_dim=5, seed=0)
    assert abs(kurtosis(source(jax.random.key(0), (50_000, 16), gaussian)) - 3.0) < 0.15
    with pytest.raises(ConfigError, match="tail_df"):
        apply_overrides(config, ["future.tail_df=2"])
    # the returns carry `return_share` of the loss; the weights average 1
    w = loss_weights(horizon=4, state_dim=3, return_share=0.95)
    assert np.isclose(w.mean(), 1.0) and np.isclose(w[12:].sum() / w.sum(), 0.95)
