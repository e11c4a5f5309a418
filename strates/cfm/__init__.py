"""Strate III: optimal-transport conditional flow matching of futures given the JEPA state.

`chaos train-cfm` draws N futures (the next H JEPA states and H log returns) per state;
couplings in `ot.py`, the vector field in `model.py`, ODE sampling in `sample.py`, scores
and baselines in `metrics.py`/`baselines.py`, the stage in `stage.py`, the typed artifact
(and the flow loader later stages use) in `artifact.py`.
"""

from strates.cfm.config import PRESETS, Config
from strates.cfm.stage import STAGE, run

__all__ = ["PRESETS", "STAGE", "Config", "run"]
