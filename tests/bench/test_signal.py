"""`chaos bench signal` on its debug grid (kappa 0 and 0.4, two small markets through the
debug chain): the planted drift is in the returns, the oracle is computed as documented,
the fields are there, the artifact is reused, the report, the refusals. The debug chain's
figures mean nothing; the full grid's are in README.md."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.agent import artifact as agent_artifact
from strates.bench.signal import capture
from strates.core import accounting, artifacts
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.data.embedded import SIGNAL_SCALE
from strates.data.ingest import load_bars, load_signal

pytestmark = pytest.mark.xdist_group("signal")

FIELDS = ("kappa", "oracle_sharpe", "agent_sharpe", "capture", "dsr", "contested_share", "filter_delta_sharpe",
          "filter_delta_sharpe_interval")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    root = tmp_path_factory.mktemp("signal")
    env = {"CHAOS_JAX_CACHE": str(root / "jax")}
    out = CliRunner().invoke(app, ["--workspace", str(root / "ws"), "bench", "signal", "-p", "debug", "--json"],
                             env=env)
    assert out.exit_code == 0, out.output
    return Workspace(str(root / "ws")), env, json.loads(out.stdout)


def _dataset(ws, row):
    return artifacts.resolve(ws, row["dataset"])


def test_every_kappa_has_the_fields(grid):
    _, _, got = grid
    rows = got["kappas"]
    assert [r["kappa"] for r in rows] == [0.0, 0.4]
    for r in rows:
        assert all(f in r for f in FIELDS), sorted(set(FIELDS) - set(r))
        assert len(r["filter_delta_sharpe_interval"]) == 2
        lo, hi = r["filter_delta_sharpe_interval"]
        assert lo <= r["filter_delta_sharpe"] <= hi
        assert r["agent_sharpe_lo"] <= r["agent_sharpe"] <= r["agent_sharpe_hi"]
        assert r["oracle_sharpe_lo"] <= r["oracle_sharpe"] <= r["oracle_sharpe_hi"]
        assert 0 <= r["contested_share"] <= 1 and 0 <= r["dsr"] <= 1
        assert {c["cost_bps"] for c in r["costs"]} == {0.0, 5.0, 10.0, 20.0}
        assert r["agent"].startswith("agent/") and r["multiverse"].startswith("multiverse/")
    null, edged = rows
    # nothing planted: the oracle stays flat, there is nothing to capture and no drift to probe
    assert null["oracle_sharpe"] == 0.0 and null["capture"] is None and null["jepa_drift_r2"] is None
    assert null["cfm_drift_corr"] is None
    assert edged["oracle_sharpe"] != 0 and math.isfinite(edged["jepa_drift_r2"])  # 60 debug bars: any sign
    assert got["summary"]["null_false_discovery"] is (null["discovery"] or any(c["filter_helps"]
                                                                               for c in null["costs"]))


def test_the_planted_drift_is_in_the_returns(grid):
    """Bar t+1's log return of the kappa = 0.4 market is the kappa = 0 market's plus the
    planted drift of bar t: the same draws, the edge added."""
    ws, _, got = grid
    null, edged = (_dataset(ws, r) for r in got["kappas"])
    planted = load_signal(ws, edged)
    assert load_signal(ws, null) is None and planted is not None
    r0, r1 = (load_bars(ws, m).sort("asset", "ts") for m in (null, edged))
    for asset in r0["asset"].unique().to_list():
        lr0 = np.diff(np.log(r0.filter(pl.col("asset") == asset)["close"].to_numpy()))
        lr1 = np.diff(np.log(r1.filter(pl.col("asset") == asset)["close"].to_numpy()))
        drift = planted.filter(pl.col("asset") == asset).sort("ts")["drift"].to_numpy()
        np.testing.assert_allclose(lr1 - lr0, drift[:-1], atol=1e-9)
        assert np.abs(drift).max() > 0


def test_the_oracle_is_computed_as_documented(grid):
    """On the agent's test bars: hold clip(g / SIGNAL_SCALE, -1, 1) over the next bar, charged
    5 bps per side of |change|; its Sharpe, and the agent's, recomputed from the files."""
    ws, _, got = grid
    row = got["kappas"][1]
    agent = artifacts.resolve(ws, row["agent"])
    rows = agent_artifact.load_positions(ws, agent, period="test")
    planted = load_signal(ws, _dataset(ws, row))
    assert planted is not None
    planted = planted.with_columns(pl.col("ts").dt.replace_time_zone(None))
    joined = rows.join(planted, on=["asset", "ts"], how="left").sort("ts", "asset")
    assets = sorted(joined["asset"].unique().to_list())
    ts = np.unique(joined["ts"].to_numpy())

    def wide(col):
        out = np.zeros((len(ts), len(assets)))
        t = np.searchsorted(ts, joined["ts"].to_numpy())
        a = np.array([assets.index(x) for x in joined["asset"].to_list()])
        out[t, a] = joined[col].to_numpy()
        return out

    counts = np.zeros((len(ts), len(assets)), bool)
    counts[np.searchsorted(ts, joined["ts"].to_numpy()),
           np.array([assets.index(x) for x in joined["asset"].to_list()])] = True
    oracle = np.clip(wide("g") / SIGNAL_SCALE, -1, 1)
    simple = np.asarray(accounting.simple(np.where(counts, wide("next_return"), 0.0)))
    pnl, _ = accounting.rollout(np.where(counts, oracle, 0.0), simple, cost=accounting.bps(5.0))
    ppy = data_artifact.read(_dataset(ws, row)).summary.periods_per_year
    expected = accounting.sharpe(accounting.portfolio_returns(pnl, counts), periods_per_year=ppy)
    assert row["oracle_sharpe"] == pytest.approx(expected, rel=1e-9)
    own = agent_artifact.find(next(b for b in agent_artifact.read(agent).metrics.backtest if b.name == "test").rows,
                              "agent", 5.0)
    assert row["agent_sharpe"] == pytest.approx(own.sharpe, rel=1e-6, abs=1e-9)  # the agent's own backtest figure
    assert row["dsr"] == own.dsr
    # the dataset's oracle (every test bar) is the manifest's
    planted_summary = data_artifact.read(_dataset(ws, row)).summary.signal
    assert planted_summary is not None and row["oracle_sharpe_dataset"] == planted_summary.oracle_sharpe("test")


