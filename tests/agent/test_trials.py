"""The trial census behind the deflated Sharpe ratio: every configuration tried on the
dataset is counted (leaves of the artifact tree, agents, two per multiverse), trial Sharpes
are taken at the row's own cost level, and the candidate's own Sharpe is in the variance."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from strates.agent import Config, backtest, metrics
from strates.agent.artifact import Backtest, Metrics, Performance, Summary, Trials
from strates.agent.config import PlannerKind
from strates.agent.trials import census
from strates.core import artifacts
from strates.core.config import to_dict
from strates.core.workspace import Workspace
from strates.data.split import Period
from strates.multiverse import Config as MvConfig
from strates.multiverse import artifact as mv

SPAN = Period(dt.datetime(2024, 1, 1, tzinfo=dt.UTC), dt.datetime(2024, 1, 2, tzinfo=dt.UTC))
TRIALS = Trials(1, {"candidate": ("x",)})


def publish(ws, stage, aid, parents, *, metrics_=None, summary=None, config=None):
    w = artifacts.begin(ws, stage, aid)
    w.write_bytes("x.txt", aid.encode())
    return w.commit(config=config or {"id": aid}, parents=parents, metrics=metrics_ or {}, summary=summary or {})


def row(strategy: str, cost: float, sharpe: float) -> Performance:
    return Performance(strategy, cost, total_return=0.0, annual_return=0.0, annual_vol=0.0, sharpe=sharpe, sortino=0.0,
                       max_drawdown=0.0, turnover=0.0, hit_rate=0.0, dsr=0.0, sr0_annual=0.0, bars=24)


def publish_agent(ws, aid, parents, sharpes: dict[float, float], *, ppy: float):
    """An agent manifest as `train-agent` writes it, with the agent's Sharpe per cost level."""
    test = Backtest("test", SPAN, bars=24, assets=1, seed=0, rows=tuple(row("agent", c, s) for c, s in sharpes.items()))
    summary = Summary(fold="f", planner=PlannerKind.MPPI, cost_bps=5.0, cvar_alpha=0.2, n_trials=1, trials=TRIALS,
                      periods_per_year=ppy, transitions=1, futures_per_state=1, ret_scale=0.01, small_trader="-",
                      accounting="-")
    return publish(ws, "agent", aid, parents, metrics_=to_dict(Metrics((test,))), summary=to_dict(summary),
                   config=to_dict(Config()))


def publish_multiverse(ws, aid, parents, rows: tuple[Performance, ...], *, ppy: float):
    """A multiverse manifest as `chaos multiverse` writes it, with the given comparison rows."""
    d = mv.Distribution(*[0.0] * 9)
    metrics_ = mv.Metrics(
        universes=2, sigma=0.02, futures=4, horizon=4, threshold=2 / 3, period=mv.Crossed("test", SPAN, 24),
        decision_times=mv.DecisionTimes(24, 24, True, SPAN.start, SPAN.end), decisions=24, contested=0,
        contested_share=0.0, interval_seconds=3600.0, lyapunov_per_bar=0.0, lyapunov_per_time=0.0,
        lyapunov_floor=0.0, sensitivity=0.0, modes=1.0, distribution=mv.Distributions(d, d, d, d, d),
        noise_floor=mv.NoiseFloor(2, 0.0, 0.0, 0.0),
        replay=mv.Replay(0.0, 0.0), comparison=rows, verdict=())
    summary = mv.Summary(agent="agent/x", planner=PlannerKind.MPPI, band=0.1, periods_per_year=ppy, n_trials=1,
                         trials=TRIALS)
    return publish(ws, "multiverse", aid, parents, metrics_=to_dict(metrics_), summary=to_dict(summary),
                   config=to_dict(MvConfig()))


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
    publish_agent(ws, "a1" * 8, chain, {0.0: 2.0, 5.0: 1.0}, ppy=4.0)
    publish_multiverse(ws, "m1" * 8, {**chain, "agent": "a1" * 8},
                       (row("deterministic", 5.0, 1.0), row("filtered", 5.0, 0.5), row("sized", 5.0, -0.5)), ppy=4.0)
    publish_agent(ws, "a9" * 8, {"dataset": "e" * 16}, {5.0: 9.0}, ppy=4.0)
    c = census(ws, "d" * 16, candidate="a2" * 8, chain=chain)
    assert c.counted == {"candidate": ["a2" * 8], "agent": ["a1" * 8], "multiverse": ["m1" * 8],
                         "tokenizer": ["t2" * 8], "jepa": ["j2" * 8]}
    assert c.n_trials == 1 + 1 + 2 + 1 + 1
    # per-bar Sharpes (annualised / sqrt(ppy)), per cost level
    assert c.sharpes == {0.0: [1.0], 5.0: [0.5, 0.25, -0.25]}  # not the multiverse's deterministic row
    assert c.trials() == Trials(6, {"agent": ("a1" * 8,), "candidate": ("a2" * 8,), "jepa": ("j2" * 8,),
                                    "multiverse": ("m1" * 8,), "tokenizer": ("t2" * 8,)})
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
    rows, pnls = backtest.evaluate({"agent": pos}, r, valid, cost_levels=(0.0, 5.0), periods_per_year=252,
                                   n_trials={"agent": 3}, trial_sharpes={0.0: [0.01], 5.0: [-0.02, 0.03]})
    assert [(x.strategy, x.cost_bps) for x in rows] == [("agent", 0.0), ("agent", 5.0)]
    for cost, others in ((0.0, [0.01]), (5.0, [-0.02, 0.03])):
        own = metrics.sharpe(pnls["agent"][cost], periods_per_year=1.0)
        want = metrics.deflated_sharpe(pnls["agent"][cost], n_trials=3, trial_sharpes=[*others, own])["dsr"]
        assert next(x for x in rows if x.cost_bps == cost).dsr == pytest.approx(want)
    # without the candidate's own Sharpe, a single other trial would fall back to the null variance
    own = metrics.sharpe(pnls["agent"][0.0], periods_per_year=1.0)
    with_own = metrics.deflated_sharpe(pnls["agent"][0.0], n_trials=3, trial_sharpes=[0.01, own])
    assert with_own["variance_source"] == "trials"
    assert with_own["variance"] == pytest.approx(np.var([0.01, own], ddof=1))
    assert math.isfinite(float(with_own["dsr"]))
