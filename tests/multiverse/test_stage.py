"""`chaos multiverse` end to end on the shared debug pipeline."""

from __future__ import annotations

import json

import jax
import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.agent.artifact import WALK, load_decider
from strates.agent.artifact import read as read_agent
from strates.core import artifacts
from strates.core.config import apply_overrides, merge_presets
from strates.multiverse import PRESETS, Config, agent_cfm, run, run_futures
from strates.multiverse.artifact import (
    FUTURES_KIND,
    GATED,
    METRICS,
    POLICIES,
    READINGS,
    futures_tables,
    load,
    load_futures,
    read,
    read_futures,
    tables,
)
from strates.multiverse.crossing import lyapunov_floor
from strates.multiverse.futures import evenly
from strates.multiverse.stage import decision_bars, latest_reading

pytestmark = pytest.mark.xdist_group("pipeline")

DEBUG = merge_presets(Config(), PRESETS, ["debug"])
BARS = 60  # the debug agent's test period (see conftest's debug pipeline)


def _read(ws, m, name):
    return pl.read_parquet(ws.local_path(f"multiverse/{m.id}/{name}"))


@pytest.fixture(scope="module")
def crossed(debug_pipeline):
    ws, out = debug_pipeline
    return ws, out, read(run(DEBUG, ws, agent=out["agent"].id).manifest)


def test_decision_times_span_the_whole_period():
    valid = np.ones((100, 2), bool)
    valid[:5] = False
    bars = decision_bars(valid, 10)
    assert len(bars) == 10 and bars[0] == 5 and bars[-1] == 99  # first to last bar, evenly spaced
    assert np.ptp(np.diff(bars)) <= 1
    np.testing.assert_array_equal(decision_bars(valid, 0), np.arange(5, 100))
    np.testing.assert_array_equal(latest_reading(np.array([2, 5]), 7), [-1, -1, 0, 0, 0, 1, 1])


def test_metrics_per_asset_and_time(crossed):
    ws, out, mv = crossed
    m = mv.metrics
    assert mv.manifest.parents["agent"] == out["agent"].id and m.universes == 4
    assert load(ws, mv.id) == read(mv.manifest)  # read back from the workspace, typed
    d = _read(ws, mv, "decisions.parquet")
    assert d.height == 24 * 2 and m.decisions == d.height
    times = m.decision_times
    assert times.count == 24 and times.of_bars == BARS and m.period.bars == BARS and not times.every
    assert times.last.replace(tzinfo=None) == d["ts"].max() and times.first.replace(tzinfo=None) == d["ts"].min()
    assert m.period.name == "test" and m.period.span == read_agent(out["agent"]).backtest("test").span
    u = m.universes + 1
    c = d["consensus"].to_numpy()
    assert ((c >= 1 / 3 - 1e-9) & (c <= 1)).all() and np.allclose(c * u, np.round(c * u))  # whole universes
    b = d["bifurcation"].to_numpy()
    assert ((b >= 0) & (b <= 1)).all() and np.allclose(b * (u - 1), np.round(b * (u - 1)))
    f = d["flip"].to_numpy()
    assert ((f >= 0) & (f <= 1)).all() and np.allclose(f * (u - 1), np.round(f * (u - 1)))
    floor = m.noise_floor
    assert floor.flip_rate == pytest.approx(f.mean()) and floor.above_floor == pytest.approx(b.mean() - f.mean())
    assert floor.bifurcation == pytest.approx(b.mean()) and floor.copies == m.universes
    lam, sens, modes = (d[k].to_numpy() for k in READINGS)
    assert np.isfinite(lam).all() and (sens >= 0).all() and (modes >= 1).all() and np.allclose(modes, np.round(modes))
    assert m.lyapunov_per_bar == pytest.approx(lam.mean()) and m.sensitivity == pytest.approx(sens.mean())
    assert m.modes == pytest.approx(modes.mean()) and m.horizon == 4
    assert m.interval_seconds == 3600 and m.lyapunov_per_time == pytest.approx(m.lyapunov_per_bar / 3600)
    assert m.lyapunov_floor == lyapunov_floor(m.sigma, m.horizon) < lam.min()  # the flow reads its condition
    assert (d["contested"].to_numpy() == (c < m.threshold)).all()
    assert m.contested == int(d["contested"].sum()) and m.contested_share == pytest.approx(d["contested"].mean())
    assert m.distribution.consensus.mean == pytest.approx(c.mean()) and [k for k, _ in m.distribution.items()] == list(
        METRICS)
    fans = _read(ws, mv, "fans.parquet")
    q = fans.select("q05", "q25", "q50", "q75", "q95").to_numpy()
    assert (np.diff(q, axis=1) >= -1e-12).all() and fans["step"].max() == 4  # the debug cfm horizon
    costs = (0.0, 5.0, 10.0, 20.0)
    assert {(r.strategy, r.cost_bps) for r in m.comparison} == {(p, c) for p in POLICIES for c in costs}
    assert all(r.bars == BARS for r in m.comparison)  # every bar, all policies
    assert {(v.policy, v.cost_bps) for v in m.verdict} == {(p, c) for p in GATED for c in costs}
    verdict = mv.verdict("filtered", 5).difference
    assert verdict.sharpe_lo <= verdict.sharpe_diff <= verdict.sharpe_hi
    assert verdict.shown == (verdict.sharpe_lo > 0 or verdict.sharpe_hi < 0)
    assert mv.summary.agent == out["agent"].ref and mv.summary.n_trials >= read_agent(out["agent"]).summary.n_trials
    # the tables the CLI and the report show
    shown = tables(mv)
    assert [len(t.rows) for t in shown] == [len(METRICS), 5, len(POLICIES) * len(costs), len(GATED) * len(costs)]


