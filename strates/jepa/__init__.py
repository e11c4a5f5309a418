"""Strate II: a Mamba-2 (SSD) JEPA over token sequences, with VICReg and macro cross-attention.

`chaos train-jepa` fits it on a tokens artifact's training period (`stage.py`, training in
`train.py`); the model is in `model.py`/`mamba2.py`, the objective in
`jepa_loss.py`/`vicreg.py`, the data windows in `data.py`, the diagnostics in `probe.py`,
the typed artifact (and the loader later stages use) in `artifact.py`, the dry-run plan in
`plan.py`.
"""

from strates.jepa.config import PRESETS, Config
from strates.jepa.stage import STAGE, run

__all__ = ["PRESETS", "STAGE", "Config", "run"]
