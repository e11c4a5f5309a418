"""`chaos multiverse` end to end on the shared debug pipeline."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core.config import apply_overrides, merge_presets
from strates.multiverse import PRESETS, Config, run

pytestmark = pytest.mark.xdist_group("pipeline")

DEBUG = merge_presets(Config(), PRESETS, ["debug"])


def _read(ws, m, name):
    return pl.read_parquet(ws.local_path(f"multiverse/{m.id}/{name}"))


@pytest.fixture(scope="module")
def crossed(debug_pipeline):
    ws, out = debug_pipeline
    return ws, out, run(DEBUG, ws, agent=out["agent"].id).manifest


def test_metrics_per_asset_and_time(crossed):
    ws, out, m = crossed
    assert m.parents["agent"] == out["agent"].id and m.metrics["universes"] == 4
    d = _read(ws, m, "decisions.parquet")
    assert d.height == 24 * 2 and m.metrics["decisions"] == d.height
    u = m.metrics["universes"] + 1
    c = d["consensus"].to_numpy()
    assert ((c >= 1 / 3 - 1e-9) & (c <= 1)).all() and np.allclose(c * u, np.round(c * u))  # whole universes
    b = d["bifurcation"].to_numpy()
    assert ((b >= 0) & (b <= 1)).all() and np.allclose(b * (u - 1), np.round(b * (u - 1)))
    assert (d["effective_modes"].to_numpy() >= 1 - 1e-6).all() and np.isfinite(d["lyapunov"].to_numpy()).all()
    assert (d["contested"].to_numpy() == (c < m.metrics["threshold"])).all()
    assert m.metrics["contested"] == int(d["contested"].sum())
    np.testing.assert_allclose(d["position_sized"].to_numpy(), d["position"].to_numpy() * c)
    free = ~d["contested"].to_numpy()
    np.testing.assert_array_equal(d["position_filtered"].to_numpy()[free], d["position"].to_numpy()[free])
    fans = _read(ws, m, "fans.parquet")
    q = fans.select("q05", "q25", "q50", "q75", "q95").to_numpy()
    assert (np.diff(q, axis=1) >= -1e-12).all() and fans["step"].max() == 4  # the debug cfm horizon
    comparison = m.metrics["comparison"]
    assert set(comparison) == {"deterministic", "filtered", "sized"}
    assert all(set(rows) == {"0bps", "5bps", "10bps", "20bps"} for rows in comparison.values())
    assert set(m.metrics["distribution"]) == {"consensus", "bifurcation", "effective_modes", "lyapunov"}


def test_sigma_zero_gives_trivial_metrics_end_to_end(crossed):
    # with shared random numbers, unperturbed universes draw the same futures and decide alike
    ws, out, _ = crossed
    m = run(apply_overrides(DEBUG, ["sigma=0"]), ws, agent=out["agent"].id).manifest
    d = _read(ws, m, "decisions.parquet")
    assert (d["consensus"] == 1.0).all() and (d["bifurcation"] == 0.0).all()
    assert (d["lyapunov"] == 0.0).all() and np.allclose(d["effective_modes"].to_numpy(), 1.0)
    assert m.metrics["contested"] == 0
    table = m.metrics["comparison"]
    assert table["filtered"]["5bps"]["total_return"] == table["deterministic"]["5bps"]["total_return"]


def test_cli_json_reuse_and_bad_input(crossed):
    ws, out, m = crossed
    res = CliRunner().invoke(app, ["--workspace", ws.url, "--json", "multiverse", "--preset", "debug",
                                   "--agent", out["agent"].id], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["reused"] and got["ref"] == m.ref and got["metrics"]["universes"] == 4
    res = CliRunner().invoke(app, ["--workspace", ws.url, "multiverse", "--preset", "debug", "--universes", "0"])
    assert res.exit_code == 2 and "universes" in res.stderr
    res = CliRunner().invoke(app, ["--workspace", ws.url, "multiverse", "--agent", "ffffffff"])
    assert res.exit_code == 3
