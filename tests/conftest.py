"""Shared test set-up.

- 8 simulated CPU devices for real sharding tests: XLA_FLAGS is set before anything
  imports JAX.
- A real GCS emulator (fake-gcs-server, shipped in a PyPI wheel) started once per test
  session on 127.0.0.1 and a free port; `workspace_url` runs a test on a local folder and
  again on `gs://` served by it.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"  # before gcsfs is imported

import uuid

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "support"))

from gcs_emulator import GcsEmulator


@pytest.fixture(scope="session")
def gcs_emulator():
    """A running fake-gcs-server; sets STORAGE_EMULATOR_HOST for this process and children."""
    with GcsEmulator() as emulator:
        old = os.environ.get("STORAGE_EMULATOR_HOST")
        os.environ["STORAGE_EMULATOR_HOST"] = emulator.endpoint
        try:
            yield emulator
        finally:
            if old is None:
                os.environ.pop("STORAGE_EMULATOR_HOST", None)
            else:
                os.environ["STORAGE_EMULATOR_HOST"] = old


@pytest.fixture(params=["local", "gcs"])
def workspace_url(request, tmp_path):
    """A fresh, empty workspace URL: a temporary folder, then a gs:// bucket prefix."""
    if request.param == "local":
        return str(tmp_path / "ws")
    emulator = request.getfixturevalue("gcs_emulator")
    return f"gs://{emulator.bucket}/ws-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def debug_pipeline(tmp_path_factory):
    """One small embedded dataset taken through ingest, tokenize, train-jepa, train-cfm and
    train-agent with the debug presets, shared by the tests of the later stages (mark them
    `xdist_group("pipeline")` so that one worker builds it once). Returns (workspace,
    {stage: manifest}). Tests may add artifacts; they must not remove these."""
    from strates.agent import PRESETS as AGENT_PRESETS
    from strates.agent import Config as AgentConfig
    from strates.agent import run as train_agent
    from strates.cfm import PRESETS as CFM_PRESETS
    from strates.cfm import Config as CfmConfig
    from strates.cfm import run as train_cfm
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

    ws = Workspace(tmp_path_factory.mktemp("pipeline"))
    out = {"dataset": ingest(IngestConfig(embedded=EmbeddedSpec(assets=2, bars=900)), ws).manifest}
    tok = tokenize(merge_presets(FsqConfig(), FSQ_PRESETS, ["debug"]), ws)
    out["tokenizer"], out["tokens"] = tok.tokenizer, tok.tokens
    out["jepa"] = train_jepa(merge_presets(JepaConfig(), JEPA_PRESETS, ["debug"]), ws).manifest
    out["cfm"] = train_cfm(apply_overrides(merge_presets(CfmConfig(), CFM_PRESETS, ["debug"]),
                                           ["coupling.compare=false"]), ws).manifest
    out["agent"] = train_agent(merge_presets(AgentConfig(), AGENT_PRESETS, ["debug"]), ws).manifest
    return ws, out