def test_the_artifact_is_reused_and_reported(grid):
    ws, env, got = grid
    table = pl.read_parquet(io.BytesIO(ws.read_bytes(f"{got['ref']}/kappas.parquet")))
    assert table["kappa"].to_list() == [0.0, 0.4] and "capture" in table.columns
    again = CliRunner().invoke(app, ["--workspace", ws.url, "bench", "signal", "-p", "debug", "--json"], env=env)
    assert again.exit_code == 0 and json.loads(again.stdout)["reused"] is True
    out = CliRunner().invoke(app, ["--workspace", ws.url, "report", "--bench", "latest", "--json"], env=env)
    assert out.exit_code == 0, out.output
    report = artifacts.resolve(ws, json.loads(out.stdout)["ref"])
    assert report.parents == {"bench-signal": got["ref"].split("/")[1]}
    md = ws.read_bytes(f"{report.ref}/report.md").decode()
    assert "planted edge of known strength" in md and "figures/bench_signal.png" in md
    assert ws.read_bytes(f"{report.ref}/figures/bench_signal.png")[:4] == b"\x89PNG"


@pytest.mark.parametrize(("args", "field"), [
    (["--kappas", "0,abc"], "kappas"),
    (["--kappas", "0.4,0.1"], "ascending"),
    (["--kappas", "0,-0.1"], "[0, 10]"),
    (["--set", 'sets=["agents:train.steps=3"]'], "stage:key=value"),
])
def test_bad_grids_are_refused_before_any_work(tmp_path, args, field):
    out = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "bench", "signal", "-p", "debug", *args])
    assert out.exit_code == 2 and field in out.output
    assert not (tmp_path / "ws" / "dataset").exists()


