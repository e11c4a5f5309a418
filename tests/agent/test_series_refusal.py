"""`chaos train-agent` refuses a series dataset before any work (exit 2, saying why); the
same check through the CLI on a whole series pipeline is in tests/test_pipeline_series.py."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from strates.agent import Config
from strates.agent.stage import STAGE
from strates.core.errors import BAD_INPUT, InvalidInput
from strates.core.workspace import Workspace
from strates.data.ingest import ingest_series


def test_prepare_refuses_a_series_dataset(tmp_path):
    t = np.arange(200)
    frame = pl.DataFrame({"x": np.sin(t / 5.0), "y": np.cos(t / 7.0) + 0.01 * t})
    dataset = ingest_series(frame, Workspace(tmp_path), step="1h", system="oscillator").manifest
    assert STAGE.prepare is not None
    with pytest.raises(InvalidInput) as err:
        STAGE.prepare(Config(), {"dataset": dataset})
    assert err.value.rule == "series-dataset" and err.value.exit_code == BAD_INPUT == 2
    assert "train-agent" in str(err.value) and dataset.id in str(err.value) and "channels x, y" in str(err.value)
    assert err.value.fix is not None and "train-cfm" in err.value.fix
