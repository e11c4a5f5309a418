"""The World Models family (Ha & Schmidhuber 2018): V, a VAE over windows of per-bar
features (`vae.py`); M, an MDN-RNN over latents and actions that also predicts the next
return (`mdn.py`); C, a linear controller searched by CMA-ES in M's dreams (`controller.py`,
`search.py`). `chaos train-worldmodels` (`stage.py`, recorded in `artifact.py`) trains and
backtests them; `chaos dream` (`dream.py`) hallucinates markets and compares their stylised
facts (`facts.py`) with the real ones; the latents' regimes are in `regimes.py`.
"""

from strates.worldmodels.config import PRESETS, Config
from strates.worldmodels.stage import STAGE, run

__all__ = ["PRESETS", "STAGE", "Config", "run"]
