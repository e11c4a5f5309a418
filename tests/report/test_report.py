"""`chaos report`: figures, rendering and escaping on small hand-made inputs, then the whole
report built from a debug pipeline (ingest -> tokenize -> jepa -> cfm -> agent -> multiverse)."""

from __future__ import annotations

import datetime as dt
import html
import json
import re

import numpy as np
import polars as pl
import pytest

from strates.core import artifacts
from strates.core.config import merge_presets
from strates.core.errors import ArtifactNotFound
from strates.core.workspace import Workspace
from strates.report import PRESETS, Config, run
from strates.report import figures
from strates.report.document import MISSING, Code, Figure, Report, Section, Table, Text, duration, num, pct
from strates.report.render import to_html, to_markdown
from strates.report.sources import Sources
from strates.report.stage import SECTION_IDS, build, export

pytestmark = pytest.mark.xdist_group("pipeline")  # shares the session fixture `debug_pipeline`

DEBUG = merge_presets(Config(), PRESETS, ["debug"])
PNG = b"\x89PNG\r\n\x1a\n"
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def _hours(n: int) -> np.ndarray:
    return np.datetime64("2024-03-01T00:00", "us") + np.arange(n) * np.timedelta64(1, "h")


def _decisions(n: int = 30, assets=("A", "B", "C")) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    k = n * len(assets)
    return pl.DataFrame({
        "period": ["test"] * k, "ts": np.repeat(_hours(n), len(assets)), "asset": list(assets) * n,
        "consensus": rng.choice([0.4, 0.6, 0.8, 1.0], k), "bifurcation": rng.uniform(0, 0.5, k),
        "effective_modes": rng.uniform(1, 3, k), "lyapunov": rng.normal(-0.1, 0.1, k),
    })


def _equity(strategies, n: int = 40) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    frames = []
    for s in strategies:
        for c in (0.0, 5.0, 10.0, 20.0):
            pnl = rng.normal(-c * 1e-5, 1e-3, n)
            frames.append(pl.DataFrame({"period": ["test"] * n, "ts": _hours(n), "strategy": [s] * n,
                                        "cost_bps": [c] * n, "pnl": pnl, "equity": np.cumsum(pnl)}))
    return pl.concat(frames)


def _fans(n: int = 6, horizon: int = 4) -> pl.DataFrame:
    assets, ts, steps = np.meshgrid(np.array(list("ABCDE")), _hours(n), np.arange(1, horizon + 1), indexing="ij")
    s = 0.01 * np.sqrt(steps.ravel())
    return pl.DataFrame({"ts": ts.ravel(), "asset": assets.ravel(), "step": steps.ravel(), "q05": -1.6 * s,
                         "q25": -0.7 * s, "q50": 0.0 * s, "q75": 0.7 * s, "q95": 1.6 * s,
                         "realized": 0.004 * steps.ravel()})


# -- figures -----------------------------------------------------------------------------------
def test_every_figure_function_returns_png_bytes():
    bars = pl.DataFrame({"asset": ["A"] * 100 + ["B"] * 100, "ts": np.concatenate([_hours(100)] * 2),
                         "close": np.exp(np.cumsum(np.full(200, 0.001)))}).with_columns(
        pl.col("ts").dt.replace_time_zone("UTC"))
    spans = [("train", T0, T0 + dt.timedelta(hours=60)), ("test", T0 + dt.timedelta(hours=60), T0 + dt.timedelta(hours=100))]
    history = [{"step": s, "loss": 1 / s, "mse": 0.8 / s, "pred": 0.9 / s, "variance": 0.1, "covariance": 0.2}
               for s in range(10, 110, 10)]
    crps = {"crps_h1": 0.01, "crps_h4": 0.02}
    pngs = [
        figures.prices(bars, spans, dpi=50, max_points=60),
        figures.tokenizer({"train": {"ret": 0.9, "body": 0.95}, "validation": {"ret": 0.85, "body": 0.93}}, history, dpi=50),
        figures.jepa_loss(history, {50: 0.2, 100: 0.1}, selected=100, dpi=50),
        figures.crps_ratio({"validation": {"cfm": crps, "bootstrap": crps, "gaussian_rw": crps}}, dpi=50),
        figures.fans(_fans(), assets=4, times=3, dpi=50),
        figures.equity(_equity(("agent", "buy_and_hold")), strategies=("agent",), highlight="agent", dpi=50),
        figures.heatmaps(_decisions(), bins=10, dpi=50),  # 30 decision times averaged into 10 columns
        figures.distributions(_decisions(), threshold=2 / 3, dpi=50),
    ]
    assert all(p.startswith(PNG) and len(p) > 1000 for p in pngs)