def test_capture_is_one_for_the_oracle_itself_and_minus_one_against_it():
    rng = np.random.default_rng(3)
    oracle = rng.normal(0.001, 0.01, 2000)
    same = capture(oracle, oracle, periods_per_year=8766, replicates=300, level=0.9, seed=0)
    assert same["capture"] == pytest.approx(1.0) and same["capture_lo"] == pytest.approx(1.0)
    assert same["capture_hi"] == pytest.approx(1.0)
    against = capture(-oracle, oracle, periods_per_year=8766, replicates=300, level=0.9, seed=0)
    assert against["capture"] == pytest.approx(-1.0)
    noise = capture(rng.normal(0, 0.01, 2000), oracle, periods_per_year=8766, replicates=300, level=0.9, seed=0)
    assert noise["capture_lo"] < noise["capture"] < noise["capture_hi"]
    assert noise["agent_sharpe_lo"] < noise["agent_sharpe"] < noise["agent_sharpe_hi"]
    flat = capture(oracle, np.zeros(2000), periods_per_year=8766, replicates=300, level=0.9, seed=0)
    assert math.isnan(flat["capture"])  # no oracle Sharpe: nothing to capture


def _clock(kappa=0.4, t_len=3000, seed=0):
    from strates.bench.signal import Clock

    rng = np.random.default_rng(seed)
    ts = np.arange(t_len).astype("datetime64[h]").astype("datetime64[us]")
    g = np.stack([0.2 * np.tanh(np.cumsum(rng.normal(0, 0.05, t_len))) for _ in range(2)], 1)
    r_next = kappa * 0.01 * g + rng.normal(0, 0.01, (t_len, 2))
    valid = np.ones((t_len, 2), bool)
    return Clock(ts, ("A", "B"), valid, np.zeros((t_len, 2)), r_next, g)


def test_a_probe_that_predicts_g_exactly_earns_the_oracles_sharpe():
    from strates.agent.backtest import portfolio_returns
    from strates.bench.signal import probe_policies
    from strates.data.embedded import oracle_positions

    clock = _clock()
    exact = {"h": {a: (clock.ts, clock.g[:, j]) for j, a in enumerate(clock.assets)},
             "raw": {a: (clock.ts, np.zeros(len(clock.ts))) for a in clock.assets}}
    got = probe_policies(clock, exact, cost_bps=5.0, periods_per_year=8766)
    oracle = accounting.sharpe(portfolio_returns(oracle_positions(clock.g, 0.4), clock.r_next, clock.valid,
                                                 cost_bps=5.0), periods_per_year=8766)
    assert got["jepa_probe_sharpe"] == pytest.approx(oracle) and oracle > 1
    assert got["raw_probe_sharpe"] == 0.0  # a probe that predicts nothing holds nothing
    assert math.isnan(probe_policies(clock, {}, cost_bps=5.0, periods_per_year=8766)["jepa_probe_sharpe"])


def test_the_slope_reads_how_much_of_the_drift_is_carried():
    from strates.bench.signal import _slope

    rng = np.random.default_rng(1)
    x = rng.normal(0, 0.02, 4000)
    full, lo, hi = _slope(x, x + rng.normal(0, 0.05, 4000))  # a noisy mean that carries the drift one for one
    assert lo < 1.0 < hi and abs(full - 1.0) < 0.15
    none, lo, hi = _slope(x, rng.normal(0, 0.05, 4000))  # one that carries nothing
    assert abs(none) < 0.15 and hi - lo < 0.3
    assert all(math.isnan(v) for v in _slope(np.zeros(10), x[:10]))
