"""Rosenstein's estimator through nolds, and the scores of an estimator against the truth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strates.bench import estimators, systems


def test_rosenstein_reads_lorenz_as_chaotic_and_a_limit_cycle_as_neutral():
    lorenz = systems.system("Lorenz")
    est = estimators.rosenstein(systems.trajectory("Lorenz", 2000), dims=3, points_per_period=12)
    assert 0.5 * lorenz.lambda_per_period < est < 2.0 * lorenz.lambda_per_period
    cycle = estimators.rosenstein(systems.trajectory("VanDerPol", 2000), dims=2, points_per_period=12)
    assert abs(cycle) < 0.2


def test_scores_on_known_answers():
    truth = np.array([0.5, 1.0, 2.0, 4.0, 0.0, -1.0])
    chaotic = truth > 0
    perfect = estimators.score(truth, truth, chaotic)
    assert perfect.spearman == pytest.approx(1.0) and perfect.sign_accuracy == 1.0
    assert perfect.median_abs_log_ratio == pytest.approx(0.0) and perfect.nonpositive_chaotic == 0
    reversed_ = estimators.score(truth, np.array([4.0, 2.0, 1.0, 0.5, 0.3, 0.2]), chaotic)
    assert reversed_.spearman == pytest.approx(-1.0)
    assert reversed_.sign_accuracy == pytest.approx(4 / 6)  # the two controls read as chaotic
    doubled = estimators.score(truth, truth * 2, chaotic)
    assert doubled.median_abs_log_ratio == pytest.approx(math.log(2))
    # an estimate <= 0 of a chaotic system, or a failed (NaN) one, counts against it
    failed = estimators.score(truth, np.array([-0.1, math.nan, 2.0, 4.0, 0.0, -1.0]), chaotic)
    assert failed.nonpositive_chaotic == 2 and failed.sign_accuracy == pytest.approx(4 / 6)
    assert math.isinf(failed.median_abs_log_ratio)  # half the chaotic systems have no log-ratio
    one_failed = estimators.score(truth, np.array([-0.1, 1.0, 2.0, 4.0, 0.0, -1.0]), chaotic)
    assert one_failed.median_abs_log_ratio == pytest.approx(0.0)
