"""The `chaos` executable: help, exit codes, --json, ls/show/gc, topology."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core import artifacts
from strates.core.workspace import Workspace

runner = CliRunner()


def chaos(*args, env=None):
    return runner.invoke(app, list(args), env=env, catch_exceptions=False)


def test_help_is_instant_no_heavy_imports():
    code = ("import sys; from chaos_cli.app import app; "
            "print(sorted(m for m in ('jax', 'polars', 'numpy', 'gcsfs', 'flax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    res = subprocess.run([sys.executable, "-m", "chaos_cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0
    for command in ("ingest", "ls", "show", "gc", "topology", "completion"):
        assert command in res.stdout


def test_version():
    res = chaos("--version")
    assert res.exit_code == 0 and res.stdout.startswith("chaos ")


def test_missing_artifact_exit_3_with_fix(tmp_path):
    res = chaos("--workspace", str(tmp_path), "show", "dataset/latest")
    assert res.exit_code == 3
    assert "no dataset artifacts" in res.stderr and "chaos ingest" in res.stderr


def test_json_error_payload_on_stdout(tmp_path):
    res = chaos("--json", "--workspace", str(tmp_path), "show", "abcd1234")
    assert res.exit_code == 3
    payload = json.loads(res.stdout)
    assert payload["ok"] is False and payload["error"]["type"] == "ArtifactNotFound"
    assert payload["error"]["exit_code"] == 3


def test_usage_error_exit_2():
    res = chaos("ingest", "--no-such-option")
    assert res.exit_code == 2


def test_bad_split_exit_2(tmp_path):
    res = chaos("ingest", "--workspace", str(tmp_path), "--split", "0.9,0.9,0.9")
    assert res.exit_code == 2
    assert "sum to 1" in res.stderr
    assert not (tmp_path / "dataset").exists()


def test_topology_plan_and_errors():
    res = chaos("topology", "v5p-32", "--json")
    assert res.exit_code == 0
    plan = json.loads(res.stdout)
    assert plan["devices"] == 16 and plan["shape"] == [2, 8, 1]
    res = chaos("topology", "v6e-48")
    assert res.exit_code == 2 and "v6e-32" in res.stderr
    res = chaos("topology", "v6e-64", "--check")  # 8 simulated CPU devices here
    assert res.exit_code == 4
    assert "v6e-64" in res.stderr and "8 cpu" in res.stderr
    res = chaos("topology", "cpu", "--mesh", "data=2,fsdp=4", "--check", "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["shape"] == [2, 4, 1]


def test_ls_show_gc(tmp_path):
    ws = Workspace(tmp_path)
    aid = artifacts.artifact_id("dataset", {"a": 1}, {})
    w = artifacts.begin(ws, "dataset", aid)
    w.write_bytes("x.bin", b"x")
    m = w.commit(config={"a": 1}, parents={})
    leftover = tmp_path / "dataset" / "feedfacefeedface"
    leftover.mkdir(parents=True)
    (leftover / "bars.parquet").write_bytes(b"partial")

    listed = json.loads(chaos("--workspace", str(tmp_path), "ls", "--json").stdout)
    assert [x["id"] for x in listed] == [m.id]
    human = chaos("ls", "--workspace", str(tmp_path))
    assert m.id in human.stdout and "feedface" not in human.stdout
    shown = chaos("show", m.id[:6], "--workspace", str(tmp_path), "--json")
    assert json.loads(shown.stdout)["id"] == m.id
    assert "[files" in chaos("show", "latest", "--workspace", str(tmp_path)).stdout

    dry = json.loads(chaos("gc", "--dry-run", "--json", "--workspace", str(tmp_path)).stdout)
    assert dry["would_remove"] == ["dataset/feedfacefeedface"] and leftover.exists()
    done = chaos("gc", "--workspace", str(tmp_path))
    assert done.exit_code == 0 and not leftover.exists()
    assert (tmp_path / "dataset" / m.id / "manifest.toml").exists()


def test_workspace_from_environment(tmp_path):
    res = chaos("ls", "--json", env={**os.environ, "CHAOS_WORKSPACE": str(tmp_path / "envws")})
    assert res.exit_code == 0 and json.loads(res.stdout) == []
