"""The trial census behind the deflated Sharpe ratio: every configuration tried on the
dataset is counted (leaves of the artifact tree, agents, two per multiverse), trial Sharpes
are taken at the row's own cost level, and the candidate's own Sharpe is in the variance."""

from __future__ import annotations

import math

import numpy as np
import pytest

from strates.agent import backtest, metrics
from strates.agent.trials import census
from strates.core import artifacts
from strates.core.workspace import Workspace


def publish(ws, stage, aid, parents, *, metrics_=None, summary=None):
    w = artifacts.begin(ws, stage, aid)
    w.write_bytes("x.txt", aid.encode())
    return w.commit(config={"id": aid}, parents=parents, metrics=metrics_ or {}, summary=summary or {})


def table(sharpes: dict[str, float]) -> dict:
    return {"backtest": {"test": {"table": {"agent": {k: {"sharpe": v} for k, v in sharpes.items()}}}}}


def test_census_counts_every_configuration_on_the_dataset(tmp_path):
    ws = Workspace(tmp_path / "ws")
    d = {"dataset": "d" * 16}
    publish(ws, "dataset", "d" * 16, {})
    publish(ws, "dataset", "e" * 16, {})  # another dataset: nothing on it counts
    publish(ws, "tokenizer", "t1" * 8, d)
    publish(ws, "tokenizer", "t2" * 8, d)  # tried and dropped
    publish(ws, "tokens", "k1" * 8, {**d, "tokenizer": "t1" * 8})
    publish(ws, "jepa", "j1" * 8, {**d, "tokens": "k1" * 8})
    publish(ws, "jepa", "j2" * 8, {**d, "tokens": "k1" * 8})  # dropped before a cfm
    publish(ws, "cfm", "c1" * 8, {**d, "tokens": "k1" * 8, "jepa": "j1" * 8})
    chain = {**d, "tokens": "k1" * 8, "jepa": "j1" * 8, "cfm": "c1" * 8}
    publish(ws, "agent", "a1" * 8, chain, metrics_=table({"0bps": 2.0, "5bps": 1.0}), summary={"periods_per_year": 4.0})
    publish(ws, "multiverse", "m1" * 8, {**chain, "agent": "a1" * 8},
            metrics_={"comparison": {"filtered": {"5bps": {"sharpe": 0.5}}, "sized": {"5bps": {"sharpe": -0.5}}}},
            summary={"periods_per_year": 4.0})
    publish(ws, "agent", "a9" * 8, {"dataset": "e" * 16}, metrics_=table({"5bps": 9.0}),
            summary={"periods_per_year": 4.0})
    c = census(ws, "d" * 16, candidate="a2" * 8, chain=chain)
    assert c.counted == {"candidate": ["a2" * 8], "agent": ["a1" * 8], "multiverse": ["m1" * 8],
                         "tokenizer": ["t2" * 8], "jepa": ["j2" * 8]}
    assert c.n_trials == 1 + 1 + 2 + 1 + 1
    # per-bar Sharpes (annualised / sqrt(ppy)), per cost level
    assert c.sharpes == {"0bps": [1.0], "5bps": [0.5, 0.25, -0.25]}
    assert c.to_dict()["n_trials"] == 6
    # a multiverse candidate counts its two policies; its agent is counted as an agent
    m = census(ws, "d" * 16, candidate="m2" * 8, chain={**chain, "agent": "a1" * 8}, extra=("filtered", "sized"))
    assert m.counted["candidate"] == ["m2" * 8 + ":filtered", "m2" * 8 + ":sized"]
    assert m.n_trials == 2 + 1 + 2 + 1 + 1


def test_the_candidates_own_sharpe_is_in_the_trial_variance():
    rng = np.random.default_rng(0)
    t_len = 300
    r = rng.normal(0.0005, 0.01, (t_len, 1))
    pos = np.ones((t_len, 1))
    valid = np.ones((t_len, 1), bool)
    table_, pnls = backtest.evaluate({"agent": pos}, r, valid, cost_levels=(0.0, 5.0), periods_per_year=252,
                                     n_trials={"agent": 3}, trial_sharpes={"0bps": [0.01], "5bps": [-0.02, 0.03]})
    for key, others in (("0bps", [0.01]), ("5bps", [-0.02, 0.03])):
        own = metrics.sharpe(pnls["agent"][key], periods_per_year=1.0)
        want = metrics.deflated_sharpe(pnls["agent"][key], n_trials=3, trial_sharpes=[*others, own])["dsr"]
        assert table_["agent"][key]["dsr"] == pytest.approx(want)
    # without the candidate's own Sharpe, a single other trial would fall back to the null variance
    own = metrics.sharpe(pnls["agent"]["0bps"], periods_per_year=1.0)
    with_own = metrics.deflated_sharpe(pnls["agent"]["0bps"], n_trials=3, trial_sharpes=[0.01, own])
    assert with_own["variance_source"] == "trials"
    assert with_own["variance"] == pytest.approx(np.var([0.01, own], ddof=1))
    assert math.isfinite(with_own["dsr"])