def test_figures_cope_with_degenerate_inputs():
    flat = _decisions(n=1, assets=("A",)).with_columns(pl.lit(1.0).alias("consensus"), pl.lit(0.0).alias("bifurcation"),
                                                      pl.lit(0.0).alias("lyapunov"))
    assert figures.heatmaps(flat, dpi=40).startswith(PNG)
    assert figures.distributions(flat, threshold=None, dpi=40).startswith(PNG)
    assert figures.equity(_equity(("deterministic",), n=1), dpi=40).startswith(PNG)
    assert figures.fans(_fans(n=1, horizon=1), assets=1, times=3, dpi=40).startswith(PNG)


def test_thin_keeps_the_ends():
    idx = figures.thin(10_000, 100)
    assert idx[0] == 0 and idx[-1] == 9_999 and len(idx) <= 100
    assert list(figures.thin(5, 100)) == [0, 1, 2, 3, 4]


# -- formatting and rendering ------------------------------------------------------------------
def test_number_formatting():
    assert num(0.0123456, 3) == "0.0123" and num(1234.4, 3) == "1,234" and num(None) == MISSING
    assert num(float("nan")) == "nan" and num(3e-7) == "3.00e-07"
    assert pct(0.123) == "12.3%" and pct(0.00012) == "0.012%" and pct(None) == MISSING
    assert duration(333000) == "3 d 20 h 30 min" and duration(3600) == "1 h" and duration(None) == MISSING


def _report(evil: str) -> Report:
    return Report(f"title {evil}", (("id", evil),), (
        Section("one", f"One {evil}", (Text(evil), Table(("name", "value"), ((evil, "1 | 2"),), caption=evil),
                                       Figure("fig", PNG + b"x" * 10, f"caption {evil}"))),
        Section("two", "Two", (Code(f"config {evil}", f'name = "{evil}"\n'),)),
    ))


def test_rendering_escapes_every_text_and_loads_nothing_external():
    evil = '<script>alert("x")</script> [link](http://example.com) *bold* & more'
    page = to_html(_report(evil))
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert page.count("<img ") == 1 and 'src="data:image/png;base64,' in page
    assert '<h2>1. One &lt;script&gt;' in page and 'id="one"' in page and 'id="two"' in page
    assert "<details><summary>config &lt;script&gt;" in page
    md = to_markdown(_report(evil))
    assert "<script" not in md.split("```")[0]  # outside code fences nothing is raw HTML
    assert "&lt;script&gt;" in md and "1 \\| 2" in md and "\\[link\\]" in md
    assert "![fig](figures/fig.png)" in md
    assert "## 1. One" in md and "## 2. Two" in md


def _manifest(stage: str, aid: str, parents: dict, **fields) -> artifacts.Manifest:
    base = {"config": {}, "metrics": {}, "summary": {}, "fitted": {}}
    base.update(fields)
    return artifacts.Manifest(stage=stage, id=aid, created=T0, parents=parents, files={}, version="0.0.0", **base)


def test_a_report_from_bare_manifests_says_not_recorded(tmp_path):
    """Manifests without metrics or files: every section still renders, naming what is missing."""
    ws = Workspace(tmp_path / "ws")
    ids = {s: f"{i:016x}" for i, s in enumerate(("dataset", "tokenizer", "tokens", "jepa", "cfm", "agent", "multiverse"))}
    manifests = {
        "dataset": _manifest("dataset", ids["dataset"], {}, config={"note": "<script>alert(1)</script>"}),
        "tokens": _manifest("tokens", ids["tokens"], {"dataset": ids["dataset"]}),
        "agent": _manifest("agent", ids["agent"], {"dataset": ids["dataset"]}),
        "multiverse": _manifest("multiverse", ids["multiverse"], {"agent": ids["agent"]}),
    }
    src = Sources(ws, DEBUG, manifests)
    report = build(src, report_id="f" * 16, report_config={})
    assert [s.id for s in report.sections] == list(SECTION_IDS)
    assert not [p for p in src.problems if p.startswith("section")]  # nothing raised
    page = to_html(report)
    assert page.count(MISSING) >= 10
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page


