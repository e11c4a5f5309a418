"""The set-up picks a Python >= 3.12 (jax >= 0.12 needs it) and refuses older ones."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tomllib
from importlib import metadata

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIND = ROOT / "scripts" / "find-python"


def _fake_python(folder: pathlib.Path, name: str, ok: bool) -> pathlib.Path:
    path = folder / name
    # answers the version check the way a real interpreter of that version would
    path.write_text(f"#!/bin/sh\nexit {0 if ok else 1}\n")
    path.chmod(0o755)
    return path


def _run(path_dirs, tmp_path, **env):
    base = {"PATH": os.pathsep.join(map(str, path_dirs)), "HOME": str(tmp_path), **env}
    return subprocess.run(["/bin/bash", str(FIND)], env=base, capture_output=True, text=True)


def test_refuses_python_older_than_3_12(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_python(bin_dir, "python3", ok=False)
    res = _run([bin_dir], tmp_path)  # HOME=tmp_path: no pyenv versions either
    assert res.returncode == 1, res.stdout
    assert "3.12" in res.stderr and "PYTHON=" in res.stderr


def test_prefers_explicit_and_versioned_interpreters(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_python(bin_dir, "python3", ok=False)
    good = _fake_python(bin_dir, "python3.12", ok=True)
    res = _run([bin_dir], tmp_path)
    assert res.returncode == 0 and res.stdout.strip() == str(good)
    explicit = _fake_python(tmp_path, "mypython", ok=True)
    res = _run([bin_dir], tmp_path, PYTHON=str(explicit))
    assert res.stdout.strip() == str(explicit)


def test_package_metadata_and_interpreter_agree():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["requires-python"] == ">=3.12"
    assert sys.version_info >= (3, 12)
    assert any(d.startswith("jax>=0.12") for d in meta["dependencies"])
    assert meta["scripts"]["chaos"] == "chaos_cli.app:main"


def test_distribution_name_and_installed_version():
    """`chaos` on PyPI is someone else's project: ours installs as `chaos-strates`, command `chaos`."""
    import strates

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["name"] == strates.DISTRIBUTION == "chaos-strates"
    installed = metadata.distribution(strates.DISTRIBUTION)
    assert installed.version == meta["version"] == strates.__version__
    scripts = {e.name: e.value for e in installed.entry_points if e.group == "console_scripts"}
    assert scripts == {"chaos": "chaos_cli.app:main"}


def test_xdist_groups_keep_a_group_on_one_worker(tmp_path):
    # the suite's heavy module fixtures are built once only if `--dist loadgroup` really groups
    # (pytest 9.2 with pytest-xdist 3.8 does not: see the pin in pyproject.toml)
    (tmp_path / "test_grouped.py").write_text(
        "import os, pytest\n"
        "pytestmark = pytest.mark.xdist_group('one')\n"
        + "".join(f"def test_{i}():\n    print('worker', os.environ['PYTEST_XDIST_WORKER'])\n" for i in range(4)))
    out = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-v", "-p",
                          "no:cacheprovider", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    workers = {line.split("]")[0].lstrip("[") for line in out.stdout.splitlines() if "PASSED" in line}
    assert len(workers) == 1, out.stdout
