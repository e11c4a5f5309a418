"""Generic series through the pipeline from the command line: two Lorenz systems (three
channels each, one Parquet file with a `system` column, a regular index) through `chaos
ingest --format series`, `chaos tokenize`, `chaos train-jepa` and `chaos train-cfm` with the
debug presets; `chaos train-agent` refuses the series dataset (exit 2)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core import artifacts
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.fsq.artifact import read_tokenizer, token_table

pytestmark = pytest.mark.xdist_group("series")
ROWS = 700


def lorenz(n: int, *, seed: int, dt: float = 0.02, substeps: int = 4) -> np.ndarray:
    """[n, 3] samples every `dt` of the Lorenz system (sigma 10, rho 28, beta 8/3), RK4."""
    def f(s):
        x, y, z = s
        return np.array([10.0 * (y - x), x * (28.0 - z) - y, x * y - 8.0 / 3.0 * z])

    s = np.array([1.0, 1.0, 20.0]) + np.random.default_rng(seed).normal(size=3)
    h = dt / substeps
    out = np.empty((n, 3))
    for i in range(n * substeps + 200):  # 200 steps onto the attractor first
        k1 = f(s)
        k2 = f(s + h / 2 * k1)
        k3 = f(s + h / 2 * k2)
        k4 = f(s + h * k3)
        s = s + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        j = i - 200
        if j >= 0 and j % substeps == substeps - 1:
            out[j // substeps] = s
    return out


def _cli(ws: Workspace, *args: str):
    return CliRunner().invoke(app, ["--workspace", ws.url, "--json", *args])


@pytest.fixture(scope="module")
def series_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("series")
    parts = [pl.DataFrame({"system": name, **dict(zip("xyz", lorenz(ROWS, seed=k).T, strict=True))})
             for k, name in enumerate(("lorenz_a", "lorenz_b"))]
    pl.concat(parts).write_parquet(root / "lorenz.parquet")
    ws = Workspace(root / "ws")
    out = {}
    for stage, args in (
        ("dataset", ["ingest", "--format", "series", "--source", str(root / "lorenz.parquet"), "--dt", "1h"]),
        ("tokens", ["tokenize", "--preset", "debug"]),
        ("jepa", ["train-jepa", "--preset", "debug"]),
        ("cfm", ["train-cfm", "--preset", "debug", "--set", "coupling.compare=false"]),
    ):
        res = _cli(ws, *args)
        assert res.exit_code == 0, res.stderr
        printed = json.loads(res.stdout)
        out[stage] = artifacts.resolve(ws, (printed[stage] if stage == "tokens" else printed)["ref"])
    return ws, out, parts


def test_the_series_dataset_is_tokenized_on_its_channel_features(series_run):
    ws, out, _ = series_run
    dataset = data_artifact.read(out["dataset"])
    assert dataset.is_series and dataset.summary.channels == ("x", "y", "z") and dataset.summary.n_assets == 2
    tokens = out["tokens"]
    tok = read_tokenizer(artifacts.resolve(ws, tokens.parents["tokenizer"], stage="tokenizer"))
    assert tok.summary.features == ("d_x", "z_x", "d_y", "z_y", "d_z", "z_z")
    assert tok.metrics.train is not None and set(tok.metrics.train.r2) == set(tok.summary.features)
    table = token_table(ws, tokens)
    assert table.height == 2 * ROWS and [c for c in table.columns if c.startswith("f_")] == [
        f"f_{n}" for n in tok.summary.features]
    assert np.isfinite(table.select(pl.col("^f_.*$")).to_numpy()).all()


def test_the_first_channel_plays_the_price(series_run):
    from strates.jepa.data import load_sequences

    ws, out, parts = series_run
    sequences, macro, _ = load_sequences(ws, out["tokens"])
    assert [s.asset for s in sequences] == ["lorenz_a", "lorenz_b"] and macro == ()
    for s, part in zip(sequences, parts, strict=True):
        x = part["x"].to_numpy()
        np.testing.assert_allclose(s.log_returns, np.diff(x, prepend=x[0]))
        assert (s.log_range == 0).all() and s.features.shape == (ROWS, 6)


def test_train_cfm_runs_unchanged_and_scores_the_first_channel(series_run):
    from strates.cfm import artifact as cfm_artifact

    _, out, _ = series_run
    cfm = cfm_artifact.read(out["cfm"])
    assert cfm.manifest.parents["dataset"] == out["dataset"].id
    assert cfm.fitted.end <= data_artifact.read(out["dataset"]).fold().validation.start
    test = cfm.metrics.test
    assert test is not None and test.states > 0  # the first channel's increments, scored on the test period
    assert data_artifact.read(out["dataset"]).fold().test.start <= test.start
    assert set(test.forecasts) >= {"cfm", "random_walk", "bootstrap", "garch_t"}
    assert all(np.isfinite(s.value) for row in test.skill.values() for s in row.values())


def test_train_agent_refuses_a_series_dataset(series_run):
    ws, out, _ = series_run
    res = _cli(ws, "train-agent", "--cfm", out["cfm"].id, "--preset", "debug")
    assert res.exit_code == 2, res.stderr
    assert "[series-dataset]" in res.stderr and out["dataset"].id in res.stderr and "fix:" in res.stderr
    assert not artifacts.list_artifacts(ws, "agent")


def test_chaos_run_on_a_series_skips_the_agent_and_crosses_the_futures_alone(series_run):
    ws, out, _ = series_run
    res = _cli(ws, "run", "--dataset", out["dataset"].id, "--preset", "debug", "--no-fit",
               "--set", "cfm.coupling.compare=false")
    assert res.exit_code == 0, res.stderr
    stages = {s["stage"]: s for s in json.loads(res.stdout)["stages"]}
    assert "agent" not in stages and "agent: skipped" in res.stderr
    assert all(stages[k]["reused"] for k in ("dataset", "tokenizer", "tokens", "jepa", "cfm"))
    futures = artifacts.resolve(ws, stages["multiverse-futures"]["ref"])
    assert futures.stage == "multiverse-futures" and futures.parents["cfm"] == out["cfm"].id
    assert set(futures.metrics["per_asset"]) == {"lorenz_a", "lorenz_b"}
    report = artifacts.resolve(ws, stages["report"]["ref"])
    page = ws.read_bytes(f"report/{report.id}/report.html").decode()
    assert "the futures alone" in page and "Lyapunov proxy" in page and "first channel (x)" in page
