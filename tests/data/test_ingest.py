"""`chaos ingest` end to end: the embedded dataset and real files, on local and gs:// workspaces."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap

import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core import artifacts
from strates.core.workspace import Workspace
from strates.data.config import Config, MacroSource
from strates.data.embedded import EmbeddedSpec
from strates.data.ingest import load_bars, run
from strates.data.schema import BAR_COLUMNS

SMALL = EmbeddedSpec(assets=3, bars=600)


def test_embedded_dataset_artifact(workspace_url):
    ws = Workspace(workspace_url)
    result = run(Config(embedded=SMALL), ws)
    m = result.manifest
    assert not result.reused and m.stage == "dataset"
    bars = load_bars(ws, m)
    assert bars.columns[: len(BAR_COLUMNS)] == list(BAR_COLUMNS)
    assert {c for c in bars.columns if c.startswith("macro_")} == {"macro_rate_10y", "macro_cot_net", "macro_cpi_yoy"}
    assert bars.height == 3 * 600 == m.summary["rows"] == m.metrics["rows"]
    assert bars.select(pl.col("ts").is_sorted().over("asset").all()).item()
    assert m.summary["interval"] == "1h" and m.summary["interval_seconds"] == 3600
    assert set(m.summary["assets"]) == set(bars["asset"].unique())
    assert all(a["rows"] == 600 for a in m.summary["assets"].values())
    assert m.summary["calendar"] == "24/7" and m.summary["periods_per_year"] == pytest.approx(8766)
    assert all(not v["vintage"] and not v["revisions_may_leak"] for v in m.summary["macro"].values())  # synthetic
    fold = m.summary["split"]["folds"][0]
    assert fold["train"]["start"] < fold["validation"]["start"] < fold["test"]["start"] < fold["test"]["end"]
    # files listed in the manifest exist with the recorded hashes
    import hashlib

    for name, entry in m.files.items():
        data = ws.read_bytes(f"dataset/{m.id}/{name}")
        assert hashlib.sha256(data).hexdigest() == entry.sha256 and len(data) == entry.size
    # same inputs -> same id, reused; --force rewrites under the same id
    again = run(Config(embedded=SMALL), ws)
    assert again.reused and again.manifest.id == m.id and again.manifest.created == m.created
    forced = run(Config(embedded=SMALL), ws, force=True)
    assert not forced.reused and forced.manifest.id == m.id and forced.manifest.created > m.created
    other = run(Config(embedded=SMALL, split="walk-forward:3"), ws)
    assert other.manifest.id != m.id and len(other.manifest.summary["split"]["folds"]) == 3


def test_macro_join_never_sees_the_future(tmp_path):
    ws = Workspace(tmp_path)
    m = run(Config(embedded=SMALL), ws).manifest
    bars = load_bars(ws, m)
    macro = pl.read_parquet(io.BytesIO(ws.read_bytes(f"dataset/{m.id}/macro.parquet")))
    for series in macro["series"].unique():
        obs = macro.filter(pl.col("series") == series).sort("available")
        joined = bars.select("ts", pl.col(f"macro_{series}").alias("v")).drop_nulls()
        assert joined.height > 0
        # each joined value equals the latest value published at or before the bar
        expect = joined.sort("ts").join_asof(obs.select("available", "value"), left_on="ts", right_on="available")
        assert (expect["v"] == expect["value"]).all()
        assert (expect["available"] <= expect["ts"]).all()


def test_ingest_files_with_macro(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    pl.DataFrame(
        {
            "Date": ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"],
            "Open": [10.0, 11, 12, 11, 12, 13], "High": [11.5, 12, 12.5, 12, 13, 14],
            "Low": [9.5, 10.5, 10.5, 10.5, 11.5, 12.5], "Close": [11.0, 12, 11, 12, 13, 13.5],
            "Adj Close": [10.9, 11.9, 10.9, 11.9, 12.9, 13.4], "Volume": [100, 120, 90, 80, 95, 101],
        }
    ).write_csv(src / "ACME.csv")
    (tmp_path / "DGS10.csv").write_text("observation_date,DGS10\n2024-01-01,4.0\n2024-01-03,4.1\n2024-01-05,.\n"
                                        "2024-01-08,4.3\n")
    ws = Workspace(tmp_path / "ws")
    cfg = Config(sources=(str(src),), macro=(MacroSource(str(tmp_path / "DGS10.csv")),), split="0.5,0.25,0.25")
    m = run(cfg, ws).manifest
    bars = load_bars(ws, m)
    assert bars["asset"].unique().to_list() == ["ACME"]
    assert "Adj Close" not in bars.columns and "adj_close" not in bars.columns
    # DGS10 (H.15) is published the next business day: a value is seen from 00:00 UTC the
    # day after that (01-01, a holiday -> published 01-03 -> seen 01-04; 01-03 -> 01-05)
    values = dict(zip(bars["ts"].dt.strftime("%m-%d"), bars["macro_DGS10"], strict=True))
    assert values["01-02"] is None and values["01-03"] is None and values["01-04"] == 4.0
    assert values["01-05"] == 4.1 and values["01-08"] == 4.1 and values["01-09"] == 4.1
    dgs10 = m.summary["macro"]["DGS10"]
    assert dgs10["vintage"] is False and dgs10["revisions_may_leak"] is True and "may leak" in dgs10["note"]
    assert any("DGS10" in n and "revisions may leak" in n for n in m.summary["notes"])
    assert m.summary["interval"] == "1d"
    # the weekend 01-05 -> 01-08 is not a gap: the calendar is read from the data
    assert m.summary["assets"]["ACME"]["calendar"] == m.summary["calendar"] == "weekdays"
    assert m.summary["gaps"]["count"] == 0 and m.summary["assets"]["ACME"]["gaps"] == 0
    files = m.config["files"]
    assert files[0]["path"].endswith("ACME.csv") and len(files[0]["sha256"]) == 64
    assert any("Adj Close" in n for n in m.summary["notes"])
    # changing a file's content changes the id
    (src / "ACME.csv").write_text((src / "ACME.csv").read_text().replace("101", "102"))
    assert run(cfg, ws).manifest.id != m.id


_CRASH = textwrap.dedent(
    """
    import sys, time
    from strates.core.workspace import Workspace
    from strates.data.config import Config
    from strates.data.embedded import EmbeddedSpec
    from strates.data.ingest import run
    def hang():
        print("READY", flush=True)
        time.sleep(60)
    run(Config(embedded=EmbeddedSpec(assets=2, bars=300)), Workspace(sys.argv[1]), before_manifest=hang)
    """
)


def test_killed_ingest_leaves_no_artifact(workspace_url):
    ws = Workspace(workspace_url)
    proc = subprocess.Popen([sys.executable, "-c", _CRASH, workspace_url], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert artifacts.list_artifacts(ws) == []
    (left,) = artifacts.leftovers(ws)
    assert ws.exists(f"{left}/bars.parquet")
    res = CliRunner().invoke(app, ["--workspace", workspace_url, "ls", "--json"])
    assert json.loads(res.stdout) == []
    res = CliRunner().invoke(app, ["--workspace", workspace_url, "gc", "--json"])
    assert json.loads(res.stdout)["removed"] == [left]
    assert artifacts.leftovers(ws) == []


def test_cli_ingest_embedded_then_reuse(tmp_path):
    runner = CliRunner()
    ws = str(tmp_path / "ws")
    res = runner.invoke(app, ["--workspace", ws, "--json", "ingest", "--seed", "3"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    first = json.loads(res.stdout)
    assert first["ok"] and not first["reused"] and first["summary"]["n_assets"] == 6
    res = runner.invoke(app, ["--workspace", ws, "ingest", "--seed", "3"], catch_exceptions=False)
    assert res.exit_code == 0 and "reused" in res.stdout and first["id"] in res.stdout
    assert "next: chaos tokenize" in res.stdout


def _bars_csv(close_last="13.5") -> str:
    rows = ["Date,Open,High,Low,Close,Volume"]
    closes = ["11.0", "12.0", "11.0", close_last]
    for i, close in enumerate(closes):
        rows.append(f"2024-01-0{i + 2},10.0,14.0,9.0,{close},100")
    return "\n".join(rows) + "\n"


def test_sources_on_gcs(gcs_emulator):
    import gcsfs

    from strates.core.errors import InvalidInput
    from strates.core.workspace import storage_options

    raw = f"gs://{gcs_emulator.bucket}/raw-{os.getpid()}"
    fs = gcsfs.GCSFileSystem(**storage_options(raw))
    fs.pipe_file(f"{raw}/ACME.csv", _bars_csv().encode())
    fs.pipe_file(f"{raw}/sub/BOLT.csv", _bars_csv("12.5").encode())
    ws = Workspace(f"gs://{gcs_emulator.bucket}/ws-sources-{os.getpid()}")
    m = run(Config(sources=(f"{raw}/",), split="0.5,0.25,0.25"), ws).manifest
    assert sorted(m.summary["assets"]) == ["ACME", "BOLT"]
    assert [f["path"] for f in m.config["files"]] == [f"{raw}/ACME.csv", f"{raw}/sub/BOLT.csv"]
    # a broken remote file is named by its gs:// URL, not by a temporary copy
    fs.pipe_file(f"{raw}/sub/BAD.csv", _bars_csv("-1").encode())
    with pytest.raises(InvalidInput) as info:
        run(Config(sources=(f"{raw}/",), split="0.5,0.25,0.25"), ws)
    assert info.value.file == f"{raw}/sub/BAD.csv"
    assert f"{raw}/sub/BAD.csv" in str(info.value) and "chaos-ingest-" not in str(info.value)
