"""`chaos train-worldmodels` and `chaos dream` on a gs:// workspace served by a real GCS
emulator process: Orbax checkpoints of V and M written there, restored for the dream."""

from __future__ import annotations

import uuid

import pytest

from strates.core import artifacts
from strates.core.workspace import Workspace
from strates.data.config import Config as IngestConfig
from strates.data.embedded import EmbeddedSpec
from strates.data.ingest import run as ingest
from strates.worldmodels import STAGE
from strates.worldmodels import dream as dream_stage
from strates.worldmodels import run as train_worldmodels

pytestmark = [pytest.mark.gcs, pytest.mark.slow]


def test_worldmodels_and_dream_on_a_gcs_workspace(gcs_emulator):
    ws = Workspace(f"gs://{gcs_emulator.bucket}/worldmodels-{uuid.uuid4().hex[:8]}")
    ingest(IngestConfig(embedded=EmbeddedSpec(assets=2, bars=700)), ws)
    quick = ["controller.generations=2", "controller.select_every=1", "regimes.k_max=2"]
    wm = train_worldmodels(STAGE.configure(["debug"], quick), ws)
    assert not wm.reused and any(f.startswith("vae/") for f in wm.manifest.files)
    d = dream_stage.run(dream_stage.STAGE.configure(["debug"]), ws, worldmodels=wm.manifest)
    assert ws.exists(f"dream/{d.manifest.id}/bars.parquet")
    assert {m.stage for m in artifacts.list_artifacts(ws)} == {"dataset", "worldmodels", "dream"}
    assert train_worldmodels(STAGE.configure(["debug"], quick), ws).reused
