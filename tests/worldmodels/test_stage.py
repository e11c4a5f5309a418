"""`chaos train-worldmodels` and `chaos dream` end to end on a copy of the debug pipeline's
workspace (so the league table has the TD-MPC2 agent beside it, and the shared workspace is
left as it was)."""

from __future__ import annotations

import io
import math
import shutil

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core import artifacts
from strates.core.workspace import Workspace
from strates.data.split import Period
from strates.worldmodels import STAGE
from strates.worldmodels import artifact as wm_artifact
from strates.worldmodels import dream as dream_stage
from strates.worldmodels import run as train_worldmodels

pytestmark = [pytest.mark.xdist_group("pipeline"), pytest.mark.slow]


@pytest.fixture(scope="module")
def built(debug_pipeline, tmp_path_factory):
    src_ws, parents = debug_pipeline
    root = tmp_path_factory.mktemp("worldmodels") / "ws"
    shutil.copytree(src_ws.path(), root)
    ws = Workspace(root)
    wm = train_worldmodels(STAGE.configure(["debug"]), ws).manifest
    dr = dream_stage.run(dream_stage.STAGE.configure(["debug"]), ws, worldmodels=wm).manifest
    return ws, parents, wm, dr


def test_fitted_on_train_selected_on_validation_evaluated_after(built):
    _, _, m, _ = built
    wm = wm_artifact.read(m)
    train, val = wm.span("train"), wm.span("validation", use="selected")
    test = wm.backtest("test")
    assert train.end <= val.start and val.end <= test.span.start
    strategies = {r.strategy for r in test.rows}
    assert strategies == set(wm_artifact.STRATEGIES)
    assert {r.cost_bps for r in test.rows} == set(wm.config.backtest.cost_levels)
    assert all(math.isfinite(r.sharpe) and 0.0 <= r.dsr <= 1.0 for r in test.rows)
    # every cost level's Sharpe of the controller carries its bootstrap interval
    costs = wm.config.backtest.cost_levels
    assert {(x.period, x.cost_bps) for x in wm.metrics.intervals} == {("test", c) for c in costs}
    for x in wm.metrics.intervals:
        assert x.interval.sharpe == pytest.approx(test.row(wm_artifact.STRATEGY, x.cost_bps).sharpe, abs=1e-9)
        assert x.interval.lo <= x.interval.sharpe <= x.interval.hi
    # the agent of the copied workspace is counted as a trial: the DSR deflates for it
    assert wm.summary.n_trials >= 2 and "agent" in wm.summary.trials.counted


def test_controller_is_the_best_search_mean_on_validation(built):
    ws, _, m, _ = built
    wm = wm_artifact.read(m)
    sel = wm.summary.selection
    best = max(sel, key=lambda x: x.validation_sharpe)
    assert (wm.summary.selected_generation, wm.summary.selected_phase) == (best.generation, best.phase)
    models = wm_artifact.load_models(ws, wm)
    with np.load(io.BytesIO(ws.read_bytes(f"worldmodels/{wm.id}/controller.npz"))) as z:
        np.testing.assert_array_equal(z["means"][best.generation - 1], models.theta)
    search = pl.read_parquet(ws.path(f"worldmodels/{wm.id}/search.parquet"))
    assert search.height == wm.config.controller.generations
    assert search["validation_sharpe"].drop_nulls().len() == len(sel)


def test_heldout_losses_and_regimes_recorded(built):
    ws, _, m, _ = built
    wm = wm_artifact.read(m)
    h = wm.summary.heldout
    assert all(math.isfinite(x) for x in (h.vae_loss, h.vae_recon, h.vae_kl, h.mdn_nll_z, h.mdn_nll_reward))
    r = wm.summary.regimes
    assert 1 <= r.k <= wm.config.regimes.k_max and len(r.bic) == wm.config.regimes.k_max
    assert r.k == int(np.argmin(r.bic)) + 1
    matrix = np.asarray(r.transitions)
    assert matrix.shape == (r.k, r.k)
    np.testing.assert_allclose(matrix.sum(1)[matrix.sum(1) > 0], 1.0, atol=1e-9)
    frame = wm_artifact.load_regimes(ws, wm)
    bars = pl.read_parquet(ws.path(f"dataset/{m.parents['dataset']}/bars.parquet"))
    assert frame.height == bars.height and int(frame["regime"].to_numpy().max()) < r.k
    assert sum(s.share for s in r.stats) == pytest.approx(1.0)


def test_dream_bars_are_valid_ohlcv_and_ingest(built, tmp_path):
    ws, _, _, d = built
    dr = dream_stage.read(d)
    bars = pl.read_parquet(ws.path(f"dream/{dr.id}/bars.parquet"))
    cfg = dr.config
    assert bars.height == cfg.paths * cfg.length and bars["asset"].n_unique() == cfg.paths
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert np.all(np.isfinite(c)) and np.all(c > 0) and np.all(bars["volume"].to_numpy() >= 0)
    assert np.all(h >= np.maximum(o, c) - 1e-12) and np.all(lo <= np.minimum(o, c) + 1e-12)
    steps = bars.filter(pl.col("asset") == "dream-00000")["ts"].diff().drop_nulls().dt.total_seconds().unique()
    assert steps.to_list() == [dr.summary.interval_seconds]
    s = dr.summary
    assert s.real.paths >= 1 and s.dreamed.paths == cfg.paths and len(s.dreamed.acf_abs) == len(cfg.lags)
    # the dreamed bars are a file `chaos ingest` reads like any other
    res = CliRunner().invoke(app, ["ingest", "--source", ws.path(f"dream/{dr.id}/bars.parquet"),
                                   "--workspace", str(tmp_path / "ws2"), "--json"])
    assert res.exit_code == 0, res.output


