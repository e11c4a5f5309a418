"""Scale-free futures on a daily index panel whose later years are three times calmer than
its training years (`tests/support/panels.py`): `chaos run --until cfm` with the debug presets."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from panels import write_daily_panel
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.cfm import artifact
from strates.core.workspace import Workspace

pytestmark = pytest.mark.xdist_group("regime_shift")


@pytest.fixture(scope="module")
def shifted(tmp_path_factory):
    root = tmp_path_factory.mktemp("panel")
    paths = write_daily_panel(root / "csv", assets=2, days=1600, shift=dt.date(2012, 5, 1))  # after training
    ws = Workspace(root / "ws")
    args = ["--workspace", ws.url, "--json", "run", "--preset", "debug", "--until", "cfm",
            "--set", "cfm.eval.max_states=200"]
    for p in paths:
        args += ["--source", str(p)]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    return ws, out, artifact.load(ws, out["stages"][-1]["ref"])


def test_run_until_stops_after_the_stage(shifted):
    _, out, c = shifted
    assert [s["stage"] for s in out["stages"]] == ["dataset", "tokenizer", "tokens", "jepa", "cfm"]
    assert out["report"] is None and c.ref == out["stages"][-1]["ref"]


def test_futures_follow_a_calmer_regime(shifted):
    ws, _, c = shifted
    p = c.metrics.test
    assert p is not None and p.states == c.config.eval.max_states
    from strates.cfm.scale import unit
    from strates.jepa.artifact import embed, load

    states, fold, _ = embed(ws, load(ws, c.manifest.parents["jepa"]))
    # the panel's test years are about three times calmer than its training years
    train = np.concatenate([s.r[(s.ts >= np.datetime64(fold.train.start.replace(tzinfo=None)))
                                 & (s.ts < np.datetime64(fold.train.end.replace(tzinfo=None)))] for s in states])
    test = np.concatenate([s.r[s.ts >= np.datetime64(fold.test.start.replace(tzinfo=None))] for s in states])
    assert test.std() < 0.5 * train.std()
    assert np.median(unit(states[0].r, c.config.scale)[-100:]) < 0.5 * train.std()  # the unit follows it
    # so the futures keep their width in the calm years: with a fixed training-period unit their
    # 50% interval would cover nearly all of them (a 30-step debug flow is a little wide)
    for h in p.forecasts["cfm"].horizons:
        assert abs(h.cov50 - 0.5) < 0.12 and abs(h.cov90 - 0.9) < 0.07, h
    walk = p.forecasts["random_walk"]
    for h in p.forecasts["cfm"].horizons:
        assert h.crps < 1.1 * walk.at(h.horizon).crps