def test_universe_zero_is_the_agents_backtest(crossed):
    ws, out, mv = crossed
    assert mv.metrics.replay.max_abs_diff_backtest == 0.0
    assert mv.metrics.replay.universe0_batch_max_abs_diff < 1e-4
    eq = _read(ws, mv, "equity.parquet").filter((pl.col("strategy") == "deterministic") & (pl.col("cost_bps") == 5.0))
    agent_eq = pl.read_parquet(ws.local_path(f"agent/{out['agent'].id}/equity.parquet")).filter(
        (pl.col("strategy") == "agent") & (pl.col("cost_bps") == 5.0) & (pl.col("period") == "test"))
    np.testing.assert_array_equal(eq.sort("ts")["equity"].to_numpy(), agent_eq.sort("ts")["equity"].to_numpy())
    assert mv.row("deterministic", 5).sharpe == read_agent(out["agent"]).backtest("test").row("agent", 5).sharpe


def test_gated_policies_walk_from_their_own_positions(debug_pipeline):
    ws, out = debug_pipeline
    decider = load_decider(ws, out["agent"])
    rng = np.random.default_rng(0)
    t_len, a_len, d = 30, 2, decider.state_dim
    h = rng.standard_normal((t_len, a_len, d)).astype(np.float32)
    h /= np.linalg.norm(h, axis=-1, keepdims=True)
    k = decider.obs_dim - d - 1  # observations: the state, scale features, the log unit (a 1% volatility)
    h = np.concatenate([h, rng.standard_normal((t_len, a_len, k)).astype(np.float32) / np.sqrt(k),
                        np.full((t_len, a_len, 1), np.log(0.01), np.float32)], axis=-1)
    valid = np.ones((t_len, a_len), bool)
    key = jax.random.key(3)
    returns, values = decider.inputs(h, key=key)
    hold = rng.uniform(size=(t_len, a_len)) < 0.3
    w = decider.walk(h, valid, returns, values, key=key, hold=hold)
    np.testing.assert_array_equal(w.before[1:], w.positions[:-1])  # each bar plans from its own position
    np.testing.assert_array_equal(w.positions[hold], w.before[hold])  # held: no trade
    s = decider.walk(h, valid, returns, values, key=key, scale=np.full((t_len, a_len), 0.5))
    np.testing.assert_allclose(s.positions, np.clip(s.actions * 0.5, -1, 1))
    np.testing.assert_array_equal(s.before[1:], s.positions[:-1])


