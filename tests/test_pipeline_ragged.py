"""A ragged panel through `chaos run` (the pipeline): one asset's history ends before the
test period, one starts late. Every stage runs; the absent asset is left out of the test
period's portfolio (never held flat) and the manifests and report say so."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from strates.agent import artifact as agent_artifact
from strates.core import artifacts
from strates.core.workspace import Workspace
from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec, simulate
from strates.multiverse import artifact as multiverse_artifact
from strates.pipeline import STAGES, run

pytestmark = pytest.mark.xdist_group("ragged")


@pytest.fixture(scope="module")
def ragged(tmp_path_factory):
    root = tmp_path_factory.mktemp("ragged")
    sim = simulate(EmbeddedSpec(assets=3, bars=900))
    paths = []
    for i, asset in enumerate(sim.assets):
        frame = sim.bars.filter(pl.col("asset") == asset).drop("asset")
        if i == 1:
            frame = frame.slice(90)  # starts late
        if i == 2:
            frame = frame.head(500)  # delisted: ends before validation
        path = root / f"{asset}.csv"
        frame.write_csv(path)
        paths.append(str(path))
    ws = Workspace(root / "ws")
    steps = run(ws, presets=["debug"], ingest_config=IngestConfig(sources=tuple(paths)))
    return ws, {s.stage: s for s in steps}, sim.assets


def test_every_stage_runs_and_the_absent_asset_is_left_out(ragged):
    ws, steps, assets = ragged
    assert list(steps) == list(STAGES)
    agent = artifacts.resolve(ws, steps["agent"].ref)
    test = agent_artifact.read(agent).backtest("test")
    assert test.assets == 2 and test.absent == (assets[2],)
    positions = pl.read_parquet(ws.local_path(f"{agent.stage}/{agent.id}/positions.parquet"))
    assert assets[2] not in positions.filter(pl.col("period") == "test")["asset"].unique().to_list()
    mv = artifacts.resolve(ws, steps["multiverse"].ref)
    assert multiverse_artifact.read(mv).summary.absent == (assets[2],)
    decisions = pl.read_parquet(ws.local_path(f"{mv.stage}/{mv.id}/decisions.parquet"))
    assert set(decisions["asset"].unique()) == set(assets[:2])
    report = artifacts.resolve(ws, steps["report"].ref)
    md = ws.read_bytes(f"{report.stage}/{report.id}/report.md").decode()
    assert f"no bars inside it): {assets[2]}" in md


def test_equity_is_the_mean_over_present_assets(ragged):
    ws, steps, _ = ragged
    agent = artifacts.resolve(ws, steps["agent"].ref)
    positions = pl.read_parquet(ws.local_path(f"{agent.stage}/{agent.id}/positions.parquet")).filter(
        (pl.col("period") == "test") & (pl.col("strategy") == "buy_and_hold"))
    equity = pl.read_parquet(ws.local_path(f"{agent.stage}/{agent.id}/equity.parquet")).filter(
        (pl.col("period") == "test") & (pl.col("strategy") == "buy_and_hold") & (pl.col("cost_bps") == 0.0))
    # at 0 bps buy-and-hold earns the mean simple return of the assets with a bar
    want = positions.group_by("ts").agg((pl.col("next_return").exp() - 1).mean().alias("r")).sort("ts")
    np.testing.assert_allclose(equity.sort("ts")["pnl"].to_numpy(), want["r"].to_numpy(), atol=1e-12)
