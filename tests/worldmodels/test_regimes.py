"""Regimes: mixture choice by BIC, prediction from stored parameters, transitions, run lengths."""

from __future__ import annotations

import json
import math
from itertools import permutations

import numpy as np
import pytest
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture

from strates.worldmodels.regimes import Regimes, durations, fit, profile, regime_table, transitions

CENTRES = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0], [0.0, 6.0, 3.0]])
SIZES = (600, 400, 200)


def _blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    truth = np.repeat(np.arange(3), SIZES)
    return CENTRES[truth] + np.random.default_rng(seed).standard_normal((truth.size, 3)), truth


def test_three_blobs_give_three_regimes():
    z, truth = _blobs()
    r = fit(z, k_max=5)
    assert r.k == 3
    assert len(r.bic) == len(r.aic) == 5
    assert int(np.argmin(r.bic)) == 2
    assert list(r.weights) == sorted(r.weights, reverse=True)
    labels = r.predict(z)
    best = max(np.mean(np.asarray(p)[labels] == truth) for p in permutations(range(3)))
    assert best >= 0.99
    # numbered by weight: the largest blob is regime 0
    assert np.mean(labels == truth) >= 0.99


def test_one_blob_gives_one_regime():
    r = fit(np.random.default_rng(1).standard_normal((800, 3)), k_max=4)
    assert r.k == 1
    assert r.weights == pytest.approx((1.0,))


def test_predict_from_stored_parameters_matches_sklearn():
    z, _ = _blobs(2)
    r = fit(z, k_max=4, seed=3)
    gm = GaussianMixture(r.k, covariance_type="full", n_init=3, random_state=3).fit(z)
    # the same fit, renumbered by weight: map sklearn's labels through the order of its weights
    order = np.lexsort((*np.asarray(gm.means_).T[::-1], -np.asarray(gm.weights_)))
    rank = np.argsort(order)
    probe = np.random.default_rng(4).uniform(-3, 9, size=(2000, 3))  # also far from every blob
    np.testing.assert_array_equal(r.predict(probe), rank[gm.predict(probe)])
    joint = r.log_joint(probe)
    np.testing.assert_allclose(logsumexp(joint, axis=1), gm.score_samples(probe), rtol=1e-9)
    np.testing.assert_allclose(np.exp(joint - logsumexp(joint, axis=1, keepdims=True)),
                               gm.predict_proba(probe)[:, order], atol=1e-9)


def test_round_trip_through_json_predicts_the_same():
    z, _ = _blobs(5)
    r = fit(z, k_max=3)
    back = Regimes.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    np.testing.assert_array_equal(back.predict(z), r.predict(z))


def test_deterministic_for_a_seed_and_subsampled():
    z, _ = _blobs(6)
    a, b = fit(z, k_max=4, seed=7, max_fit=500), fit(z, k_max=4, seed=7, max_fit=500)
    assert a == b
    assert (a.rows, a.rows_fitted) == (1200, 500)
    assert fit(z, k_max=4, seed=8, max_fit=500).bic != a.bic  # another seed, another subsample


def test_refusals():
    with pytest.raises(ValueError, match=r"at least k_max \* \(Z \+ 1\) = 6 \* 4 = 24 rows"):
        fit(np.zeros((23, 3)))
    with pytest.raises(ValueError, match="criterion must be one of"):
        fit(np.zeros((100, 2)), criterion="icl")
    with pytest.raises(ValueError, match="non-finite"):
        fit(np.full((100, 2), np.nan))
    with pytest.raises(ValueError, match=r"shape \[N, Z\]"):
        fit(np.zeros(100))
    with pytest.raises(ValueError, match="is not a regime of k=2"):
        transitions([np.array([0, 2])], 2)


def test_transitions_by_hand_never_across_assets():
    a = np.array([0, 0, 1, 1, 1, 0])  # 0->0, 0->1, 1->1, 1->1, 1->0
    b = np.array([2, 2, 0])  # 2->2, 2->0; nothing between a's last bar and b's first
    m = transitions([a, b], 3)
    expected = np.array([[1 / 2, 1 / 2, 0.0], [1 / 3, 2 / 3, 0.0], [1 / 2, 0.0, 1 / 2]])
    np.testing.assert_allclose(m, expected, rtol=0, atol=1e-15)
    # a gap (-1) breaks the chain; a regime never followed by a labelled bar has a row of zeros
    m = transitions([np.array([0, 1, -1, 1, 0]), np.array([3])], 4)
    np.testing.assert_array_equal(m, [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(m.sum(axis=1), [1, 1, 0, 0])


def test_run_lengths_by_hand():
    runs = durations([np.array([0, 0, 0, 1, 1, 0, -1, 0, 2]), np.array([0, 1, 1, 1])], 3)
    # asset a: 0 x3, 1 x2, 0 x1, (gap), 0 x1, 2 x1; asset b: 0 x1 (not joined to a's 2), 1 x3
    assert [list(r) for r in runs] == [[3, 1, 1, 1], [2, 3], [1]]


def test_profile_by_hand():
    labels = [np.array([0, 0, 1, 1]), np.array([1, 0, 0])]
    returns = [np.array([9.0, 0.01, 0.03, -0.02]), np.array([9.0, 0.02, np.nan])]
    stats = profile(labels, returns, 3, periods_per_year=100)
    s0, s1, s2 = stats
    # regime 0 is followed by 0.01, 0.03 (asset a) and NaN (asset b): mean 0.02, std 0.01414
    assert (s0.bars, s0.share) == (4, pytest.approx(4 / 7))
    assert s0.mean_return == pytest.approx(0.02)
    assert s0.mean_return_annual == pytest.approx(2.0)
    assert s0.volatility == pytest.approx(math.sqrt(2e-4))
    assert s0.volatility_annual == pytest.approx(math.sqrt(2e-4) * 10)
    assert (s0.runs, s0.mean_duration) == (2, 2.0)
    # regime 1 is followed by -0.02 and 0.02 (its last bar in asset a has no next bar)
    assert (s1.bars, s1.mean_return, s1.runs, s1.mean_duration) == (3, pytest.approx(0.0), 2, 1.5)
    assert s2 == type(s2)(regime=2, share=0.0, bars=0, mean_return=0.0, mean_return_annual=0.0,
                          volatility=0.0, volatility_annual=0.0, mean_duration=0.0, runs=0)
    with pytest.raises(ValueError, match="labels have 4 bars but returns 3"):
        profile([labels[0]], [returns[0][:3]], 3, periods_per_year=1)


def test_tables():
    z, truth = _blobs()
    r = fit(z, k_max=4)
    stats = profile([truth], [np.zeros(truth.size)], r.k, periods_per_year=252)
    prof, trans = regime_table(r, stats, transitions([truth], r.k))
    assert len(prof.rows) == 3 and prof.columns[0] == "regime"
    assert "BIC" in prof.caption
    assert trans.columns == ("from \\ to", "0", "1", "2")
    assert trans.rows[2] == ("2", "0.000", "0.000", "1.000")
