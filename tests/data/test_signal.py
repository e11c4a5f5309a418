"""The planted edge of the embedded dataset (`chaos ingest --signal`): kappa = 0 changes nothing,
the drift kappa sigma_t g(s_t) lands on the next bar, g reads only the past, and the oracle in
the manifest is what the documented policy earns on the bars."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core.accounting import sharpe
from strates.core.workspace import Workspace
from strates.data import artifact
from strates.data.config import Config
from strates.data.embedded import SIGNAL_SCALE, EmbeddedSpec, planted_g, simulate
from strates.data.ingest import load_bars, load_signal, run
from strates.data.split import PERIODS
from strates.data.summary import ORACLE_COSTS_BPS

SMALL = EmbeddedSpec(assets=3, bars=1500, history_days=5)


def _log_returns(sim) -> np.ndarray:
    close = np.stack([g["close"].to_numpy() for _, g in sim.bars.group_by("asset", maintain_order=True)])
    return np.diff(np.log(close), axis=1)  # (A, n-1): bar t+1's log return


def test_kappa_zero_is_the_old_data_and_kappa_moves_no_other_draw():
    flat, zero, edged = simulate(SMALL), simulate(replace(SMALL, signal=0.0)), \
        simulate(replace(SMALL, signal=0.3))
    assert flat.bars.equals(zero.bars) and flat.macro.equals(zero.macro)
    assert not (zero.planted != 0).any()
    # the edge moves the returns, nothing that was drawn: same volatility, regimes, macro, g
    for name in ("sigma", "mu", "regime", "drivers", "g"):
        np.testing.assert_array_equal(getattr(flat, name), getattr(edged, name))
    assert flat.macro.equals(edged.macro)
    assert not flat.bars["close"].equals(edged.bars["close"])


def test_the_planted_drift_lands_on_the_next_bar():
    kappa = 0.3
    base, edged = simulate(SMALL), simulate(replace(SMALL, signal=kappa))
    # same shocks: the difference of the log returns is exactly the planted drift of the bar before
    diff = _log_returns(edged) - _log_returns(base)  # (A, n-1), bar t+1
    np.testing.assert_allclose(diff, kappa * edged.sigma[:, :-1] * edged.g[:, :-1], atol=1e-12)
    np.testing.assert_allclose(edged.planted, kappa * edged.sigma * edged.g)
    assert np.abs(edged.g).max() <= SIGNAL_SCALE and np.abs(edged.g).mean() > 0.1 * SIGNAL_SCALE


def test_regression_of_next_returns_on_g_recovers_kappa():
    kappa = 2.0
    sim = simulate(EmbeddedSpec(assets=4, bars=20_000, history_days=0, signal=kappa))
    y = (_log_returns(sim) / sim.sigma[:, :-1]).ravel()  # next return in units of sigma_t
    x = sim.g[:, :-1].ravel()
    x_c, y_c = x - x.mean(), y - y.mean()
    slope = float((x_c * y_c).sum() / (x_c * x_c).sum())
    se = float(np.sqrt(((y_c - slope * x_c) ** 2).mean() / (x_c * x_c).sum()))
    assert abs(slope - kappa) < 4 * se, (slope, se)
    assert se < 0.25 * kappa  # the test can tell the edge from none


def test_g_reads_only_the_past_and_is_not_linear():
    rng = np.random.default_rng(0)
    u = np.cumsum(rng.normal(0, 0.05, (2, 900)), axis=1)
    g = planted_g(u)
    for t in (0, 300, 899):
        changed = u.copy()
        changed[:, t + 1:] = rng.normal(0, 1, changed[:, t + 1:].shape)
        np.testing.assert_array_equal(planted_g(changed)[:, : t + 1], g[:, : t + 1])
    # an interaction: scaling the input by -1 leaves g unchanged (level and trend both flip),
    # so no linear function of u, or of either EMA, reproduces it
    np.testing.assert_allclose(planted_g(-u), g, atol=1e-12)
    assert np.abs(g).max() > 0.5 * SIGNAL_SCALE


def test_oracle_in_the_manifest_is_recomputed_from_the_bars(tmp_path):
    ws = Workspace(tmp_path)
    kappa = 0.4
    m = run(Config(embedded=replace(SMALL, signal=kappa)), ws).manifest
    ds = artifact.read(m)
    sig = ds.summary.signal
    assert sig is not None and sig.kappa == kappa
    bars, planted = load_bars(ws, m), load_signal(ws, m)
    assert planted is not None and set(planted.columns) == {"asset", "ts", "g", "drift"}
    np.testing.assert_allclose(planted["drift"].to_numpy(),
                               kappa * planted["g"].to_numpy() * _sigma(replace(SMALL, signal=kappa)))
    assets = sorted(bars["asset"].unique().to_list())
    ts = bars.filter(bars["asset"] == assets[0])["ts"].to_numpy()
    close = np.stack([bars.filter(bars["asset"] == a).sort("ts")["close"].to_numpy() for a in assets], 1)
    g = np.stack([planted.filter(planted["asset"] == a).sort("ts")["g"].to_numpy() for a in assets], 1)
    pos = np.clip(g / SIGNAL_SCALE, -1, 1)[:-1]  # held over bar t+1
    simple = np.exp(np.diff(np.log(close), axis=0)) - 1
    fold = ds.folds[0]
    for period in PERIODS:
        a, b = fold.period(period).bounds64()
        keep = (ts[:-1] >= a) & (ts[1:] < b)
        p, r = pos[keep], simple[keep]
        prev = np.vstack([np.zeros((1, p.shape[1])), p[:-1]])  # the book starts flat
        for cost in ORACLE_COSTS_BPS:
            pnl = (p * r - cost * 1e-4 * np.abs(p - prev)).mean(1)
            want = pnl.mean() / pnl.std(ddof=1) * math.sqrt(ds.summary.periods_per_year)
            assert sig.oracle_sharpe(period, cost) == pytest.approx(want, abs=1e-3)
            row = next(r for r in sig.oracle if r.period == period and r.cost_bps == cost)
            assert row.bars == keep.sum()
    assert sig.oracle_sharpe("train", 0) > sig.oracle_sharpe("train", 20)  # costs cost
    assert artifact.signal_table(ds) is not None


def _sigma(spec: EmbeddedSpec) -> np.ndarray:
    sim = simulate(spec)  # rows sorted by asset, then ts, as in signal.parquet
    order = np.argsort(sim.assets)
    return sim.sigma[order].ravel()


def test_kappa_zero_records_a_flat_oracle_and_keeps_the_id(tmp_path):
    ws = Workspace(tmp_path)
    flat = run(Config(embedded=SMALL), ws).manifest
    edged = run(Config(embedded=replace(SMALL, signal=0.1)), ws).manifest
    assert flat.id != edged.id and "signal" not in flat.config["embedded"]
    assert load_signal(ws, flat) is None
    sig = artifact.read(flat).summary.signal
    assert sig is not None and sig.kappa == 0 and all(r.sharpe == 0 for r in sig.oracle)
    assert artifact.signal_table(artifact.read(flat)) is None


def test_the_oracle_uses_the_one_sharpe_definition():
    x = np.random.default_rng(1).normal(1e-4, 1e-2, 500)
    assert sharpe(x, periods_per_year=8766.0) == pytest.approx(x.mean() / x.std(ddof=1) * np.sqrt(8766.0), rel=1e-12)
    assert sharpe(np.zeros(10), periods_per_year=8766.0) == 0.0


def test_cli_signal(tmp_path):
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    src = tmp_path / "bars.csv"
    src.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10,100\n2024-01-03,10,11,9,10,100\n")
    for cmd in ("ingest", "run"):
        res = runner.invoke(app, ["--workspace", ws, cmd, "--signal", "0.1", "--source", str(src)])
        assert res.exit_code == 2, (cmd, res.output)
        assert "--signal" in res.output
    res = runner.invoke(app, ["--workspace", ws, "ingest", "--signal", "-1"])
    assert res.exit_code == 2
    res = runner.invoke(app, ["--workspace", ws, "--json", "ingest", "--signal", "0.2", "--seed", "3"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["summary"]["signal"]["kappa"] == 0.2
    assert {r["cost_bps"] for r in out["summary"]["signal"]["oracle"]} == set(ORACLE_COSTS_BPS)
    res = runner.invoke(app, ["--workspace", ws, "show", out["id"]], catch_exceptions=False)
    assert res.exit_code == 0 and "kappa = 0.2" in res.output