def test_missing_multiverse_names_the_command(tmp_path):
    with pytest.raises(ArtifactNotFound) as err:
        run(DEBUG, Workspace(tmp_path / "empty"))
    assert "chaos multiverse" in err.value.fix


# -- the whole pipeline ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def built(debug_pipeline):
    """The shared debug pipeline (tests/conftest.py) crossed with the debug multiverse preset,
    then reported on (forced, so that this module builds the report itself)."""
    from strates.multiverse import PRESETS as MV_PRESETS
    from strates.multiverse import Config as MvConfig
    from strates.multiverse import run as cross

    ws, out = debug_pipeline
    mv = cross(merge_presets(MvConfig(), MV_PRESETS, ["debug"]), ws, agent=out["agent"].id).manifest
    return ws, mv, run(DEBUG, ws, multiverse=mv.id, force=True)


def _files(ws, m):
    folder = f"{m.stage}/{m.id}"
    return ws.read_bytes(f"{folder}/report.html").decode(), ws.read_bytes(f"{folder}/report.md").decode()


def test_report_has_every_section_and_figure_and_nothing_external(built):
    ws, mv, result = built
    m = result.manifest
    assert not result.reused and m.stage == "report" and m.parents["multiverse"] == mv.id
    assert set(m.parents) == {"multiverse", "agent", "cfm", "jepa", "tokens", "tokenizer", "dataset"}
    assert m.metrics["sections"] == list(SECTION_IDS)
    assert m.summary["problems"] == []
    page, md = _files(ws, m)
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    assert page.count("<img ") == m.metrics["figures"] >= 8
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert len(page.encode()) < 5_000_000
    # the Markdown has the same section headings, and its figures are files of the artifact
    h2 = [html.unescape(h) for h in re.findall(r"<h2>(.*?)</h2>", page)]
    md_h2 = [re.sub(r"\\(.)", r"\1", h) for h in re.findall(r"^## (\d+\. .*)$", md, re.M)]
    assert h2 == md_h2 and len(h2) == len(SECTION_IDS)
    linked = re.findall(r"\]\((figures/[^)]+\.png)\)", md)
    assert len(linked) == m.metrics["figures"]
    for rel in linked:
        assert rel in m.files and ws.read_bytes(f"report/{m.id}/{rel}").startswith(PNG)
    names = {f.removeprefix("figures/").removesuffix(".png") for f in m.summary["figures"]}
    assert names >= {"data-prices", "tokenizer", "jepa-loss", "cfm-crps", "cfm-fans", "agent-equity-test",
                     "multiverse-heatmaps", "multiverse-distribution", "multiverse-equity"}


def test_report_is_reused_and_exported(built, tmp_path):
    ws, mv, result = built
    again = run(DEBUG, ws, multiverse=mv.id)
    assert again.reused and again.manifest.id == result.manifest.id
    out = export(ws, result.manifest, str(tmp_path / "out" / "r.html"))
    assert out["html"].endswith("r.html") and out["markdown"].endswith("r.md")
    assert (tmp_path / "out" / "r.html").read_bytes() == ws.read_bytes(f"report/{result.manifest.id}/report.html")
    assert len(list((tmp_path / "out" / "figures").glob("*.png"))) == result.manifest.metrics["figures"]


def test_cli_report_json(built, tmp_path):
    from typer.testing import CliRunner

    from chaos_cli.app import app

    if "report" not in [c.name for c in app.registered_commands]:
        pytest.skip("`report` is not registered in chaos_cli/app.py yet")
    ws, mv, result = built
    res = CliRunner().invoke(app, ["--workspace", ws.url, "--json", "report", "--preset", "debug", "--multiverse", mv.id,
                                   "--out", str(tmp_path / "copy")], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["reused"] and out["ref"] == result.manifest.ref
    assert out["html"].endswith("report.html") and out["markdown"].endswith("report.md")
    assert out["sections"] == list(SECTION_IDS)
    assert (tmp_path / "copy" / "report.html").exists() and (tmp_path / "copy" / "report.md").exists()
