"""Strate III: optimal-transport conditional flow matching of futures given the JEPA state.

`chaos train-cfm` draws N futures (the next H JEPA states and H log returns) per state;
couplings in `ot.py`, the vector field in `model.py`, ODE sampling in `sample.py`, scores
and baselines in `metrics.py`/`baselines.py`, the stage in `stage.py`.
"""

from strates.cfm.config import PRESETS, Config
from strates.cfm.stage import run

__all__ = ["Config", "PRESETS", "run"]
