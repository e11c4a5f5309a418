"""Strate II end to end: sharded training equivalence, the debug pipeline, the TPU dry run."""

from __future__ import annotations

import datetime as dt
import json

import jax
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core import artifacts
from strates.core import topology as topo
from strates.core.artifacts import LeakageError
from strates.core.config import apply_overrides, merge_presets
from strates.core.errors import ConfigError, InvalidInput
from strates.core.workspace import Workspace
from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec
from strates.data.ingest import run as ingest
from strates.data.split import Fold, Period, make_folds
from strates.fsq import PRESETS as FSQ_PRESETS
from strates.fsq import Config as FsqConfig
from strates.fsq import run as tokenize
from strates.jepa import PRESETS, STAGE, Config, run
from strates.jepa.config import Distance, Dtype, SsdImpl, choose_presets
from strates.jepa.model import build_model
from strates.jepa.plan import dry_run
from strates.jepa.probe import period_rows
from strates.jepa.stage import validation_split
from strates.jepa.train import fit

# one worker runs this file, so the module-scoped pipeline is built once
pytestmark = pytest.mark.xdist_group("jepa_stage")

DEBUG = merge_presets(Config(), PRESETS, ["debug"])


def _batches(step: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(step)
    return {
        "tokens": rng.integers(0, 64, size=(8, 64)).astype(np.int32),
        "assets": rng.integers(0, 3, size=8).astype(np.int32),
        "macro": rng.normal(size=(8, 64, 2)).astype(np.float32),
    }


def test_one_device_and_eight_devices_train_the_same(tmp_path):
    mesh = "data=2,fsdp=4"
    cfg = apply_overrides(DEBUG, ["train.steps=3", "train.log_every=1", "train.warmup_steps=1"])

    def train_on(plan, name):
        model = build_model(cfg, n_assets=3, n_macro=2, vocab=64, seed=0)
        graphdef, params = nnx.split(model, nnx.Param)
        result = fit(cfg, graphdef=graphdef, params=params, batches=_batches, mesh=topo.build_mesh(plan),
                     checkpoint_dir=str(tmp_path / name), interval_s=3600.0)
        return [h["loss"] for h in result.history], result

    one, _ = train_on(topo.plan("cpu", devices=1), "one")
    eight, result = train_on(topo.plan("cpu", mesh=mesh), "eight")
    assert len(one) == 3
    np.testing.assert_allclose(eight, one, rtol=2e-4)
    # the params really were spread over the 8 devices
    leaf = max(jax.tree.leaves(result.params), key=lambda x: x.size)
    assert len(leaf.sharding.device_set) == 8


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    ingest(IngestConfig(embedded=EmbeddedSpec(assets=2, bars=700)), ws)
    tokenize(merge_presets(FsqConfig(), FSQ_PRESETS, ["debug"]), ws)
    return ws, run(DEBUG, ws)


def test_debug_pipeline_writes_a_jepa_artifact(pipeline):
    ws, result = pipeline
    m = result.manifest
    assert m.stage == "jepa" and set(m.parents) == {"tokens", "dataset"}
    assert m.metrics["steps"] == DEBUG.train.steps
    assert 1.0 < m.metrics["rankme"] <= m.metrics["embedding_dims"] == DEBUG.model.d_model
    probe = m.metrics["probe"]
    for name in ("h", "raw", "raw_window"):
        # scored on the diagnostic part of a tiny validation period (about 56 rows here), so an
        # out-of-sample R² far below 0 is noise, not a bug; it must be a number below 1
        assert np.isfinite(probe[name]["vol_r2"]) and probe[name]["vol_r2"] < 1.0
        assert 0.0 < probe[name]["sign_accuracy"] < 1.0
    tokens_fold = m.summary["fold"]
    assert tokens_fold == "holdout" and "train" in m.fitted
    assert any(n.startswith("checkpoints/") for n in m.files) and "macro_scaler.json" in m.files
    assert m.summary["macro_series"] == ["cot_net", "cpi_yoy", "rate_10y"]
    # the checkpoint is selected on validation loss among those kept
    selection = m.metrics["selection"]
    assert [c["step"] for c in selection["losses"]] == [6, 12]
    assert m.summary["selected_step"] == selection["step"]
    assert selection["validation_loss"] == min(c["loss"] for c in selection["losses"])
    again = run(DEBUG, ws)
    assert again.reused and again.manifest.id == m.id


def test_typed_artifact_reads_the_manifest_and_embeds(pipeline):
    from strates.jepa import artifact

    ws, result = pipeline
    j = artifact.load(ws, result.manifest.id)
    assert j.id == result.manifest.id and j.config == DEBUG
    assert j.metrics.selection.step == j.summary.selected_step in [c.step for c in j.metrics.selection.losses]
    assert j.metrics.probe.h.dims == DEBUG.model.d_model and j.metrics.final is not None
    assert j.summary.diagnostic.start == j.selected.end and j.fitted.end == j.selected.start
    assert j.summary.macro_series == ("cot_net", "cpi_yoy", "rate_10y")
    titles = [t.title for t in artifact.tables(j)]
    assert any("linear probes" in t for t in titles) and all(t.rows for t in artifact.tables(j))
    states, fold, dataset = artifact.embed(ws, j)
    assert fold.name == j.summary.fold and dataset.id == j.manifest.parents["dataset"]
    assert [s.asset for s in states] == list(j.summary.assets)
    assert all(np.allclose(np.linalg.norm(s.h, axis=1), 1, atol=1e-4) and len(s.h) == len(s.ts) for s in states)


def test_checkpoint_choice_and_diagnostics_use_separate_parts_of_validation(pipeline):
    ws, result = pipeline
    m = result.manifest
    dataset = artifacts.resolve(ws, m.parents["dataset"], stage="dataset")
    val = dataset.summary["split"]["folds"][0]["validation"]
    chosen, diagnostic = m.selected["validation"], m.summary["diagnostic"]
    # selection first, diagnostics after it, together the whole validation period
    assert chosen["start"] == val["start"] < chosen["end"] == diagnostic["start"] < diagnostic["end"] == val["end"]
    assert m.fitted["train"]["end"] == val["start"]
    assert m.metrics["selection"]["window"] <= DEBUG.data.window
    # the probes were scored on the diagnostic part only, every target inside it
    sequences_ts = [s.ts for s in _sequences(ws, m)]
    skip = max(DEBUG.loss.ctx_min, DEBUG.probe.vol_window)  # context, and the volatility target's trailing level
    rows = sum(int(period_rows(ts, diagnostic["start"], diagnostic["end"], horizon=DEBUG.probe.horizon,
                               skip=skip).sum()) for ts in sequences_ts)
    assert m.metrics["probe"]["test_rows"] == rows > 0
    # the guard: nothing may be evaluated on the selection part, the diagnostic part chose nothing
    with pytest.raises(LeakageError, match=rf"{m.ref} was selected on 'validation' data"):
        artifacts.check_disjoint([m], chosen["start"], chosen["end"], period="requested backtest")
    artifacts.check_disjoint([m], diagnostic["start"], diagnostic["end"], period="diagnostic")


def _sequences(ws, m):
    from strates.jepa.data import load_sequences

    return load_sequences(ws, artifacts.resolve(ws, m.parents["tokens"], stage="tokens"))[0]


def test_validation_split_on_walk_forward_folds():
    hour = dt.timedelta(hours=1)
    first = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for fold in make_folds("walk-forward:3", first=first, last=first + 999 * hour, interval=hour):
        chosen, diagnostic = validation_split(fold, share=0.5, interval=hour)
        assert chosen.start == fold.validation.start and diagnostic.end == fold.validation.end
        assert chosen.end == diagnostic.start and (chosen.end - first) % hour == dt.timedelta(0)
        bars = (fold.validation.end - fold.validation.start) / hour
        assert abs((chosen.end - chosen.start) / hour - bars / 2) <= 1
        # an extreme share still leaves one bar on each side
        assert validation_split(fold, share=0.001, interval=hour)[0].end == fold.validation.start + hour
        assert validation_split(fold, share=0.999, interval=hour)[1].start == fold.validation.end - hour
    span = Period(first, first + hour)
    one_bar = Fold("x", span, span, span)
    with pytest.raises(InvalidInput, match="holds 1 bar"):
        validation_split(one_bar, share=0.5, interval=hour)
    with pytest.raises(ConfigError, match=r"select\.share 1\.0 must be strictly between 0 and 1"):
        apply_overrides(DEBUG, ["select.share=1.0"])


def test_cli_train_jepa_json(pipeline):
    ws, result = pipeline
    res = CliRunner().invoke(app, ["--workspace", ws.url, "--json", "train-jepa", "--preset", "debug"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["reused"] and out["ref"] == result.manifest.ref
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-jepa", "--preset", "debug", "--topology", "v6e-64"])
    assert res.exit_code == 4 and "v6e-64" in res.stderr


def test_tpu_preset_dry_run_plans_without_devices():
    cfg = merge_presets(Config(), PRESETS, ["v6e-36m"])
    report = dry_run(cfg, preset=("v6e-36m",), topology="v6e-64", measure_activations=False)
    assert report.mesh.topology.devices == 64 and report.mesh.shape == (8, 8, 1)
    assert 30e6 < report.params.context_encoder < 45e6  # the ~36M-parameter preset
    assert report.per_device == 4
    # fsdp=8 shards the big matrices 8 ways: per-device params are far below the full size
    full = report.params.total * 4 / 2**30
    assert report.memory.params < full / 4
    assert report.memory.optimizer > report.memory.params  # two moments for the trained (non-target) params
    assert not report.warnings, report.lines()
    res = CliRunner().invoke(app, ["train-jepa", "--preset", "debug", "--topology", "v6e-64", "--dry-run", "--json"])
    assert res.exit_code == 0, res.stderr
    planned = json.loads(res.stdout)
    assert planned["per_device_gib"]["activations"] > 0 and planned["fits"] is True
    assert planned["preset"] == ["debug"] and not planned["preset_picked"]


@pytest.mark.parametrize(("topology", "preset"), [("v6e-64", "v6e-36m"), ("v6e-256", "v6e-36m"), ("v5e-8", "v5e-12m"),
                                                  ("v5p-8", "v5e-12m"), ("cpu", "small")])
def test_topology_picks_the_preset_sized_for_it(topology, preset):
    assert choose_presets(None, topology) == ((preset,), True)
    assert choose_presets(["debug"], topology) == (("debug",), False)  # an explicit --preset wins


def test_dry_run_on_v6e_64_without_a_preset_plans_the_preset_sized_for_it():
    res = CliRunner().invoke(app, ["train-jepa", "--topology", "v6e-64", "--dry-run", "--json", "--set",
                                   "train.batch_size=64", "--set", "data.window=256"])
    assert res.exit_code == 0, res.stderr
    planned = json.loads(res.stdout)
    assert planned["preset"] == ["v6e-36m"] and planned["preset_picked"]
    assert 30e6 < planned["params"]["context_encoder"] < 45e6
    assert planned["plan"]["shape"] == [8, 8, 1] and planned["batch"]["per_device"] == 1
    # the smaller batch asked for is flagged: 256 bars per chip leave a v6e idle and its HBM empty
    verdicts = {c["what"]: c["verdict"] for c in planned["checks"]}
    assert verdicts == {"batch": "too small", "memory": "too small", "alignment": "ok"}, planned["checks"]


def test_a_mis_sized_preset_is_said_so_in_the_plan():
    """The CPU preset on a v6e-64 (what `--topology v6e-64` planned before it chose by
    topology): its global batch does not split over 64 chips, its head dims do not fill the
    TPU lanes, and the plan names the preset sized for the slice."""
    small = dry_run(merge_presets(Config(), PRESETS, ["small"]), preset=("small",), topology="v6e-64",
                    measure_activations=False)
    verdicts = {c.what: c.verdict for c in small.warnings}
    assert verdicts == {"batch": "too small", "alignment": "misaligned", "preset": "other preset"}
    text = "\n".join(small.lines())
    assert "train.batch_size=1024" in text and "model.head_dim = 32" in text and "--preset v6e-36m" in text
    # the TPU preset on 8 CPU devices: fine to run (every dim a multiple of 8) but not the CPU's preset
    big = dry_run(merge_presets(Config(), PRESETS, ["v6e-36m"]), preset=("v6e-36m",), topology="cpu",
                  mesh="data=8", measure_activations=False)
    assert {c.what: c.verdict for c in big.warnings} == {"preset": "other preset"}
    # a model that fills the HBM is too large
    huge = apply_overrides(merge_presets(Config(), PRESETS, ["v5e-12m"]),
                           ["model.d_model=8192", "model.n_layers=24", "model.macro_heads=64"])
    over = dry_run(huge, preset=("v5e-12m",), topology="v5e-1", measure_activations=False)
    assert {c.what: c.verdict for c in over.warnings} == {"memory": "too large"}


def test_chaos_topology_shows_the_preset_and_its_fit():
    res = CliRunner().invoke(app, ["topology", "v6e-64"])
    assert res.exit_code == 0, res.stderr
    assert "preset    v6e-36m (sized for this topology)" in res.stdout and "WARNING" not in res.stdout
    res = CliRunner().invoke(app, ["topology", "v6e-64", "--preset", "small", "--json"])
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["devices"] == 64 and out["jepa"]["preset"] == ["small"]
    assert {c["what"] for c in out["jepa"]["checks"] if not c["ok"]} == {"batch", "alignment", "preset"}


@pytest.mark.parametrize(("field", "value"), [("model.ssd_impl", "triton"), ("loss.distance", "l1"),
                                              ("model.dtype", "float16")])
def test_an_invalid_choice_exits_2_listing_the_valid_ones(field, value):
    res = CliRunner().invoke(app, ["train-jepa", "--dry-run", "--set", f"{field}={value}"])
    assert res.exit_code == 2
    valid = {"model.ssd_impl": SsdImpl, "loss.distance": Distance, "model.dtype": Dtype}[field]
    assert field in res.stderr and all(m.value in res.stderr for m in valid)


def test_ssd_impl_choices_are_the_kernels_forms():
    from kernels.ssd.dispatch import IMPLS

    assert tuple(SsdImpl) == IMPLS


def test_every_preset_builds_and_keeps_the_artifact_id_of_its_config():
    from strates.core.config import to_dict
    from strates.jepa.config import identity

    for name in PRESETS:
        config = STAGE.configure([name])
        assert identity(config) == {k: v for k, v in to_dict(config).items() if k != "device"}
        moved = apply_overrides(config, ["device.topology=v6e-64", "device.mesh=data=-1"])
        assert identity(moved) == identity(config) and moved.device.mesh == "data=-1"