def test_sigma_zero_gives_trivial_metrics_end_to_end(crossed):
    # with shared random numbers, unperturbed universes draw the same futures and decide alike
    ws, out, _ = crossed
    mv = read(run(apply_overrides(DEBUG, ["sigma=0"]), ws, agent=out["agent"].id).manifest)
    d = _read(ws, mv, "decisions.parquet")
    assert (d["consensus"] == 1.0).all() and (d["bifurcation"] == 0.0).all()
    assert (d["lyapunov_per_bar"] == 0.0).all() and (d["sensitivity"] == 0.0).all()  # nothing perturbed, nothing read
    assert mv.metrics.contested == 0
    # nothing contested and consensus 1: the gated walks are the agent's walk, bar for bar
    assert mv.row("filtered", 5).total_return == mv.row("deterministic", 5).total_return
    assert mv.row("sized", 5).total_return == mv.row("deterministic", 5).total_return
    v = mv.verdict("filtered", 5)
    assert v.difference.sharpe_diff == 0.0 and not v.shown
    assert "No decision was contested" in tables(mv)[-1].caption


def test_cli_json_reuse_and_bad_input(crossed):
    ws, out, mv = crossed
    res = CliRunner().invoke(app, ["--workspace", ws.url, "--json", "multiverse", "--preset", "debug",
                                   "--agent", out["agent"].id], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["reused"] and got["ref"] == mv.ref and got["metrics"]["universes"] == 4
    res = CliRunner().invoke(app, ["--workspace", ws.url, "multiverse", "--preset", "debug", "--agent",
                                   out["agent"].id], catch_exceptions=False)
    assert res.exit_code == 0 and "verdicts" in res.stdout and f"reused {mv.ref}" in res.stdout
    assert "ΔSharpe" not in res.stdout and "Δ Sharpe" in res.stdout
    res = CliRunner().invoke(app, ["--workspace", ws.url, "multiverse", "--preset", "debug", "--universes", "0"])
    assert res.exit_code == 2 and "universes" in res.stderr
    res = CliRunner().invoke(app, ["--workspace", ws.url, "multiverse", "--agent", "ffffffff"])
    assert res.exit_code == 3


def test_an_agent_without_a_saved_walk_is_replayed_exactly(debug_pipeline, tmp_path):
    # an agent built before walks were saved (or backtested on a --period): the multiverse
    # replays its walk with the backtest's per-bar random streams; it must be the same walk
    import dataclasses
    import shutil

    from strates.core.workspace import Workspace

    ws, out = debug_pipeline
    copy = Workspace(tmp_path / "ws")
    shutil.copytree(ws.root, copy.root, dirs_exist_ok=True)
    am = artifacts.resolve(copy, out["agent"].id, stage="agent")
    old = dataclasses.replace(am, files={k: v for k, v in am.files.items() if k != WALK})
    copy.write_bytes(f"agent/{am.id}/manifest.toml", old.to_toml())
    copy.remove(f"agent/{am.id}/{WALK}")
    for m in artifacts.list_artifacts(copy, "multiverse"):
        copy.remove(f"multiverse/{m.id}")
    assert not read_agent(artifacts.resolve(copy, am.id, stage="agent")).has_walk
    mv = read(run(DEBUG, copy, agent=am.id).manifest)
    assert mv.metrics.replay.max_abs_diff_backtest == 0.0
    assert mv.metrics.replay.universe0_batch_max_abs_diff < 1e-4


# -- the futures alone -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def futures(debug_pipeline):
    ws, out = debug_pipeline
    return ws, out, read_futures(run_futures(DEBUG, ws, cfm=out["cfm"].id).manifest)


def test_futures_alone_over_the_test_period(futures):
    ws, out, fo = futures
    m, man = fo.metrics, fo.manifest
    assert man.stage == FUTURES_KIND and "agent" not in man.parents
    assert man.parents == {k: out[k].id for k in ("cfm", "jepa", "tokens", "dataset")}
    assert load_futures(ws, fo.id) == fo and fo.summary.cfm == out["cfm"].ref
    r = pl.read_parquet(ws.local_path(f"{FUTURES_KIND}/{fo.id}/readings.parquet"))
    assert r.height == m.decisions == sum(a.decisions for a in m.per_asset.values()) and m.assets == 2
    assert m.decision_times == 24 and all(a.decisions == 24 <= a.bars for a in m.per_asset.values())  # debug budget
    span = m.period.span
    assert span == read_agent(out["agent"]).backtest("test").span  # the fold's test period, as the agent's
    ts = r["ts"].to_numpy()
    assert (ts >= np.datetime64(span.start.replace(tzinfo=None))).all()
    assert (ts < np.datetime64(span.end.replace(tzinfo=None))).all()
    lam, sens, modes = (r[k].to_numpy() for k in READINGS)
    assert np.isfinite(lam).all() and (sens >= 0).all() and (modes >= 1).all()
    assert m.lyapunov_per_bar == pytest.approx(lam.mean()) and m.sensitivity == pytest.approx(sens.mean())
    assert m.modes == pytest.approx(modes.mean()) and m.interval_seconds == 3600
    assert m.lyapunov_per_time == pytest.approx(m.lyapunov_per_bar / 3600)
    np.testing.assert_allclose(r["lyapunov_per_time"].to_numpy(), lam / 3600)
    assert m.distribution.lyapunov_per_bar.mean == pytest.approx(m.lyapunov_per_bar)
    assert m.lyapunov_floor < m.distribution.lyapunov_per_bar.min  # the flow reads its condition
    assert m.futures == 8 and m.universes == 4 and m.horizon == 4  # the debug cfm's N and H
    for name, a in m.per_asset.items():
        mine = r.filter(pl.col("asset") == name)
        assert a.lyapunov_per_bar == pytest.approx(mine["lyapunov_per_bar"].mean())
    assert [len(t.rows) for t in futures_tables(fo)] == [len(READINGS), 2]


def test_evenly_spaced_decision_times():
    np.testing.assert_array_equal(evenly(np.arange(10, 20), 4), [10, 13, 16, 19])
    np.testing.assert_array_equal(evenly(np.arange(3), 4), np.arange(3))
    np.testing.assert_array_equal(evenly(np.arange(5), 0), np.arange(5))


def test_cli_futures_only(futures):
    ws, out, fo = futures
    base = ["--workspace", ws.url, "--json", "multiverse", "--preset", "debug"]
    for extra in (["--cfm", out["cfm"].id], ["--futures-only", "--agent", out["agent"].id]):
        res = CliRunner().invoke(app, [*base, *extra], catch_exceptions=False)
        assert res.exit_code == 0, res.stderr
        got = json.loads(res.stdout)
        assert got["reused"] and got["ref"] == fo.ref
        assert got["metrics"]["lyapunov_per_bar"] == fo.metrics.lyapunov_per_bar
    assert agent_cfm(ws, out["agent"].id).id == out["cfm"].id
    res = CliRunner().invoke(app, ["--workspace", ws.url, "multiverse", "--preset", "debug", "--cfm", out["cfm"].id])
    assert res.exit_code == 0 and "per asset" in res.stdout and f"reused {fo.ref}" in res.stdout
    res = CliRunner().invoke(app, [*base, "--agent", out["agent"].id, "--cfm", out["cfm"].id])
    assert res.exit_code == 2 and "not both" in res.stderr
    res = CliRunner().invoke(app, [*base[:-1], "bench", "--agent", out["agent"].id])  # the agent draws its own N
    assert res.exit_code == 2 and "futures" in res.stderr
    res = CliRunner().invoke(app, [*base, "--cfm", "ffffffff"])
    assert res.exit_code == 3
