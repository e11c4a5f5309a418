"""V and M against hand computations: the VAE's KL term against its integral, the ELBO with
free bits, the MDN's log-likelihood against a mixture written out with scipy, sampling at
a temperature, one LSTM step against numpy, and the feature windows."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from strates.worldmodels import features, mdn, vae


@pytest.mark.parametrize(("mu", "logvar"), [(0.0, 0.0), (1.3, -0.7), (-0.4, 1.1)])
def test_kl_term_is_the_kl_integral(mu, logvar):
    sd = math.exp(0.5 * logvar)

    def integrand(x):
        return stats.norm.pdf(x, mu, sd) * (stats.norm.logpdf(x, mu, sd) - stats.norm.logpdf(x))

    expected, _ = integrate.quad(integrand, mu - 12 * sd, mu + 12 * sd)
    got = float(vae.kl(jnp.asarray([mu]), jnp.asarray([logvar]))[0])
    assert got == pytest.approx(expected, abs=1e-6)


def test_elbo_counts_free_bits_per_dim():
    params = vae.init(jax.random.key(0), inputs=6, latent=3, width=8)
    x = jax.random.normal(jax.random.key(1), (5, 6))
    key = jax.random.key(2)
    mu, logvar = vae.encode(params, x)
    z = vae.sample(mu, logvar, key=key)
    recon = 0.5 * np.sum((np.asarray(x) - np.asarray(vae.decode(params, z))) ** 2, axis=1).mean()
    per_dim = np.asarray(vae.kl(mu, logvar)).mean(0)
    for beta, bits in ((1.0, 0.0), (0.5, 10.0)):  # 10 nats: every dim counts the floor
        total, m = vae.loss(params, x, key, kl_weight=beta, free_bits=bits)
        assert float(total) == pytest.approx(recon + beta * np.maximum(per_dim, bits).sum(), rel=1e-5)
        assert float(m["kl"]) == pytest.approx(per_dim.sum(), rel=1e-5)
    _, m = vae.loss(params, x, key, kl_weight=1.0, free_bits=10.0)
    assert float(m["active"]) == 0.0


def test_mdn_log_prob_is_the_mixture_density():
    rng = np.random.default_rng(0)
    y_dims, k = 3, 4
    logits, mean, log_std = (rng.standard_normal((2, y_dims, k)) for _ in range(3))
    y = rng.standard_normal((2, y_dims))
    got = np.asarray(mdn.log_prob(mdn.Mixture(*(jnp.asarray(a, jnp.float32) for a in (logits, mean, log_std))),
                                  jnp.asarray(y, jnp.float32)))
    w = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    expected = np.log((w * stats.norm.pdf(y[..., None], mean, np.exp(log_std))).sum(-1))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_mdn_loss_is_the_weighted_nll_of_the_next_step():
    latent, hidden, k, b, t = 2, 5, 3, 4, 6
    params = mdn.init(jax.random.key(0), latent=latent, hidden=hidden, mixtures=k)
    rng = np.random.default_rng(1)
    batch = {"mu": jnp.asarray(rng.standard_normal((b, t, latent)), jnp.float32),
             "logvar": jnp.full((b, t, latent), -30.0),  # z = mu: the draw does not matter
             "rho": jnp.asarray(rng.standard_normal((b, t)), jnp.float32),
             "actions": jnp.asarray(rng.uniform(-1, 1, (b, t)), jnp.float32)}
    total, m = mdn.loss(params, batch, jax.random.key(3), reward_weight=2.5)
    hs, _ = mdn.unroll(params, batch["mu"][:, :-1], batch["actions"][:, :-1])
    target = jnp.concatenate([batch["mu"][:, 1:], batch["rho"][:, 1:, None]], -1)
    lp = np.asarray(mdn.log_prob(mdn.head(params, hs), target))
    assert float(m["nll_z"]) == pytest.approx(-lp[..., :-1].mean(), rel=1e-5)
    assert float(total) == pytest.approx(-lp[..., :-1].mean() * latent - 2.5 * lp[..., -1].mean(), rel=1e-5)


def test_lstm_step_by_hand():
    latent, hidden = 2, 3
    params = mdn.init(jax.random.key(0), latent=latent, hidden=hidden, mixtures=2)
    rng = np.random.default_rng(2)
    h, c = rng.standard_normal(hidden), rng.standard_normal(hidden)
    z, a = rng.standard_normal(latent), 0.3
    gates = np.concatenate([z, [a], h]) @ np.asarray(params["lstm"]["w"]) + np.asarray(params["lstm"]["b"])
    i, f, g, o = np.split(gates, 4)
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    c2 = sig(f) * c + sig(i) * np.tanh(g)
    h2 = sig(o) * np.tanh(c2)
    got_h, got_c = mdn.step(params, (jnp.asarray(h, jnp.float32), jnp.asarray(c, jnp.float32)),
                            jnp.asarray(z, jnp.float32), jnp.asarray(a, jnp.float32))
    np.testing.assert_allclose(np.asarray(got_h), h2, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got_c), c2, rtol=1e-5)


def test_temperature_widens_draws_as_specified():
    # one dim, two components: logits / τ reweigh the components, σ grows by √τ
    mix = mdn.Mixture(jnp.asarray([[[0.0, math.log(3.0)]]]), jnp.asarray([[[-5.0, 5.0]]]),
                      jnp.log(jnp.asarray([[[0.5, 0.5]]])))
    n = 200_000
    for tau in (1.0, 2.0):
        y = np.asarray(mdn.sample(jax.tree.map(lambda a: jnp.broadcast_to(a, (n, 1, 2)), mix),
                                  key=jax.random.key(4), temperature=tau))[:, 0]
        w_hi = 3.0 ** (1.0 / tau) / (1.0 + 3.0 ** (1.0 / tau))
        assert (y > 0).mean() == pytest.approx(w_hi, abs=0.005)
        assert y[y > 0].std() == pytest.approx(0.5 * math.sqrt(tau), rel=0.02)


def test_windows_hold_the_last_bars_oldest_first():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    w = features.windows(x, 3)
    assert w.shape == (5, 6)
    np.testing.assert_array_equal(w[0], [0, 0, 0, 0, 0, 1])  # zeros before the first bar
    np.testing.assert_array_equal(w[4], [4, 5, 6, 7, 8, 9])
