"""Strate IV: a TD-MPC2-style agent planning with MPPI on the CVaR of sampled futures.

`chaos train-agent` trains it offline on the training period (`train.py`, networks in
`model.py`), plans over Strate III's futures (`planner.py`, `policy.py`) in the trading
environment (`env.py`), and backtests it walking forward against baselines after costs
(`backtest.py`, `metrics.py`); the stage is `stage.py`, what it records and what the next
stage loads from it `artifact.py`.
"""

from strates.agent.config import PRESETS, Config
from strates.agent.stage import STAGE, run

__all__ = ["PRESETS", "STAGE", "Config", "run"]
