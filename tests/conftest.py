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

from gcs_emulator import GcsEmulator  # noqa: E402


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
