"""`chaos train-cfm` end to end with the debug presets on a small embedded dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.cfm import PRESETS, Config, run
from strates.cfm.stage import scored_periods
from strates.core import artifacts
from strates.core.artifacts import LeakageError
from strates.core.config import apply_overrides, merge_presets
from strates.core.workspace import Workspace
from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec
from strates.data.ingest import run as ingest
from strates.fsq import PRESETS as FSQ_PRESETS
from strates.fsq import Config as FsqConfig
from strates.fsq import run as tokenize
from strates.jepa import PRESETS as JEPA_PRESETS
from strates.jepa import Config as JepaConfig
from strates.jepa import run as train_jepa

pytestmark = pytest.mark.xdist_group("cfm_stage")

DEBUG = apply_overrides(merge_presets(Config(), PRESETS, ["debug"]), ["ensemble=2"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    ingest(IngestConfig(embedded=EmbeddedSpec(assets=2, bars=900)), ws)
    tokenize(merge_presets(FsqConfig(), FSQ_PRESETS, ["debug"]), ws)
    train_jepa(merge_presets(JepaConfig(), JEPA_PRESETS, ["debug"]), ws)
    return ws, run(DEBUG, ws)


def test_cfm_artifact_scores_against_both_baselines(trained):
    ws, result = trained
    m = result.manifest
    assert m.stage == "cfm" and set(m.parents) == {"jepa", "tokens", "dataset"}
    for period in ("validation", "test"):
        p = m.metrics[period]
        assert p["futures_per_state"] == 8 and p["states"] > 0
        for name in ("cfm", "bootstrap", "gaussian_rw"):
            row = p[name]
            assert row["horizons"] == [1, 2, 4]
            for h in row["horizons"]:
                assert row[f"crps_h{h}"] > 0 and 0 <= row[f"cov50_h{h}"] <= row[f"cov90_h{h}"] <= 1
        assert p["sphere_norm_max_error"] < 1e-5  # sampled states are back on the sphere
        assert p["ensemble_disagreement"] > 0  # two members, different seeds
        assert p["diversity"]["vendi"] >= 1
    table = m.metrics["coupling_nfe"]["table"]
    assert set(table) == {"cot", "ot", "independent"} and set(table["cot"]) == {"1", "2", "4", "8"}
    couplings = m.metrics["couplings"]
    assert couplings["independent"]["identity_share"] == 1.0
    # OT lowers the transport cost; the condition-aware cost keeps pairs closer in condition
    assert couplings["ot"]["transport_cost"] < couplings["independent"]["transport_cost"]
    assert couplings["cot"]["condition_distance"] < couplings["ot"]["condition_distance"]
    assert "train" in m.fitted and m.selected == {}  # the cfm chooses nothing on validation
    names = {n.split("/")[1] for n in m.files if n.startswith("checkpoints/")}
    assert names == {"cot-m0", "cot-m1", "ot-m0", "independent-m0"}


def test_validation_is_scored_only_after_the_jepa_checkpoint_choice(trained):
    ws, result = trained
    m = result.manifest
    jepa = artifacts.resolve(ws, m.parents["jepa"], stage="jepa")
    fold = next(f for f in artifacts.resolve(ws, m.parents["dataset"], stage="dataset").summary["split"]["folds"]
                if f["name"] == m.summary["fold"])
    chosen = jepa.selected["validation"]
    assert chosen["start"] == fold["validation"]["start"]
    validation = m.metrics["validation"]
    assert (validation["start"], validation["end"]) == (chosen["end"], fold["validation"]["end"])
    assert (m.metrics["test"]["start"], m.metrics["test"]["end"]) == (fold["test"]["start"], fold["test"]["end"])
    upstream = [m, *artifacts.ancestors(ws, m)]
    for period in ("validation", "test"):
        artifacts.check_disjoint(upstream, m.metrics[period]["start"], m.metrics[period]["end"], period=period)
    # a test period that a model chose on is refused before anything is scored
    leaky = {**fold, "test": fold["validation"]}
    with pytest.raises(LeakageError, match=rf"{jepa.ref} was selected on 'validation'"):
        scored_periods(leaky, upstream)


def test_reuse_and_cli(trained):
    ws, result = trained
    res = CliRunner().invoke(app, ["--workspace", ws.url, "--json", "train-cfm", "--preset", "debug", "--ensemble", "2"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["reused"] and out["ref"] == result.manifest.ref
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-cfm", "--set", "coupling.kind=nearest"])
    assert res.exit_code == 2 and "coupling.kind" in res.stderr
    assert np.isfinite(result.manifest.metrics["validation"]["cfm"]["energy_score"])
