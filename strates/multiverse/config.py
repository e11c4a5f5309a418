"""Multiverse Crossing config."""

from __future__ import annotations

import dataclasses

from strates.core.errors import ConfigError

DEFAULT_PRESET = "small"


@dataclasses.dataclass(frozen=True)
class Config:
    """universes: M perturbed states per decision (plus the unperturbed one), and as many
    re-seeded copies of the unperturbed one for the decision noise floor; sigma: the geodesic
    angle in radians; threshold: consensus below it marks a decision contested; band:
    |position| below it is flat; max_bars: the budget of decision times, evenly spaced over
    the whole period (0 = every bar); cost_levels: the costs (bps) the policies are charged;
    bootstrap: replicates of the paired block bootstrap behind the verdict. With an agent,
    every universe draws the agent's own N futures (the same noise as universe 0).
    futures: N futures per universe when crossing the futures alone (`run_futures`; 0 = the
    cfm's `sample.futures`); the agent path draws the agent's N, so it must stay 0 there."""

    universes: int = 30
    sigma: float = 0.02
    threshold: float = 2 / 3
    band: float = 0.1
    max_bars: int = 64
    cost_levels: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0)
    bootstrap: int = 2000
    seed: int = 0
    futures: int = 0

    def __post_init__(self):
        checks = [
            (1 <= self.universes <= 512, "universes", f"universes must be between 1 and 512, got {self.universes}"),
            (0 <= self.sigma <= 3.14159, "sigma", f"sigma must be an angle in [0, pi] radians, got {self.sigma}"),
            (0 < self.threshold <= 1, "threshold", f"threshold must be in (0, 1], got {self.threshold}"),
            (0 <= self.band < 1, "band", f"band must be in [0, 1), got {self.band}"),
            (self.max_bars >= 0, "max_bars", f"max_bars must be >= 0, got {self.max_bars}"),
            (self.bootstrap >= 100, "bootstrap", f"bootstrap must be >= 100 replicates, got {self.bootstrap}"),
            (0 <= self.futures <= 4096, "futures",
             f"futures must be between 0 (the cfm's) and 4096, got {self.futures}"),
        ]
        for ok, field, message in checks:
            if not ok:
                raise ConfigError(message, field=field)


PRESETS: dict[str, dict] = {
    "debug": {"universes": 4, "max_bars": 24, "bootstrap": 200},
    "small": {},
    "base": {"max_bars": 0},
    # the futures alone, fast (chaos bench lyapunov): 8 universes x 32 futures at 32 decision
    # times per asset, 8192 log-distances per step and asset behind each λ
    "bench": {"universes": 8, "max_bars": 32, "futures": 32},
}
