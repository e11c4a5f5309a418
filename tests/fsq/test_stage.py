"""`chaos tokenize` end to end with the debug preset on a small embedded dataset."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import textwrap
import time

import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core import artifacts
from strates.core.artifacts import LeakageError
from strates.core.config import merge_presets
from strates.core.workspace import Workspace
from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec
from strates.data.ingest import load_bars
from strates.data.ingest import run as ingest
from strates.fsq import PRESETS, Config, run
from strates.fsq.artifact import token_table

# one worker runs this file, so the module-scoped pipeline is built once
pytestmark = pytest.mark.xdist_group("fsq_stage")

DEBUG = merge_presets(Config(), PRESETS, ["debug"])
SPEC = EmbeddedSpec(assets=2, bars=700)


@pytest.fixture(scope="module")
def tokenized(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    data = ingest(IngestConfig(embedded=SPEC), ws).manifest
    return ws, data, run(DEBUG, ws)


def test_tokens_align_with_bars_and_codes_are_in_range(tokenized):
    ws, data, result = tokenized
    tokens = token_table(ws, result.tokens)
    bars = load_bars(ws, data)
    assert tokens.select("asset", "ts").equals(bars.select("asset", "ts"))
    codes = tokens["code"].to_numpy()
    assert codes.min() >= 0 and codes.max() < 1024
    assert result.tokens.parents == {"dataset": data.id, "tokenizer": result.tokenizer.id}
    assert result.tokenizer.parents == {"dataset": data.id}
    book = pl.read_parquet(io.BytesIO(ws.read_bytes(f"tokens/{result.tokens.id}/codebook.parquet")))
    assert book.height == 1024 and book["code"].to_list() == list(range(1024))
    assert result.tokens.summary["warmup_bars"] == 14  # debug: kernel 3, depth 3 -> receptive field 15


def test_tokenizer_manifest_metrics_and_fitted_range(tokenized):
    _ws, data, result = tokenized
    tok = result.tokenizer
    fold = data.summary["split"]["folds"][0]
    assert tok.fitted["train"] == {"start": fold["train"]["start"], "end": fold["train"]["end"]}
    for period in ("train", "validation"):
        m = tok.metrics[period]
        assert 0 < m["utilization"] <= 1 and 1 <= m["perplexity"] <= 1024
        assert set(m["r2"]) == {"ret_z", "range_z", "body", "upper_wick", "lower_wick", "rel_volume"}
    assert tok.metrics["steps"] == DEBUG.train.steps
    assert any(name.startswith("checkpoints/") for name in tok.files)
    assert "normalizer.json" in tok.files
    assert tok.config["train"]["steps"] == DEBUG.train.steps  # the resolved config is saved
    assert result.tokens.metrics["tokens"] == 2 * 700


def test_same_inputs_are_reused(tokenized):
    ws, _, result = tokenized
    again = run(DEBUG, ws)
    assert again.reused_tokenizer and again.reused_tokens
    assert again.tokenizer.id == result.tokenizer.id and again.tokens.id == result.tokens.id


def test_reuse_tokenizer_on_another_dataset_and_leakage_guard(tokenized, tmp_path):
    ws, _data, result = tokenized
    # a later dataset (same generator, other seed) whose test period starts after the fit
    later_spec = EmbeddedSpec(assets=2, bars=700, seed=5, start="2025-06-01T00:00:00Z")
    later = ingest(IngestConfig(embedded=later_spec), ws).manifest
    other = run(DEBUG, ws, dataset=later.id, tokenizer=result.tokenizer.id)
    assert other.reused_tokenizer and not other.reused_tokens
    assert other.tokens.parents == {"dataset": later.id, "tokenizer": result.tokenizer.id}
    # an earlier dataset: its test period lies inside the tokenizer's training period -> leak
    earlier_spec = EmbeddedSpec(assets=2, bars=700, seed=6, start="2023-12-01T00:00:00Z")
    earlier = ingest(IngestConfig(embedded=earlier_spec), ws).manifest
    with pytest.raises(LeakageError, match="after the test period starts"):
        run(DEBUG, ws, dataset=earlier.id, tokenizer=result.tokenizer.id)


def test_cli_tokenize_json_and_bad_combination(tokenized):
    ws, data, result = tokenized
    runner = CliRunner()
    res = runner.invoke(app, ["--workspace", ws.url, "tokenize", "--dataset", data.id[:8], "--preset", "debug",
                              "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["tokenizer"]["ref"] == result.tokenizer.ref and out["tokens"]["reused"]
    res = runner.invoke(app, ["--workspace", ws.url, "tokenize", "--tokenizer", "latest", "--preset", "debug"])
    assert res.exit_code == 2 and "--tokenizer" in res.stderr
    res = runner.invoke(app, ["--workspace", ws.url, "tokenize", "--set", "model.levels=[2,2]"])
    assert res.exit_code == 2 and "levels" in res.stderr


_TRAIN = textwrap.dedent(
    """
    import sys
    from strates.core.config import apply_overrides, merge_presets
    from strates.core.workspace import Workspace
    from strates.fsq import PRESETS, Config, run
    cfg = merge_presets(Config(), PRESETS, ["debug"])
    cfg = apply_overrides(cfg, ["train.steps=400", "train.checkpoint_every=10"])
    run(cfg, Workspace(sys.argv[1]))
    """
)


def test_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    ws = Workspace(tmp_path / "ws")
    ingest(IngestConfig(embedded=SPEC), ws)
    proc = subprocess.Popen([sys.executable, "-c", _TRAIN, ws.url], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            saved = [int(p.name) for p in (tmp_path / "ws" / "tokenizer").glob("*/checkpoints/*") if p.name.isdigit()]
            if saved and max(saved) >= 20:
                break
            assert proc.poll() is None, "training ended before it could be interrupted"
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint within 120 s")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert artifacts.list_artifacts(ws, "tokenizer") == []  # nothing published
    cfg = merge_presets(Config(), PRESETS, ["debug"])
    from strates.core.config import apply_overrides

    cfg = apply_overrides(cfg, ["train.steps=400", "train.checkpoint_every=10"])
    result = run(cfg, ws)
    restored = result.tokenizer.summary["restored_from_step"]
    assert restored is not None and restored >= 20
    assert result.tokenizer.metrics["steps"] == 400
    steps = sorted(int(n.split("/")[1]) for n in result.tokenizer.files
                   if n.startswith("checkpoints/") and n.split("/")[1].isdigit())
    assert steps[-1] == 400


def test_typed_artifacts_read_back_and_tables(tokenized):
    from strates.fsq.artifact import load, load_tokenizer, read_tokenizer, tables

    ws, _data, result = tokenized
    tok = read_tokenizer(result.tokenizer)
    assert tok.config == DEBUG.__class__(**{**DEBUG.__dict__, "fold": "holdout"})
    assert tok.summary.levels == (8, 8, 4, 4) and tok.summary.fold == "holdout"
    assert tok.metrics.validation is not None and 0 < tok.metrics.validation.utilization <= 1
    assert load_tokenizer(ws, result.tokenizer.id).manifest.ref == result.tokenizer.ref
    tokens = load(ws, result.tokens.id[:6])
    assert tokens.metrics.tokens == 2 * 700 and tokens.summary.warmup_bars == 14
    first, second = tables(tok, tokens)
    assert [r[0] for r in first.rows] == ["train", "validation"] and len(first.rows[0]) == len(first.columns)
    assert [r[0] for r in second.rows] == ["train", "validation", "test"]
    assert sum(int(r[1].replace(",", "")) for r in second.rows) == tokens.metrics.tokens
