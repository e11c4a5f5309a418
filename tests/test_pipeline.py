"""`chaos run`'s pipeline: every stage in order, reusing what is unchanged."""

from __future__ import annotations

import pytest

from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec
from strates.pipeline import STAGES, run

pytestmark = pytest.mark.xdist_group("pipeline")


def test_pipeline_runs_every_stage_then_reuses_them(debug_pipeline):
    ws, built = debug_pipeline
    small = IngestConfig(embedded=EmbeddedSpec(assets=2, bars=900))
    first = run(ws, presets=["debug"], ingest_config=small, universes=3)
    assert [s.stage for s in first] == list(STAGES)
    by_stage = {s.stage: s for s in first}
    # the shared fixture built the first stages with the same configs: reused, same artifacts
    for kind in ("dataset", "tokenizer", "tokens", "jepa"):
        assert by_stage[kind].reused and by_stage[kind].ref == built[kind].ref
    # its cfm skipped the coupling comparison, so the debug preset's cfm is new, and so is all after it
    assert not any(by_stage[s].reused for s in ("cfm", "agent", "multiverse", "report"))
    report = by_stage["report"].ref.split("/")[1]
    assert ws.exists(f"report/{report}/report.html")
    again = run(ws, presets=["debug"], ingest_config=small, universes=3)
    assert all(s.reused for s in again) and [s.ref for s in again] == [s.ref for s in first]

