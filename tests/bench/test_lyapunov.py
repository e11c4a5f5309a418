"""`chaos bench lyapunov` on the test subset (a chaotic flow, a limit cycle, an
Ornstein–Uhlenbeck process) through the debug chain: the per-system rows and the scores,
the artifact and its reuse, the report, and a refusal. The estimates of the debug chain
mean nothing; the full run's figures are in README.md."""

from __future__ import annotations

import io
import json
import math

import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.bench import systems
from strates.bench.config import SUBSET
from strates.core import artifacts
from strates.core.workspace import Workspace

pytestmark = pytest.mark.xdist_group("bench")


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("bench")
    env = {"CHAOS_JAX_CACHE": str(root / "jax")}  # compiled once for the three systems, not in the user's cache
    out = CliRunner().invoke(app, ["--workspace", str(root / "ws"), "bench", "lyapunov", "-p", "debug", "--json"],
                             env=env)
    assert out.exit_code == 0, out.output
    return root, env, json.loads(out.stdout)


def test_each_system_gets_a_row_with_both_estimates(bench):
    _, _, got = bench
    rows = got["systems"]
    assert [r["name"] for r in rows] == list(SUBSET)
    for r in rows:
        s = systems.system(r["name"])
        assert r["kind"] == s.kind and r["lambda_true"] == pytest.approx(s.lambda_per_period)
        assert math.isfinite(r["lambda_multiverse"]) and math.isfinite(r["lambda_rosenstein"])
        assert r["seconds"] > 0 and r["multiverse"].startswith("multiverse-futures/")
    for name in ("multiverse", "rosenstein"):
        score = got["summary"][name]
        assert score["systems"] == 3 and score["chaotic"] == 1 and 0 <= score["sign_accuracy"] <= 1
    # Rosenstein reads the limit cycle as neutral and Lorenz as chaotic, on the raw series
    ros = {r["name"]: r["lambda_rosenstein"] for r in rows}
    assert ros["Lorenz"] > 0.5 and abs(ros["VanDerPol"]) < 0.2


def test_the_multiverse_estimate_is_the_futures_artifacts_reading(bench):
    root, _, got = bench
    ws = Workspace(str(root / "ws"))
    for r in got["systems"]:
        mv = artifacts.resolve(ws, r["multiverse"].split("/")[1], stage="multiverse-futures")
        per_bar = mv.metrics["lyapunov_per_bar"]
        assert r["lambda_multiverse"] == pytest.approx(per_bar * 12)
        assert per_bar >= mv.metrics["lyapunov_floor"] - 1e-6  # never below what an ignored state reads
    table = pl.read_parquet(io.BytesIO(ws.read_bytes(f"bench/{got['ref'].split('/')[1]}/systems.parquet")))
    assert table["name"].to_list() == list(SUBSET)


def test_a_second_run_reuses_the_artifact_and_the_report_draws_it(bench):
    root, env, got = bench
    again = CliRunner().invoke(app, ["--workspace", str(root / "ws"), "bench", "lyapunov", "-p", "debug", "--json"],
                               env=env)
    assert again.exit_code == 0 and json.loads(again.stdout)["reused"] is True
    report = CliRunner().invoke(app, ["--workspace", str(root / "ws"), "report", "--bench", got["ref"], "--json"])
    assert report.exit_code == 0, report.output
    page = Workspace(str(root / "ws")).read_bytes(json.loads(report.stdout)["html"].split("/ws/", 1)[1]).decode()
    assert "Lyapunov exponents of known systems" in page and "bench_lyapunov" in page
    assert "Spearman" in page and "VanDerPol" in page


def test_an_unknown_system_exits_2_before_any_work(tmp_path):
    out = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "bench", "lyapunov", "--systems",
                                   "Lorenz,Lorentz", "-p", "debug"])
    assert out.exit_code == 2 and "Lorentz" in out.output
    assert not (tmp_path / "ws" / "bench").exists() and not (tmp_path / "ws" / "dataset").exists()


def test_json_is_strict_when_an_estimate_has_no_finite_value(bench):
    """With one chaotic system Spearman ρ is undefined: --json prints null, never NaN."""
    _, _, got = bench
    assert got["summary"]["multiverse"]["spearman"] is None and got["summary"]["rosenstein"]["spearman"] is None
