"""The systems of `chaos bench lyapunov`: chaotic flows with published exponents, and
controls whose exponent is known by construction.

Chaotic flows come from the dysts collection (Gilpin, NeurIPS 2021 datasets track): its
equations (`dysts.flows.<Name>.rhs`), parameters, initial conditions, dominant period and
published maximal Lyapunov exponent (`maximum_lyapunov_estimated`, per unit time). dysts
integrates with a stiff solver (Radau) at tolerance 1e-12 by default, which takes minutes
per system in pure Python; these flows are not stiff at their published parameters, so we
integrate them with an explicit Runge–Kutta method (scipy's DOP853, rtol = atol = 1e-9) and
check a few trajectories against dysts' own (tests/bench/test_systems.py).

Sampling: every system is sampled at a fixed number of points per period
(`points_per_period`, default 12: the sampling interval is period / 12), after a transient
of `transient` periods is discarded, and every channel is observed. Optional observation
noise adds Gaussian noise of `noise` x each channel's standard deviation. With a fixed
number of points per period, an exponent per bar times `points_per_period` is an exponent
per period (dimensionless): that is the scale on which systems are compared.

Controls (`kind = "control"`), each with its own time scale standing in for the period:
- `DampedOscillator`: x'' + 2ζω x' + ω² x = white noise (ω = 2π, ζ = 0.1): a stable fixed
  point kept visible by weak forcing; its maximal exponent is −ζω (the linear part decays at
  that rate; additive noise does not change it). Period 2π/ω = 1.
- `VanDerPol`: x'' − μ(1 − x²)x' + x = 0 (μ = 1): a limit cycle, exponent 0; its period
  is measured from the simulated cycle.
- `OrnsteinUhlenbeck`: dx = −θx dt + dW per channel (θ = 1, 3 channels): exponent −θ, no
  deterministic chaos; time scale 1/θ... taken as the period 2π/θ so that 12 points per
  "period" sample it finely enough to see the decay.
- `RandomWalk`: cumulative Gaussian steps (3 channels): exponent 0, no dynamics at all;
  time scale: one period = `points_per_period` steps.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import warnings
from pathlib import Path

import numpy as np

POINTS_PER_PERIOD = 12
TRANSIENT = 20  # periods discarded before sampling starts
RTOL = ATOL = 1e-9


@dataclasses.dataclass(frozen=True)
class System:
    """A system of the benchmark. `lambda_true`: maximal Lyapunov exponent per unit time
    (dysts' published estimate, or known by construction for a control); `period`: its
    dominant period in the same time unit."""

    name: str
    kind: str  # "chaotic" or "control"
    dims: int
    period: float
    lambda_true: float
    source: str

    @property
    def lambda_per_period(self) -> float:
        """The exponent per period, dimensionless: what the benchmark compares."""
        return self.lambda_true * self.period


CONTROLS = ("DampedOscillator", "VanDerPol", "OrnsteinUhlenbeck", "RandomWalk")


@functools.cache
def _catalogue() -> dict[str, dict]:
    import dysts

    path = Path(dysts.__file__).parent / "data" / "chaotic_attractors.json"
    return json.loads(path.read_text())


def _eligible(meta: dict) -> bool:
    """Autonomous ODEs (no delay, no forcing), 3 or 4 dimensions, bounded, with a published
    positive exponent and period."""
    return (not meta.get("delay") and not meta.get("nonautonomous") and not meta.get("unbounded_indices")
            and meta.get("embedding_dimension") in (3, 4) and (meta.get("maximum_lyapunov_estimated") or 0) > 0
            and (meta.get("period") or 0) > 0)


def catalogue() -> list[str]:
    """Every dysts flow the benchmark can run, sorted by name."""
    return sorted(name for name, meta in _catalogue().items() if _eligible(meta))


def system(name: str) -> System:
    """The metadata of one system (a dysts flow or a control)."""
    if name == "DampedOscillator":
        return System(name, "control", 2, 1.0, -0.1 * 2 * math.pi, "x'' + 2ζωx' + ω²x = noise, ζ=0.1, ω=2π")
    if name == "VanDerPol":
        return System(name, "control", 2, _vdp_period(), 0.0, "x'' - μ(1 - x²)x' + x = 0, μ=1")
    if name == "OrnsteinUhlenbeck":
        return System(name, "control", 3, 2 * math.pi, -1.0, "dx = -θx dt + dW, θ=1, 3 channels")
    if name == "RandomWalk":
        return System(name, "control", 3, 1.0, 0.0, "cumulative N(0, 1) steps, 3 channels")
    meta = _catalogue().get(name)
    if meta is None or not _eligible(meta):
        from strates.core.errors import InvalidInput

        raise InvalidInput(f"{name!r} is not a system of the benchmark", rule="unknown-system",
                           fix=f"pick from {', '.join(catalogue() + list(CONTROLS))}")
    return System(name, "chaotic", int(meta["embedding_dimension"]), float(meta["period"]),
                  float(meta["maximum_lyapunov_estimated"]), "dysts")


def trajectory(name: str, n: int, *, points_per_period: int = POINTS_PER_PERIOD, noise: float = 0.0,
               seed: int = 0) -> np.ndarray:
    """`n` samples `[n, dims]` of system `name`, `points_per_period` per period, after the
    transient; with observation noise `noise` x each channel's std."""
    s = system(name)
    dt = s.period / points_per_period
    rng = np.random.default_rng(seed)
    x = _integrate_dysts(name, n, dt, warm=TRANSIENT * s.period) if s.kind == "chaotic" else _control(name, n, dt, rng)
    if noise > 0:
        x = x + noise * x.std(0, keepdims=True) * rng.standard_normal(x.shape)
    return x


def integrate(name: str, x0, t_eval: np.ndarray) -> np.ndarray:
    """The dysts flow `name` from `x0` (its published initial condition when None), sampled
    at times `t_eval` (from t = 0): `[len(t_eval), dims]`, DOP853 at RTOL/ATOL."""
    from scipy.integrate import solve_ivp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Numba not installed": the equations run as plain numpy
        import dysts.flows

    flow = getattr(dysts.flows, name)()
    rhs = lambda t, x: np.asarray(flow.rhs(x, t), np.float64)  # noqa: E731
    start = np.asarray(flow.ic if x0 is None else x0, np.float64)
    sol = solve_ivp(rhs, (0.0, float(t_eval[-1])), start, method="DOP853", t_eval=t_eval, rtol=RTOL, atol=ATOL)
    if not sol.success or sol.y.shape[1] != len(t_eval) or not np.isfinite(sol.y).all():
        from strates.core.errors import InvalidInput

        raise InvalidInput(f"integrating {name} failed: {sol.message}", rule="integration-failed",
                           fix="leave this system out (--systems)")
    return sol.y.T


def _integrate_dysts(name: str, n: int, dt: float, *, warm: float) -> np.ndarray:
    return integrate(name, None, warm + dt * np.arange(n))


def _control(name: str, n: int, dt: float, rng: np.random.Generator) -> np.ndarray:
    warm = TRANSIENT * round(system(name).period / dt)
    total = n + warm
    if name == "RandomWalk":
        return np.cumsum(rng.standard_normal((n, 3)), axis=0)
    if name == "OrnsteinUhlenbeck":  # exact discretisation
        a = math.exp(-dt)
        x = np.zeros((total, 3))
        e = rng.standard_normal((total, 3)) * math.sqrt((1 - a * a) / 2)
        for t in range(1, total):
            x[t] = a * x[t - 1] + e[t]
        return x[warm:]
    if name == "DampedOscillator":  # exact discretisation of the deterministic part, noise added each step
        from scipy.linalg import expm

        w, z = 2 * math.pi, 0.1
        step = expm(np.array([[0.0, 1.0], [-w * w, -2 * z * w]]) * dt)
        x = np.zeros((total, 2))
        x[0] = (1.0, 0.0)
        e = rng.standard_normal((total, 2)) * np.array([0.0, 1.0]) * math.sqrt(dt)
        for t in range(1, total):
            x[t] = step @ x[t - 1] + e[t]
        return x[warm:]
    if name == "VanDerPol":
        from scipy.integrate import solve_ivp

        t_eval = dt * np.arange(warm, total)
        sol = solve_ivp(_vdp, (0.0, float(t_eval[-1])), [2.0, 0.0], method="DOP853", t_eval=t_eval,
                        rtol=RTOL, atol=ATOL)
        return sol.y.T
    raise ValueError(name)


def _vdp(t, x, mu: float = 1.0):
    return [x[1], mu * (1 - x[0] ** 2) * x[1] - x[0]]


@functools.cache
def _vdp_period() -> float:
    """The Van der Pol cycle's period (μ = 1), from upward zero crossings after a transient."""
    from scipy.integrate import solve_ivp

    sol = solve_ivp(_vdp, (0.0, 200.0), [2.0, 0.0], method="DOP853", dense_output=True, rtol=RTOL, atol=ATOL)
    t = np.linspace(100.0, 200.0, 200_001)
    x = sol.sol(t)[0]
    up = t[1:][(x[:-1] < 0) & (x[1:] >= 0)]
    return float(np.diff(up).mean())
