"""Multiverse Crossing: M geodesic perturbations of each state on the representation
sphere, futures and decisions per universe, and whether decisions survive them
(`crossing.py` holds the canonical definitions; the stage is `stage.py`, what it records
`artifact.py`)."""

from strates.multiverse.config import PRESETS, Config
from strates.multiverse.stage import STAGE, run

__all__ = ["PRESETS", "STAGE", "Config", "run"]
