"""Every file of the malformed corpus is rejected by `chaos ingest` with its own rule,
exit code 2, and the workspace left exactly as it was (earlier artifacts untouched)."""

from __future__ import annotations

import hashlib
import json
import pathlib

import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core.workspace import Workspace
from strates.data.config import Config
from strates.data.embedded import EmbeddedSpec
from strates.data.ingest import run

CORPUS = pathlib.Path(__file__).resolve().parents[1] / "data" / "malformed"
FILES = sorted(p for p in CORPUS.iterdir() if p.is_file()) if CORPUS.exists() else []


def _rule_of(path: pathlib.Path) -> str:
    return path.name.split(".")[0]


def _snapshot(root: pathlib.Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    root = tmp_path_factory.mktemp("ws")
    run(Config(embedded=EmbeddedSpec(assets=2, bars=200)), Workspace(root))
    return root


def test_corpus_is_not_empty():
    assert len(FILES) >= 12


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_malformed_file_rejected_with_its_rule(path, populated):
    before = _snapshot(populated)
    res = CliRunner().invoke(app, ["--workspace", str(populated), "--json", "ingest", "--source", str(path)])
    assert res.exit_code == 2, (res.stdout, res.stderr)
    err = json.loads(res.stdout)["error"]
    assert err["rule"] == _rule_of(path)
    assert err["file"] and path.name in err["file"]
    assert err["fix"]
    assert f"[{_rule_of(path)}]" in res.stderr and "fix:" in res.stderr
    assert _snapshot(populated) == before
