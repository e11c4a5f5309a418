"""The benchmark's systems: our explicit integration reproduces dysts' own trajectories, the
catalogue holds what the full run names, and the controls have the properties their known
exponents rest on."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest

from strates.bench import systems
from strates.bench.config import CHAOTIC, SUBSET, SYSTEMS
from strates.core.errors import InvalidInput


def test_the_full_run_has_30_chaotic_flows_and_the_4_controls():
    assert len(CHAOTIC) >= 30 and set(CHAOTIC) <= set(systems.catalogue())
    assert set(systems.CONTROLS) <= set(SYSTEMS) and set(SUBSET) <= set(SYSTEMS)
    kinds = {systems.system(n).kind for n in SUBSET}
    assert kinds == {"chaotic", "control"}


def test_published_metadata_is_read_from_dysts():
    lorenz = systems.system("Lorenz")
    assert lorenz.kind == "chaotic" and lorenz.dims == 3
    assert 0.8 < lorenz.lambda_true < 1.0  # dysts' estimate of the classic 0.906
    assert lorenz.lambda_per_period == pytest.approx(lorenz.lambda_true * lorenz.period)


def test_unknown_system_is_refused_with_the_choices():
    with pytest.raises(InvalidInput, match="not a system") as err:
        systems.system("Lorentz")
    assert "Lorenz" in (err.value.fix or "")


def test_our_integration_matches_dysts_within_a_lyapunov_time():
    """dysts' own stiff solver (Radau, 1e-12) and our DOP853 (1e-9) from the same initial
    condition agree until chaos amplifies the solvers' rounding (2 periods of Lorenz)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import dysts.flows

    flow = dysts.flows.Lorenz()
    made: Any = flow.make_trajectory(48, pts_per_period=24, init_cond=np.array(flow.ic), postprocess=False,
                                     standardize=False, return_times=True)
    ts, ref = made
    ours = systems.integrate("Lorenz", flow.ic, np.ravel(ts))
    assert np.abs(ours - ref).max() < 1e-4 * np.abs(ref).max()


def test_sampling_is_fixed_points_per_period_and_noise_is_relative():
    clean = systems.trajectory("Lorenz", 600)
    assert clean.shape == (600, 3) and np.isfinite(clean).all()
    noisy = systems.trajectory("Lorenz", 600, noise=0.05)
    ratio = (noisy - clean).std(0) / clean.std(0)
    assert np.allclose(ratio, 0.05, rtol=0.15)
    # a limit cycle sampled at 12 points per period repeats itself every 12 bars
    vdp = systems.trajectory("VanDerPol", 600)
    assert np.abs(vdp[12:] - vdp[:-12]).max() < 0.05 * np.abs(vdp).max()


def test_controls_decay_at_their_known_rate():
    """The OU control's lag-1 autocorrelation is e^{-θ dt} (its exponent −θ); the damped
    oscillator's deterministic step contracts at e^{−ζω dt}."""
    ou = systems.system("OrnsteinUhlenbeck")
    x = systems.trajectory("OrnsteinUhlenbeck", 20000, seed=1)
    dt = ou.period / systems.POINTS_PER_PERIOD
    rho = np.mean([np.corrcoef(x[1:, i], x[:-1, i])[0, 1] for i in range(3)])
    assert rho == pytest.approx(math.exp(ou.lambda_true * dt), abs=0.02)
    walk = systems.trajectory("RandomWalk", 2000)
    assert np.diff(walk, axis=0).std() == pytest.approx(1.0, rel=0.1)
    osc = systems.system("DampedOscillator")
    assert osc.lambda_true == pytest.approx(-0.1 * 2 * math.pi)
