"""Strate I: per-bar features -> dilated causal CNN -> Finite Scalar Quantization (1024 codes).

`chaos tokenize` trains a tokenizer on a dataset fold's training period and writes each
bar's code (`tokens` artifact) for later stages. See `stage.py` for the two stages,
`artifact.py` for what they record and load, `features.py` for the features and their
normalisation, `model.py` and `quantize.py` for the model.
"""

from strates.fsq.config import PRESETS, Config
from strates.fsq.stage import TOKENIZER_STAGE, TOKENS_STAGE, run

__all__ = ["PRESETS", "TOKENIZER_STAGE", "TOKENS_STAGE", "Config", "run"]
