"""`chaos train-cfm` end to end with the debug presets on a small embedded dataset."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.cfm import PRESETS, Config, artifact, run
from strates.cfm.config import Coupling, Method
from strates.cfm.scale import unit
from strates.cfm.stage import scored_periods
from strates.core import artifacts
from strates.core.artifacts import LeakageError
from strates.core.config import apply_overrides, merge_presets
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec
from strates.data.ingest import run as ingest
from strates.data.split import Period
from strates.fsq import PRESETS as FSQ_PRESETS
from strates.fsq import Config as FsqConfig
from strates.fsq import run as tokenize
from strates.jepa import PRESETS as JEPA_PRESETS
from strates.jepa import Config as JepaConfig
from strates.jepa import artifact as jepa_artifact
from strates.jepa import run as train_jepa

pytestmark = pytest.mark.xdist_group("cfm_stage")

DEBUG = apply_overrides(merge_presets(Config(), PRESETS, ["debug"]), ["ensemble=2"])
JEPA_DEBUG = merge_presets(JepaConfig(), JEPA_PRESETS, ["debug"])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    ingest(IngestConfig(embedded=EmbeddedSpec(assets=2, bars=900)), ws)
    tokenize(merge_presets(FsqConfig(), FSQ_PRESETS, ["debug"]), ws)
    train_jepa(JEPA_DEBUG, ws)
    return ws, run(DEBUG, ws)


def test_cfm_artifact_scores_against_every_baseline(trained):
    ws, result = trained
    m = result.manifest
    assert m.stage == "cfm" and set(m.parents) == {"jepa", "tokens", "dataset"}
    c = artifact.load(ws, m.id)
    assert c.id == m.id and c.config == DEBUG
    for name in ("validation", "test"):
        p = c.metrics.period(name)
        assert p is not None and p.futures_per_state == 8 and p.states > 0
        assert set(p.forecasts) == {key for key, _ in artifact.FORECASTS}
        for forecast, _ in artifact.FORECASTS:
            scores = p.forecast(forecast)
            assert scores is not None and [h.horizon for h in scores.horizons] == [1, 2, 4]
            for h in scores.horizons:
                assert h.crps > 0 and 0 <= h.cov50 <= h.cov90 <= 1
            cals = p.calibration[forecast]
            assert [cal.horizon for cal in cals] == [1, 2, 4]
            for cal in cals:
                assert list(cal.coverage) == sorted(cal.coverage) and len(cal.pit) == 10
                assert np.isclose(np.mean(cal.pit), 1.0)  # densities of equal bins average to 1
        assert set(p.skill) == set(p.skill_recalibrated) == {"h1", "h2", "h4"}
        for h, row in p.skill.items():
            assert set(row) == {*artifact.BASELINES, artifact.SHUFFLED}
            for b, s in row.items():
                assert s.lo <= s.value <= s.hi
                crps = {key: p.forecasts[key].at(int(h[1:])).crps for key, _ in artifact.FORECASTS}
                base = crps["cfm_shuffled" if b == artifact.SHUFFLED else b]
                assert np.isclose(s.value, 1 - crps["cfm"] / base)  # the skill is of the scores reported
        assert p.sphere_norm_max_error < 1e-5  # sampled states are back on the sphere
        assert p.ensemble_disagreement > 0  # two members, different seeds
        assert p.diversity.vendi >= 1
    nfe = c.metrics.coupling_nfe
    assert nfe is not None
    assert [r.coupling for r in nfe.rows] == [Coupling.COT, Coupling.INDEPENDENT, Coupling.OT]
    assert all([s.nfe for s in r.scores] == [1, 2, 4, 8] for r in nfe.rows) and nfe.method == "euler"
    stats = {s.coupling: s for s in c.metrics.couplings}
    assert stats[Coupling.INDEPENDENT].identity_share == 1.0
    # OT lowers the transport cost; the condition-aware cost keeps pairs closer in condition
    assert stats[Coupling.OT].transport_cost < stats[Coupling.INDEPENDENT].transport_cost
    assert stats[Coupling.COT].condition_distance < stats[Coupling.OT].condition_distance
    # the spread factor is the one choice made on validation: on its scored part
    validation = c.metrics.validation
    assert validation is not None and "train" in m.fitted
    assert m.selected == {"spread": validation.period.to_dict()} and c.metrics.spread > 0
    assert isinstance(c.metrics.condition_used, bool)
    names = {n.split("/")[1] for n in m.files if n.startswith("checkpoints/")}
    assert names == {h.name for h in c.summary.history} == {"cot-m0", "cot-m1", "ot-m0", "independent-m0"}
    assert c.summary.main == Coupling.COT and c.summary.couplings[0] == Coupling.COT and c.summary.ensemble == 2
    titles = [t.title for t in artifact.tables(c)]
    assert len(titles) == 6 and titles[0].startswith("validation") and titles[2].startswith("test")
    assert "CRPS skill" in titles[1] and "CRPS skill" in titles[3]


def test_flows_load_with_their_scales(trained):
    ws, result = trained
    flows, scales = artifact.load_flows(ws, artifact.read(result.manifest))
    assert len(flows) == 2 and scales.horizon == DEBUG.future.horizon
    assert scales.state_dim == JEPA_DEBUG.model.d_model
    assert scales.spread == artifact.read(result.manifest).metrics.spread
    assert scales.conditioner.names == DEBUG.scale.names and flows[0].cond_dim == scales.cond_dim
    # what a consumer feeds the flows: h_t, the scale features (trained statistics), the log unit
    states = jepa_artifact.embed(ws, jepa_artifact.load(ws, result.manifest.parents["jepa"])).states
    observed = scales.observe(states)
    d, k = scales.state_dim, len(scales.conditioner.names)
    for s, o in zip(states, observed, strict=True):
        assert o.h.shape == (len(s.ts), d + k + 1) and np.array_equal(o.h[:, :d], s.h) and np.all(np.isfinite(o.h))
        assert np.allclose(np.exp(o.h[:, -1]), unit(s.r, DEBUG.scale), rtol=1e-5)


def test_validation_is_scored_only_after_the_jepa_checkpoint_choice(trained):
    ws, result = trained
    c = artifact.read(result.manifest)
    jepa = jepa_artifact.load(ws, c.manifest.parents["jepa"])
    fold = data_artifact.load(ws, c.manifest.parents["dataset"]).fold(c.summary.fold)
    assert jepa.selected.start == fold.validation.start
    validation, test = c.metrics.validation, c.metrics.test
    assert validation is not None and test is not None
    assert validation.period == Period(jepa.selected.end, fold.validation.end)
    assert test.period == fold.test
    upstream = artifacts.ancestors(ws, c.manifest)
    for scored in (validation, test):
        artifacts.check_disjoint(upstream, scored.start, scored.end, period="scored")
    artifacts.check_disjoint([c.manifest], test.start, test.end, period="test")  # the spread was chosen before it
    # a test period that a model chose on is refused before anything is scored
    leaky = dataclasses.replace(fold, test=fold.validation)
    with pytest.raises(LeakageError, match=rf"{jepa.ref} was selected on 'validation'"):
        scored_periods(leaky, upstream)


def test_reuse_and_cli(trained):
    ws, result = trained
    args = ["--workspace", ws.url, "--json", "train-cfm", "--preset", "debug", "--ensemble", "2"]
    res = CliRunner().invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["reused"] and out["ref"] == result.manifest.ref
    c = artifact.read(result.manifest)
    assert set(out["skill"]) == {"validation", "test"}
    for period, rows in out["skill"].items():
        assert set(rows) == {"h1", "h2", "h4"}
        for h, row in rows.items():
            assert set(row) == set(artifact.BASELINES)
            p = c.metrics.period(period)
            assert p is not None and row == {b: p.skill[h][b].value for b in artifact.BASELINES}
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-cfm", "--preset", "debug", "--ensemble", "2"],
                             catch_exceptions=False)
    assert res.exit_code == 0 and "CRPS" in res.stdout and f"reused {result.manifest.ref}" in res.stdout, res.stdout
    for field, kind in (("coupling.kind", Coupling), ("sample.method", Method)):
        res = CliRunner().invoke(app, ["--workspace", ws.url, "train-cfm", "--set", f"{field}=nearest"])
        assert res.exit_code == 2 and field in res.stderr and all(k.value in res.stderr for k in kind)
    validation = artifact.read(result.manifest).metrics.validation
    assert validation is not None and np.isfinite(validation.forecasts["cfm"].energy_score)
