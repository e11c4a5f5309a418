"""Strate III causal scale (`strates.cfm.scale`) and the futures in its unit (`strates.cfm.data`).

Checked against direct loops over the docstring formulas: the unit
sigma_t = max(RMS(r_{t-w+1..t}), floor * RMS(r_{0..t})), the features
vol_w = log(RMS_w / sigma_t), range_w = log(sqrt(mean(log(H/L)^2) / (4 log 2)) / sigma_t)
(Parkinson 1980) and last = r_t / sigma_t; then their scale invariance, causality, the floor,
the `Conditioner`, the observation layout and the futures round trip.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from strates.cfm import data, scale
from strates.core.errors import BAD_INPUT, ConfigError
from strates.jepa.artifact import States

CONFIG = scale.ScaleConfig()  # unit_window 24, windows (6, 120), range_window 24, floor 0.1


def _bars(n: int, *, seed: int, vol: float = 0.01, steps: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """`n` bars of a driftless Brownian log price sampled `steps` times per bar: (close-to-close
    log returns `[n]`, log(high / low) `[n]`), per-bar volatility `vol`."""
    rng = np.random.default_rng(seed)
    path = np.cumsum(rng.normal(0.0, vol / math.sqrt(steps), (n, steps)), axis=1)
    path = np.concatenate([np.zeros((n, 1)), path], axis=1)  # each bar opens at the last close
    return path[:, -1], path.max(axis=1) - path.min(axis=1)


def _loop_rms(x: np.ndarray, t: int, window: int) -> float:
    return float(np.sqrt(np.mean(x[max(0, t - window + 1): t + 1] ** 2)))


def _loop_features(r: np.ndarray, log_range: np.ndarray, config: scale.ScaleConfig, t: int):
    """(sigma_t, features at t) straight from the module docstring, for series with a range."""
    sigma = max(_loop_rms(r, t, config.unit_window), config.floor * _loop_rms(r, t, t + 1))
    vols = [math.log(_loop_rms(r, t, w) / sigma) for w in config.windows]
    park = _loop_rms(log_range, t, config.range_window) / math.sqrt(4.0 * math.log(2.0))
    return sigma, np.array([*vols, math.log(park / sigma), r[t] / sigma])


# -- trailing RMS, unit and features against direct loops -----------------------------------
@pytest.mark.parametrize("window", [1, 2, 5, 24, 80])
def test_trailing_rms_matches_a_direct_loop(window):
    x = np.random.default_rng(1).standard_t(4, 60) * 0.02
    want = np.array([_loop_rms(x, t, window) for t in range(len(x))])
    got = scale.trailing_rms(x, window)
    assert got.shape == (60,)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=0)  # a difference of running sums: ~eps * sum(x^2)
    # The start averages the bars there are, not a zero-padded window.
    assert got[0] == pytest.approx(abs(x[0]))
    assert got[1] == pytest.approx(math.sqrt((x[0] ** 2 + x[1] ** 2) / 2) if window >= 2 else abs(x[1]))


def test_unit_and_features_match_the_docstring_formulas():
    r, log_range = _bars(400, seed=2)
    r[200:230] *= 0.02  # a quiet spell where the floor binds
    sigma, feats = scale.raw_features(r, log_range, CONFIG)
    assert feats.shape == (400, len(CONFIG.names))
    floor_bound = 0
    for t in (0, 1, 5, 23, 24, 119, 120, 215, 225, 229, 399):
        want_sigma, want = _loop_features(r, log_range, CONFIG, t)
        floor_bound += want_sigma > _loop_rms(r, t, CONFIG.unit_window)
        assert sigma[t] == pytest.approx(want_sigma, rel=1e-12)
        np.testing.assert_allclose(feats[t], want, rtol=1e-10, atol=1e-12, err_msg=f"t={t}")
    assert floor_bound >= 2  # the quiet spell did exercise the floor
    np.testing.assert_array_equal(scale.unit(r, CONFIG), sigma)


def test_range_feature_measures_the_brownian_volatility():
    """For Brownian bars the Parkinson volatility is the close-to-close volatility, so
    range_24 (log of their ratio) sits near 0; a range twice too wide moves it by log 2."""
    r, log_range = _bars(3000, seed=3, steps=64)
    col = CONFIG.names.index(f"range_{CONFIG.range_window}")
    feats = scale.raw_features(r, log_range, CONFIG)[1][:, col]
    assert abs(np.median(feats[100:])) < 0.15
    wide = scale.raw_features(r, 2.0 * log_range, CONFIG)[1][:, col]
    np.testing.assert_allclose(wide - feats, math.log(2.0), atol=1e-12)


# -- scale-free ---------------------------------------------------------------------------
@pytest.mark.parametrize("c", [2.0, 1e-3, 37.0])
def test_scaling_the_returns_scales_the_unit_and_nothing_else(c):
    r, log_range = _bars(600, seed=4)
    sigma, feats = scale.raw_features(r, log_range, CONFIG)
    sigma_c, feats_c = scale.raw_features(c * r, c * log_range, CONFIG)
    np.testing.assert_allclose(sigma_c, c * sigma, rtol=1e-12)
    np.testing.assert_allclose(feats_c, feats, rtol=0, atol=1e-10)
    if c == 2.0:  # a power of two scales every intermediate exactly
        np.testing.assert_array_equal(sigma_c, c * sigma)
        np.testing.assert_array_equal(feats_c, feats)
    # ... so the futures, in units of sigma_t, do not move either.
    s, s_c = _states(r, log_range), _states(c * r, c * log_range)
    t = np.arange(0, 590, 7)
    np.testing.assert_allclose(data.futures(s_c, t, 5, sigma_c), data.futures(s, t, 5, sigma), rtol=1e-6, atol=1e-7)


def test_a_volatility_regime_shift_moves_the_unit_and_leaves_the_features():
    n, shift, longest = 4000, 500, max(*CONFIG.windows, CONFIG.range_window, CONFIG.unit_window)
    r, log_range = _bars(n, seed=5)
    k = np.where(np.arange(n) >= shift, 4.0, 1.0)
    sigma, feats = scale.raw_features(r, log_range, CONFIG)
    sigma_s, feats_s = scale.raw_features(k * r, k * log_range, CONFIG)
    w = CONFIG.unit_window

    # The unit: untouched before the shift, 4x once its window holds only new bars.
    np.testing.assert_array_equal(sigma_s[:shift], sigma[:shift])
    np.testing.assert_allclose(sigma_s[shift + w - 1:], 4.0 * sigma[shift + w - 1:], rtol=1e-12)
    ratio = sigma_s[shift:shift + w] / sigma[shift:shift + w]
    assert np.all(ratio > 1.0) and np.all(ratio <= 4.0 + 1e-12)
    assert np.all(np.diff(ratio) > 0)  # it climbs across the window

    # The features: knocked off while the windows straddle the shift ...
    vol_long = CONFIG.names.index(f"vol_{max(CONFIG.windows)}")
    pre_long = feats[longest:shift, vol_long]
    assert feats_s[shift + 2:shift + 2 * w, vol_long].max() < pre_long.min()
    assert feats_s[shift:shift + longest, vol_long].mean() < pre_long.mean() - 2.0 * pre_long.std()
    # ... identical to the unshifted series once every window holds only new bars ...
    np.testing.assert_allclose(feats_s[shift + longest - 1:], feats[shift + longest - 1:], rtol=0, atol=1e-10)
    # ... so back to their pre-shift distribution (loosely: an autocorrelated 380-bar sample).
    pre, post = feats_s[longest:shift], feats_s[shift + longest:]
    np.testing.assert_allclose(post.mean(0), pre.mean(0), atol=0.2)
    np.testing.assert_allclose(post.std(0), pre.std(0), rtol=0.5)


# -- causality ----------------------------------------------------------------------------
@pytest.mark.parametrize("t", [0, 7, 150, 598])
def test_the_future_does_not_reach_the_past(t):
    r, log_range = _bars(600, seed=6)
    rng = np.random.default_rng(7)
    r2, lr2 = r.copy(), log_range.copy()
    r2[t + 1:] = rng.standard_t(3, 600 - t - 1) * 0.5  # a crash, far larger than the past
    lr2[t + 1:] = np.abs(r2[t + 1:]) * 3.0
    sigma, feats = scale.raw_features(r, log_range, CONFIG)
    sigma2, feats2 = scale.raw_features(r2, lr2, CONFIG)
    np.testing.assert_array_equal(sigma2[: t + 1], sigma[: t + 1])
    np.testing.assert_array_equal(feats2[: t + 1], feats[: t + 1])
    if t + 1 < 600:
        assert not np.allclose(sigma2[t + 1:], sigma[t + 1:])


def test_a_range_that_starts_later_does_not_change_earlier_bars():
    r, log_range = _bars(200, seed=8)
    t = 100
    without = np.zeros(200)
    later = without.copy()
    later[t + 1:] = log_range[t + 1:]
    col = CONFIG.names.index(f"range_{CONFIG.range_window}")
    before = scale.raw_features(r, without, CONFIG)[1][: t + 1, col]
    after = scale.raw_features(r, later, CONFIG)[1][: t + 1, col]
    np.testing.assert_array_equal(after, before)


# -- the floor, stale and close-only data -------------------------------------------------
def test_a_run_of_zero_returns_keeps_the_unit_at_the_floor():
    r, log_range = _bars(500, seed=9)
    r = np.concatenate([r, np.zeros(300)])  # stale prices: no move and no range
    log_range = np.concatenate([log_range, np.zeros(300)])
    sigma, feats = scale.raw_features(r, log_range, CONFIG)
    expanding = np.array([_loop_rms(r, t, t + 1) for t in range(len(r))])
    assert np.all(sigma > 0)
    assert np.all(sigma >= CONFIG.floor * expanding * (1 - 1e-12))
    stale = slice(500 + CONFIG.unit_window - 1, None)  # the unit's window holds only zeros
    np.testing.assert_allclose(sigma[stale], CONFIG.floor * expanding[stale], rtol=1e-12)
    assert np.all(np.isfinite(feats))
    np.testing.assert_array_equal(feats[500:, CONFIG.names.index("last")], 0.0)


def test_all_zero_returns_give_a_positive_unit_and_finite_features():
    sigma, feats = scale.raw_features(np.zeros(50), np.zeros(50), CONFIG)
    assert np.all(sigma > 0)
    assert np.all(np.isfinite(feats))


@pytest.mark.parametrize("fill", [0.0, np.nan])
def test_close_only_data_has_a_zero_range_feature(fill):
    r, _ = _bars(300, seed=10)
    sigma, feats = scale.raw_features(r, np.full(300, fill), CONFIG)
    assert np.all(np.isfinite(feats))
    np.testing.assert_array_equal(feats[:, CONFIG.names.index(f"range_{CONFIG.range_window}")], 0.0)
    # The other features do not depend on whether a range exists.
    with_range = scale.raw_features(r, _bars(300, seed=10)[1], CONFIG)[1]
    others = [i for i, name in enumerate(CONFIG.names) if not name.startswith("range_")]
    np.testing.assert_array_equal(feats[:, others], with_range[:, others])
    np.testing.assert_array_equal(sigma, scale.unit(r, CONFIG))


# -- Conditioner and ScaleConfig ----------------------------------------------------------
def test_conditioner_standardises_training_rows_to_std_one_over_sqrt_k():
    r, log_range = _bars(2000, seed=11)
    feats = scale.raw_features(r, log_range, CONFIG)[1][200:]
    cond = scale.Conditioner.fit(feats, CONFIG)
    k = len(CONFIG.names)
    assert cond.names == CONFIG.names == ("vol_6", "vol_120", "range_24", "last")
    assert len(cond.mean) == len(cond.std) == k
    z = (feats - feats.mean(0)) / feats.std(0)
    assert np.abs(z).max() < 8.0  # no clipping on these rows
    out = cond.apply(feats)
    assert out.dtype == np.float32 and out.shape == feats.shape
    np.testing.assert_allclose(out.mean(0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out.std(0), 1.0 / math.sqrt(k), rtol=1e-5)
    assert np.mean(np.sum(out.astype(np.float64) ** 2, axis=1)) == pytest.approx(1.0, rel=1e-5)


def test_conditioner_clips_outliers_and_survives_a_constant_column():
    rng = np.random.default_rng(12)
    feats = rng.normal([0.1, -0.2, 0.0, 0.5], [0.3, 0.1, 0.2, 1.0], (500, 4))
    feats[:, 2] = 0.25  # e.g. a range feature that never moved
    cond = scale.Conditioner.fit(feats, CONFIG)
    assert cond.std[2] == pytest.approx(1e-6)
    out = cond.apply(feats)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, 2], 0.0)
    far = np.array(cond.mean) + np.array([100.0, -100.0, 0.0, 7.0]) * np.array(cond.std)
    np.testing.assert_allclose(cond.apply(far), np.array([8.0, -8.0, 0.0, 7.0]) / 2.0, rtol=1e-6)
    # apply takes any leading axes
    assert cond.apply(feats.reshape(5, 100, 4)).shape == (5, 100, 4)


@pytest.mark.parametrize(("kwargs", "field", "value"), [
    ({"unit_window": 1}, "scale.unit_window", "1"),
    ({"range_window": 0}, "scale.range_window", "0"),
    ({"windows": (6, 1)}, "scale.windows", "1"),
    ({"floor": 0.0}, "scale.floor", "0.0"),
    ({"floor": 1.0}, "scale.floor", "1.0"),
    ({"floor": -0.2}, "scale.floor", "-0.2"),
    ({"floor": float("nan")}, "scale.floor", "nan"),
])
def test_scale_config_rejects_bad_values_naming_the_field(kwargs, field, value):
    with pytest.raises(ConfigError) as err:
        scale.ScaleConfig(**kwargs)
    assert err.value.column == field
    assert field in err.value.detail and value in err.value.detail
    assert err.value.exit_code == BAD_INPUT


def test_scale_config_accepts_the_smallest_values_and_orders_names():
    config = scale.ScaleConfig(unit_window=2, windows=(2, 48, 10), range_window=2, floor=0.5)
    assert config.names == ("vol_2", "vol_48", "vol_10", "range_2", "last")


# -- observation and split ----------------------------------------------------------------
def _unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    h = np.random.default_rng(seed).normal(size=(n, d))
    return (h / np.linalg.norm(h, axis=1, keepdims=True)).astype(np.float32)


def test_observation_layout_and_split_round_trip():
    n, d = 300, 5
    r, log_range = _bars(n, seed=13)
    h = _unit_rows(n, d, seed=14)
    sigma, feats = scale.raw_features(r, log_range, CONFIG)
    cond = scale.Conditioner.fit(feats, CONFIG)
    k = len(CONFIG.names)

    obs = scale.observation(h, r, log_range, CONFIG, cond)
    assert obs.shape == (n, d + k + 1) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[:, :d], h)
    np.testing.assert_array_equal(obs[:, d:d + k], cond.apply(feats))
    np.testing.assert_allclose(np.exp(obs[:, -1].astype(np.float64)), sigma, rtol=2e-6)

    h_out, condition, unit = scale.split(obs, d)
    assert isinstance(unit, np.ndarray)
    assert h_out.shape == (n, d) and condition.shape == (n, d + k) and unit.shape == (n, 1)
    np.testing.assert_array_equal(h_out, h)
    np.testing.assert_array_equal(condition, obs[:, :d + k])
    np.testing.assert_allclose(unit[:, 0], sigma, rtol=2e-6)

    batched = scale.split(obs.reshape(3, 100, -1), d)
    assert [a.shape for a in batched] == [(3, 100, d), (3, 100, d + k), (3, 100, 1)]


def test_split_works_on_jax_arrays():
    import jax
    import jax.numpy as jnp

    n, d = 40, 3
    r, log_range = _bars(n, seed=15)
    sigma, feats = scale.raw_features(r, log_range, CONFIG)
    obs = scale.observation(_unit_rows(n, d, seed=16), r, log_range, CONFIG, scale.Conditioner.fit(feats, CONFIG))
    want = scale.split(obs, d)
    got = jax.jit(lambda o: scale.split(o, d))(jnp.asarray(obs))
    for g, w in zip(got, want, strict=True):
        assert isinstance(g, jax.Array)
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(got[2])[:, 0], sigma, rtol=2e-6)


# -- futures in units of sigma_t ----------------------------------------------------------
def _states(r: np.ndarray, log_range: np.ndarray, d: int = 3) -> States:
    n = len(r)
    ts = np.datetime64("2020-01-01T00:00", "us") + np.arange(n) * np.timedelta64(1, "h")
    return States("TEST", ts, _unit_rows(n, d, seed=17), np.asarray(r, np.float64), np.asarray(log_range, np.float64))


def test_futures_round_trip_through_split_future():
    r, log_range = _bars(120, seed=18)
    s = _states(r, log_range)
    sigma = scale.unit(r, CONFIG)
    t, horizon, d = np.array([0, 3, 24, 50, 110]), 4, 3
    x = data.futures(s, t, horizon, sigma)
    assert x.shape == (len(t), horizon * d + horizon) and x.dtype == np.float32
    steps = t[:, None] + np.arange(1, horizon + 1)
    np.testing.assert_allclose(x[:, horizon * d:], r[steps] / sigma[t][:, None], rtol=1e-6)  # unit of bar t

    states, paths = data.split_future(x, horizon=horizon, dim=d, sigma=sigma[t])
    assert states.shape == (len(t), horizon, d) and paths.shape == (len(t), horizon)
    np.testing.assert_allclose(paths, r[steps], rtol=1e-6)  # float32 futures: ~1e-7 relative
    np.testing.assert_allclose(states, s.h[steps], atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(states, axis=-1), 1.0, atol=1e-6)

    # Samples [S, n, F] rescale by each state's unit [S]; a scalar unit rescales all.
    many = np.stack([x, 2.0 * x], axis=1)  # [S, 2, F]
    paths_many = data.split_future(many, horizon=horizon, dim=d, sigma=sigma[t])[1]
    np.testing.assert_allclose(paths_many[:, 0], r[steps], rtol=1e-6)
    np.testing.assert_allclose(paths_many[:, 1], 2.0 * r[steps], rtol=1e-6)
    one = data.split_future(x[1], horizon=horizon, dim=d, sigma=sigma[3])[1]
    np.testing.assert_allclose(one, r[4:8], rtol=1e-6)


def test_futures_round_trip_is_exact_when_the_units_are_representable():
    """With dyadic returns and power-of-two units every step is exact, float32 included."""
    rng = np.random.default_rng(19)
    n, horizon, d = 40, 3, 3
    r = rng.integers(-512, 513, n) / 2.0**16
    sigma = 2.0 ** rng.integers(-9, -4, n).astype(np.float64)
    s = _states(r, np.abs(r))
    t = np.arange(0, n - horizon, 2)
    x = data.futures(s, t, horizon, sigma)
    paths = data.split_future(x, horizon=horizon, dim=d, sigma=sigma[t])[1]
    np.testing.assert_array_equal(paths, r[t[:, None] + np.arange(1, horizon + 1)])
