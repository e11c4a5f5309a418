"""`chaos run` on the user's own files: a yfinance-style daily CSV with US dates (20 years
of an index, NYSE holidays missing) through every stage to the report, then `chaos run
--dataset REF` from the dataset it made."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core import artifacts
from strates.core.workspace import Workspace

pytestmark = pytest.mark.xdist_group("user_data")


def _holidays(year: int) -> set[dt.date]:
    """New Year, Independence Day, Thanksgiving, Christmas (when on a weekday)."""
    november = [dt.date(year, 11, d) for d in range(1, 31) if dt.date(year, 11, d).weekday() == 3]
    return {dt.date(year, 1, 1), dt.date(year, 7, 4), november[3], dt.date(year, 12, 25)}


def write_index(path, *, start=dt.date(2005, 1, 3), end=dt.date(2024, 12, 31), seed=0) -> int:
    """A yfinance-style CSV (Date as MM/DD/YYYY, Open, High, Low, Close, Adj Close, Volume) of
    a heavy-tailed daily index on NYSE-like weekdays; returns its number of rows."""
    rng = np.random.default_rng(seed)
    off = set().union(*(_holidays(y) for y in range(start.year, end.year + 1)))
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    days = [d for d in days if d.weekday() < 5 and d not in off]
    close = 1200 * np.exp(np.cumsum(rng.standard_t(4, len(days)) * 0.007 + 0.0003))
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
    for d, c in zip(days, close, strict=True):
        o = c * np.exp(rng.normal(0, 0.003))
        hi, lo = max(o, c) * np.exp(abs(rng.normal(0, 0.004))), min(o, c) * np.exp(-abs(rng.normal(0, 0.004)))
        lines.append(f"{d:%m/%d/%Y},{o:.2f},{hi:.2f},{lo:.2f},{c:.2f},{c:.2f},{int(rng.uniform(1e9, 5e9))}")
    path.write_text("\n".join(lines) + "\n")
    return len(days)


@pytest.fixture(scope="module")
def user_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("user")
    rows = write_index(root / "sp500.csv")
    ws = Workspace(root / "ws")
    res = CliRunner().invoke(app, ["--workspace", ws.url, "--json", "run", "--source", str(root / "sp500.csv"),
                                   "--preset", "debug", "--set", "multiverse.universes=3"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return ws, rows, json.loads(res.stdout)


def test_a_daily_csv_with_us_dates_ends_in_a_report(user_run):
    ws, rows, out = user_run
    assert [s["stage"] for s in out["stages"]] == ["dataset", "tokenizer", "tokens", "jepa", "cfm", "agent",
                                                   "multiverse", "report"]
    assert not any(s["reused"] for s in out["stages"])
    dataset = artifacts.resolve(ws, out["stages"][0]["ref"])
    assert dataset.summary["rows"] == rows and dataset.summary["interval"] == "1d"
    assert dataset.summary["calendar"] == "weekdays" and 255 < dataset.summary["periods_per_year"] < 259  # 4 holidays
    assert dataset.summary["start"] == dt.datetime(2005, 1, 3, tzinfo=dt.UTC)  # 01/03/2005 read as January 3
    report = artifacts.resolve(ws, out["stages"][-1]["ref"])
    html = ws.read_bytes(f"{report.ref}/report.html").decode()
    assert "sp500" in html and out["report"].endswith(f"{report.id}/report.html")


def test_windows_are_fitted_only_when_the_history_is_short(user_run, tmp_path):
    from strates.data.config import Config as IngestConfig
    from strates.data.ingest import run as ingest
    from strates.pipeline import fit_windows, stages

    _, _, out = user_run
    assert out["adapted"] == []  # ~3,500 daily training bars hold the debug windows many times over
    write_index(tmp_path / "short.csv", start=dt.date(2023, 1, 3))
    ws = Workspace(tmp_path / "ws")
    dataset = ingest(IngestConfig(sources=(str(tmp_path / "short.csv"),)), ws).manifest
    adapted: dict[str, list[str]] = {}
    for a in fit_windows(dataset, {s.kind: s.configure(["debug"]) for s in stages()[1:4]}, ws):
        adapted.setdefault(a.kind, []).append(a.override)
    # two years: ~350 training bars (350 / 8 -> 32-bar windows), ~76 validation bars (38 diagnostic: after 8
    # bars of context, an 11-bar probe target leaves half of them)
    assert adapted == {"tokenizer": ["data.window=32"], "jepa": ["data.window=32", "probe.horizon=11"]}
    small = fit_windows(dataset, {s.kind: s.configure(["small"]) for s in stages()[1:4]}, ws)
    assert [(a.kind, a.override) for a in small] == [  # the small preset's 64-bar SSD chunk shrinks with the window
        ("tokenizer", "data.window=32"), ("jepa", "data.window=32"), ("jepa", "model.chunk=32"),
        ("jepa", "probe.horizon=3")]
    for stage in stages()[1:4]:  # the fitted configs are valid
        stage.configure(["small"], [a.override for a in small if a.kind == stage.kind])


def test_run_from_an_existing_dataset_and_its_errors(user_run):
    ws, _, out = user_run
    dataset = out["stages"][0]["ref"].split("/")[1]
    runner = CliRunner()
    res = runner.invoke(app, ["--workspace", ws.url, "--json", "run", "--dataset", dataset[:8], "--preset", "debug",
                              "--set", "multiverse.universes=2"], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    again = json.loads(res.stdout)["stages"]
    assert [s["reused"] for s in again] == [True] * 6 + [False, False]  # only the multiverse and report are new
    assert again[0]["ref"] == out["stages"][0]["ref"]
    res = runner.invoke(app, ["--workspace", ws.url, "run", "--dataset", dataset, "--source", "x.csv"])
    assert res.exit_code == 2 and "--dataset" in res.stderr
    res = runner.invoke(app, ["--workspace", ws.url, "run", "--dataset", dataset, "--set", "train.steps=3"])
    assert res.exit_code == 2 and "KIND.section.field=value" in res.stderr
