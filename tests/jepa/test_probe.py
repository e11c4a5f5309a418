from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from strates.core.errors import ConfigError
from strates.jepa.config import ProbeConfig
from strates.jepa.probe import forward_targets, logistic_accuracy, period_rows, rankme, ridge_r2, trailing_window


def test_rankme_spans_collapse_to_full_rank():
    rng = np.random.default_rng(0)
    full = rng.normal(size=(2000, 16))
    line = np.outer(rng.normal(size=2000), rng.normal(size=16))
    assert rankme(full) > 14
    assert rankme(line) < 1.1
    two = np.hstack([rng.normal(size=(2000, 2)), np.zeros((2000, 14))])
    assert 1.8 < rankme(two) < 2.05


def test_forward_targets_by_hand():
    r = np.array([0.0, 0.1, -0.2, 0.3, 0.0, 0.05])  # r[0]: the first bar has no previous close
    vol, sign = forward_targets(r, 2, window=2)
    # t = 2: next bars 3, 4 against the trailing bars 1, 2
    assert np.isclose(vol[2], 0.5 * np.log((0.09 + 0.0) / 2) - 0.5 * np.log((0.01 + 0.04) / 2))
    assert np.isclose(vol[3], 0.5 * np.log((0.0 + 0.0025) / 2) - 0.5 * np.log((0.04 + 0.09) / 2))
    assert sign[0] == 0.0 and sign[1] == 1.0 and sign[2] == 1.0 and sign[3] == 1.0
    assert np.isnan(vol[:2]).all()  # the trailing window would reach r[0]
    assert np.isnan(vol[4:]).all() and np.isnan(sign[4:]).all()  # the horizon runs past the end


def test_relative_vol_target_does_not_see_the_volatility_level():
    rng = np.random.default_rng(2)
    r = rng.standard_t(4, size=500) * 0.01
    vol, sign = forward_targets(r, 24, window=24)
    loud_vol, loud_sign = forward_targets(3.0 * r, 24, window=24)
    ok = np.isfinite(vol)
    assert ok.sum() == 500 - 24 - 24 and np.array_equal(ok, np.isfinite(loud_vol))
    assert np.allclose(vol[ok], loud_vol[ok], atol=1e-6) and np.array_equal(sign[ok], loud_sign[ok])
    # a calm stretch after a loud one: the target is centred on 0 in both, not shifted by log 3
    shifted = np.concatenate([3.0 * r[:250], r[250:]])
    v, _ = forward_targets(shifted, 24, window=24)
    assert abs(np.nanmean(v[24:200]) - np.nanmean(v[300:476])) < 0.15


def test_probes_find_linear_signal_and_not_noise():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4000, 5))
    y = x @ np.array([1.0, -2.0, 0.0, 0.5, 0.0]) + 0.1 * rng.normal(size=4000)
    assert ridge_r2(x[:3000], y[:3000], x[3000:], y[3000:]) > 0.99
    assert ridge_r2(x[:3000], rng.normal(size=3000), x[3000:], rng.normal(size=1000)) < 0.01
    labels = (y > 0).astype(float)
    assert logistic_accuracy(x[:3000], labels[:3000], x[3000:], labels[3000:]) > 0.95


def test_trailing_window_is_causal():
    x = np.arange(12, dtype=float).reshape(6, 2)
    w = trailing_window(x, 3)
    assert w.shape == (6, 6)
    assert list(w[4]) == [8, 9, 6, 7, 4, 5]
    assert list(w[0]) == [0, 1, 0, 0, 0, 0]


def test_probe_rows_keep_every_target_inside_its_period():
    first = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    ts = np.array([np.datetime64(first.replace(tzinfo=None), "us") + np.timedelta64(i, "h") for i in range(20)])
    at = lambda i: first + dt.timedelta(hours=i)  # noqa: E731
    rows = np.nonzero(period_rows(ts, at(10), at(16), horizon=3))[0]
    # bars 13..15 would need bars 16.. (after the period's end) for their 3-bar target
    assert list(rows) == [10, 11, 12]
    vol, _ = forward_targets(np.linspace(0.01, 0.2, 20), 3, window=3)
    assert np.isfinite(vol[rows]).all()
    # the last bars of the series have no target at all; `skip` drops the first bars
    assert list(np.nonzero(period_rows(ts, at(0), at(20), horizon=3, skip=2))[0]) == list(range(2, 17))
    assert not period_rows(ts, at(10), at(13), horizon=3).any()


def test_the_trailing_volatility_window_is_validated():
    assert ProbeConfig().vol_window == 24
    with pytest.raises(ConfigError, match=r"probe\.vol_window"):
        ProbeConfig(vol_window=1)
