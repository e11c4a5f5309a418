"""`chaos train-agent` end to end with the debug presets on a small embedded dataset."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.agent import PRESETS, STAGE, Config, run
from strates.agent.artifact import STRATEGIES, load, read, tables
from strates.agent.stage import evaluation_periods
from strates.core import artifacts
from strates.core.config import apply_overrides, merge_presets, to_dict
from strates.core.errors import ConfigError
from strates.data.split import Fold, Period

pytestmark = pytest.mark.xdist_group("pipeline")

DEBUG = merge_presets(Config(), PRESETS, ["debug"])
COSTS = (0.0, 5.0, 10.0, 20.0)


@pytest.fixture(scope="module")
def trained(debug_pipeline):
    ws, out = debug_pipeline
    return ws, run(DEBUG, ws, cfm=out["cfm"].id)  # reused: the pipeline built it with the same config


def test_agent_backtest_against_baselines_at_every_cost(trained):
    ws, result = trained
    m = result.manifest
    assert m.stage == "agent" and set(m.parents) == {"cfm", "jepa", "tokens", "dataset"}
    agent = load(ws, m.id)  # read back from the workspace, typed
    assert agent.metrics == read(m).metrics and agent.summary == read(m).summary
    test = agent.backtest("test")
    assert test.bars == 60 and test.assets == 2 and not test.absent  # debug caps the period at 60 bars
    assert test.seed == DEBUG.train.seed + 100
    assert {(r.strategy, r.cost_bps) for r in test.rows} == {(s, c) for s in STRATEGIES for c in COSTS}
    for strategy in STRATEGIES:
        rows = test.strategy(strategy)
        assert [r.cost_bps for r in rows] == list(COSTS)
        for r in rows:
            assert all(np.isfinite(v) for v in dataclasses.astuple(r)[2:])
            assert 0 <= r.max_drawdown < 1 and 0 <= r.hit_rate <= 1 and 0 <= r.dsr <= 1
        # the same positions at every cost: turnover equal, and PnL falls as costs rise
        assert len({r.turnover for r in rows}) == 1
        totals = [r.total_return for r in rows]
        assert totals == sorted(totals, reverse=True)
    assert test.row("buy_and_hold", 0).turnover == pytest.approx(1 / 60)  # one entry, then held
    # every upstream fitted range is recorded, and the agent's own training period
    assert {s.split("/")[0] for s in agent.summary.upstream_fitted} >= {"tokenizer", "jepa", "cfm"}
    assert {s.split("/")[0] for s in agent.summary.upstream_selected} >= {"jepa"}
    assert agent.fitted.end <= test.span.start
    assert agent.summary.trials.n_trials == agent.summary.n_trials >= 1 and agent.summary.periods_per_year > 0
    assert agent.has_walk
    # the tables the CLI and the report show: one per period, a row per strategy and cost
    shown = tables(agent)
    assert len(shown) == len(agent.periods) + bool(agent.summary.skipped)
    assert len(shown[0].rows) == len(STRATEGIES) * len(COSTS) and shown[0].title.startswith("test ")


def test_positions_and_equity_files_agree_with_the_table(trained):
    ws, result = trained
    m = result.manifest
    folder = f"agent/{m.id}"
    positions = pl.read_parquet(ws.local_path(f"{folder}/positions.parquet"))
    equity = pl.read_parquet(ws.local_path(f"{folder}/equity.parquet"))
    assert set(positions["strategy"].unique()) == set(STRATEGIES)
    assert np.abs(positions["position"].to_numpy()).max() <= 1.0
    agent = positions.filter(pl.col("strategy") == "agent")
    assert agent.height == 60 * 2 and agent["position"].to_numpy().std() > 0  # the agent does trade
    curve = equity.filter((pl.col("strategy") == "agent") & (pl.col("cost_bps") == 5.0)).sort("ts")
    assert curve.height == 60
    np.testing.assert_allclose(curve["equity"].to_numpy()[-1] - 1.0,
                               read(m).backtest("test").row("agent", 5).total_return, rtol=1e-9)
    # hand accounting of the agent's PnL at 5 bps from the positions file, in simple
    # returns (next_return is the log return of the bar the position is held over)
    by_asset = []
    for _, g in agent.sort("ts").group_by("asset", maintain_order=True):
        p, r = g["position"].to_numpy(), g["next_return"].to_numpy()
        by_asset.append(p * (np.exp(r) - 1) - 5e-4 * np.abs(np.diff(np.concatenate([[0.0], p]))))
    np.testing.assert_allclose(np.mean(by_asset, axis=0), curve["pnl"].to_numpy(), atol=1e-12)
    np.testing.assert_allclose(np.cumprod(1 + np.mean(by_asset, axis=0)), curve["equity"].to_numpy(), rtol=1e-12)


def test_leakage_guard_refuses_a_period_the_models_were_fitted_on(trained):
    ws, result = trained
    train = result.manifest.fitted["train"]
    period = f"{train['start'].date()},{(train['start'] + dt.timedelta(days=10)).date()}"
    before = {m.id for m in artifacts.list_artifacts(ws, "agent")}
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-agent", "--preset", "debug", "--period", period])
    assert res.exit_code == 2
    assert "overlaps data the models were fitted on" in res.stderr and "tokenizer/" in res.stderr
    assert {m.id for m in artifacts.list_artifacts(ws, "agent")} == before
    assert not artifacts.leftovers(ws)
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-agent", "--preset", "debug", "--period",
                                   "2024-13-01,x"])
    assert res.exit_code == 2 and "backtest.period" in res.stderr


def test_reuse_and_cli_json(trained):
    ws, result = trained
    res = CliRunner().invoke(app, ["--workspace", ws.url, "--json", "train-agent", "--preset", "debug"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["reused"] and out["ref"] == result.manifest.ref
    assert [b["name"] for b in out["metrics"]["backtest"]] == [b.name for b in read(result.manifest).periods]
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-agent", "--preset", "debug"], catch_exceptions=False)
    assert res.exit_code == 0 and "max drawdown" in res.stdout and f"reused {result.manifest.ref}" in res.stdout
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-agent", "--preset", "debug", "--cvar-alpha", "1.5"])
    assert res.exit_code == 2 and "planner.cvar_alpha" in res.stderr


def test_an_invalid_choice_exits_2_listing_the_valid_ones(tmp_path):
    for args in (["--planner", "mpi"], ["--set", "loss.uncertainty=ensemble"]):
        res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "train-agent", "--preset", "debug", *args])
        assert res.exit_code == 2, res.output
        assert "mppi, policy" in res.stderr or "none, q_ensemble" in res.stderr


def test_the_artifact_id_is_that_of_the_resolved_config(trained):
    _, result = trained
    m = result.manifest
    assert m.id == artifacts.artifact_id("agent", to_dict(STAGE.configure(["debug"])), m.parents)


def test_policy_planner_and_trials_count_for_the_deflated_sharpe(trained):
    ws, first = trained
    config = apply_overrides(DEBUG, ["planner.kind=policy", "train.steps=20"])
    second = read(run(config, ws, cfm=first.manifest.parents["cfm"]).manifest)
    assert second.summary.planner == "policy"
    assert second.summary.n_trials >= 2  # the first agent on this cfm counts as a trial
    test = second.backtest("test")
    # buy-and-hold does not depend on the agent's configuration
    assert test.row("buy_and_hold", 5).sharpe == read(first.manifest).backtest("test").row("buy_and_hold", 5).sharpe
    # more trials raise the bar the agent's Sharpe must clear
    assert test.row("agent", 5).sr0_annual > 0


def test_walk_forward_folds_are_backtested_unless_a_model_saw_them():
    day = lambda d: dt.datetime(2024, 1, d, tzinfo=dt.UTC)  # noqa: E731
    span = lambda a, b: Period(day(a), day(b))  # noqa: E731
    folds = [Fold(f"wf{k}", span(1, 10 + 4 * k), span(10 + 4 * k, 12 + 4 * k), span(12 + 4 * k, 14 + 4 * k))
             for k in range(3)]
    fitted = [artifacts.Manifest(stage="cfm", id="0" * 16, created=dt.datetime.now(dt.UTC), config={}, parents={},
                                 files={}, metrics={}, summary={}, fitted={"train": span(1, 14).to_dict()}, version="")]
    periods, skipped = evaluation_periods(DEBUG, folds, folds[1], fitted)  # fitted on fold wf1's train period
    assert [p.name for p in periods] == ["test", "test:wf2"]
    assert [s.fold for s in skipped] == ["wf0"]  # its test days 12-14 were training data


def test_planning_beyond_the_futures_is_refused_before_training(trained):
    ws, result = trained
    before = {m.id for m in artifacts.list_artifacts(ws, "agent")}
    with pytest.raises(ConfigError, match=r"planner\.horizon 6 is longer than the cfm futures"):
        run(apply_overrides(DEBUG, ["planner.horizon=6"]), ws, cfm=result.manifest.parents["cfm"])
    assert {m.id for m in artifacts.list_artifacts(ws, "agent")} == before and not artifacts.leftovers(ws)