def test_dream_is_reused_for_the_same_inputs_and_differs_by_seed(built):
    ws, _, m, d = built
    again = dream_stage.run(dream_stage.STAGE.configure(["debug"]), ws, worldmodels=m)
    assert again.reused and again.manifest.id == d.id
    other = dream_stage.run(dream_stage.STAGE.configure(["debug"], ["seed=1"]), ws, worldmodels=m).manifest
    a = pl.read_parquet(ws.path(f"dream/{d.id}/bars.parquet"))["close"].to_numpy()
    b = pl.read_parquet(ws.path(f"dream/{other.id}/bars.parquet"))["close"].to_numpy()
    assert other.id != d.id and not np.array_equal(a, b)


def test_transfer_compares_against_scratch_and_finetunes_on_real_bars(built):
    ws, _, m, _ = built
    quick = ["vae.train.steps=10", "mdn.train.steps=10", "controller.generations=1", "controller.select_every=1",
             "regimes.k_max=1", "controller.finetune_generations=2"]
    res = train_worldmodels(STAGE.configure(["debug"], quick), ws, init_from=m.id)
    summary = wm_artifact.read(res.manifest).summary
    phases = [x.phase for x in summary.selection]
    assert phases == ["dream", "finetune", "finetune"]  # the fine-tuned means were tested on validation too
    tuned = max(x.validation_sharpe for x in summary.selection[1:])
    assert summary.selected_phase == ("finetune" if tuned > summary.selection[0].validation_sharpe else "dream")
    t = summary.transfer
    assert t is not None and t.source == m.ref
    assert math.isfinite(t.transferred.vae_loss) and math.isfinite(t.scratch.vae_loss)
    assert res.manifest.config["init_from"] == m.id
    bad = STAGE.configure(["debug"], ["vae.latent=5"])
    with pytest.raises(Exception, match="other V/M sizes"):
        train_worldmodels(bad, ws, init_from=m.id)
    assert not any(a.stage == "worldmodels" and a.config.get("vae", {}).get("latent") == 5
                   for a in artifacts.list_artifacts(ws))


def test_league_table_sets_the_families_side_by_side(built, debug_pipeline):
    from strates.agent import artifact as agent_artifact
    from strates.report.config import Config as ReportConfig
    from strates.report.sources import Sources, latest_worldmodels
    from strates.report.stage import STAGE as REPORT
    from strates.report.worldmodels import league, section

    ws, parents, m, d = built
    wm_id, dream_id = latest_worldmodels(ws, parents["dataset"].id)
    latest = max((a for a in artifacts.list_artifacts(ws) if a.stage == "worldmodels"), key=lambda a: a.created)
    assert wm_id == latest.id and dream_id == (d.id if latest.id == m.id else "")
    # `chaos report` (and `chaos run`) name the most recent World Models in the report's config, hence its id
    assert REPORT.discover is not None
    found = REPORT.discover(ReportConfig(), {"dataset": parents["dataset"]}, ws)
    assert (found.worldmodels, found.dream) == (wm_id, dream_id)
    assert REPORT.discover(ReportConfig(worldmodels="none"), {"dataset": parents["dataset"]}, ws).worldmodels == "none"
    # without World Models on the dataset the config, hence the report's id, is unchanged
    assert REPORT.discover(ReportConfig(), {"dataset": parents["dataset"]}, debug_pipeline[0]) == ReportConfig()
    src = Sources(ws, ReportConfig(), agent=agent_artifact.read(parents["agent"]),
                  worldmodels=wm_artifact.load(ws, m.id), dream=dream_stage.read(d))
    lt = league(src)
    assert lt is not None
    families = [row[0] for row in lt.rows]
    assert "TD-MPC2 agent" in families and "World Models" in families
    wm_rows = [row for row in lt.rows if row[0] == "World Models"]
    assert all(row[-1] != "–" for row in wm_rows)  # a paired interval against the agent on the same bars
    sec = section(src)
    assert any(getattr(b, "name", "") == "worldmodels-regimes" for b in sec.blocks)
    # a pipeline report gains the section only when it has a World Models artifact
    from strates.report.stage import SECTION_IDS, compose

    with_wm = compose(src, report_id="x", report_config={})
    assert [s.id for s in with_wm.sections][-2:] == ["worldmodels", "provenance"]
    without = compose(Sources(ws, ReportConfig()), report_id="x", report_config={})
    assert [s.id for s in without.sections] == list(SECTION_IDS)
    assert isinstance(wm_artifact.read(m).backtest("test").span, Period)
