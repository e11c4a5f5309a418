"""`chaos bench lyapunov` config."""

from __future__ import annotations

import dataclasses

from strates.bench.systems import CONTROLS, POINTS_PER_PERIOD
from strates.core.errors import ConfigError

DEFAULT_PRESET = "bench"

# The chaotic flows of the full run: 34 of the 106 dysts flows the benchmark can run
# (`systems.catalogue()`: autonomous, 3 or 4 dimensions, bounded, a published positive
# exponent), picked by name before any estimate was looked at: the classical attractors
# (Lorenz and its relatives, Rossler, Chen, Chua, the Sprott A-D flows, Thomas, ...), each
# sampled by our integrator in a few seconds. Any other flow of the catalogue runs with
# `--systems` (`--list` names them).
CHAOTIC = (
    "Aizawa", "AnishchenkoAstakhov", "Arneodo", "Blasius", "Bouali", "Bouali2", "BurkeShaw", "Chen", "ChenLee",
    "Chua", "Colpitts", "Coullet", "Dadras", "DequanLi", "Finance", "GenesioTesi", "Hadley", "HindmarshRose",
    "Lorenz", "LorenzBounded", "LorenzStenflo", "LuChen", "NoseHoover", "QiChen", "RabinovichFabrikant",
    "RikitakeDynamo", "Rossler", "Rucklidge", "SprottA", "SprottB", "SprottC", "SprottD", "Thomas", "WangSun",
)
SYSTEMS = (*CHAOTIC, *CONTROLS)
# three systems of different kinds for the tests: fast to integrate, one of each sign
SUBSET = ("Lorenz", "VanDerPol", "OrnsteinUhlenbeck")


@dataclasses.dataclass(frozen=True)
class Config:
    """systems: dysts flows and controls (`systems.CONTROLS`) to run; points_per_period:
    the sampling (bars per period of each system); length: bars per system; noise:
    observation noise as a share of each channel's std; chain: the preset of every stage of
    the pipeline each system goes through (tokenize -> train-jepa -> train-cfm -> multiverse
    futures-only); interval_seconds: the bar interval of the synthetic clock (1 bar per
    hour: a time unit for the artifacts only, exponents are compared per period); seed:
    initial noise of the stochastic controls and of the observation noise."""

    systems: tuple[str, ...] = SYSTEMS
    points_per_period: int = POINTS_PER_PERIOD
    length: int = 3000
    noise: float = 0.0
    chain: str = "bench"
    interval_seconds: int = 3600
    seed: int = 0

    def __post_init__(self):
        checks = [
            (len(self.systems) >= 1, "systems", "systems must name at least one system"),
            (len(set(self.systems)) == len(self.systems), "systems", "systems must not repeat a name"),
            (4 <= self.points_per_period <= 200, "points_per_period",
             f"points_per_period must be between 4 and 200, got {self.points_per_period}"),
            (self.length >= 500, "length", f"length must be at least 500 bars, got {self.length}"),
            (0 <= self.noise < 10, "noise",
             f"noise must be in [0, 10) (a share of each channel's std), got {self.noise}"),
            (self.interval_seconds >= 1, "interval_seconds", "interval_seconds must be >= 1"),
        ]
        for ok, field, message in checks:
            if not ok:
                raise ConfigError(message, field=field)


PRESETS: dict[str, dict] = {
    "bench": {},
    # the test subset through the debug chain: seconds per system, estimates meaningless
    "debug": {"systems": list(SUBSET), "length": 1200, "chain": "debug"},
}
