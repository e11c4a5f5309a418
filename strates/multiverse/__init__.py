"""Multiverse Crossing: M geodesic perturbations of each state on the representation
sphere, futures and decisions per universe, and whether decisions survive them
(`crossing.py` holds the canonical definitions; the stage is `stage.py`, the futures alone
without an agent `futures.py`, what they record `artifact.py`)."""

from strates.multiverse.config import PRESETS, Config
from strates.multiverse.futures import FUTURES_STAGE, agent_cfm, run_futures
from strates.multiverse.stage import STAGE, run

__all__ = ["FUTURES_STAGE", "PRESETS", "STAGE", "Config", "agent_cfm", "run", "run_futures"]
