"""`chaos run`'s pipeline on a gs:// workspace served by a real GCS emulator process."""

from __future__ import annotations

import uuid

from strates.core.workspace import Workspace
from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec
from strates.pipeline import run


def test_pipeline_on_a_gcs_workspace(gcs_emulator):
    # the whole chain on gs://: Orbax checkpoints, Parquet files, manifests, the report
    ws = Workspace(f"gs://{gcs_emulator.bucket}/pipeline-{uuid.uuid4().hex[:8]}")
    small = IngestConfig(embedded=EmbeddedSpec(assets=2, bars=700))
    first = run(ws, presets=["debug"], ingest_config=small, universes=2)
    assert not any(s.reused for s in first)
    assert ws.exists(f"report/{first[-1].ref.split('/')[1]}/report.html")
    assert all(s.reused for s in run(ws, presets=["debug"], ingest_config=small, universes=2))
