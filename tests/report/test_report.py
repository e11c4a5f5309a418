"""`chaos report`: figures, rendering and escaping on small hand-made inputs, then the whole
report built from a debug pipeline (ingest -> tokenize -> jepa -> cfm -> agent -> multiverse)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
import re

import numpy as np
import polars as pl
import pytest

from strates.core import artifacts
from strates.core.config import merge_presets, to_dict
from strates.core.errors import ArtifactNotFound, InvalidInput
from strates.core.workspace import Workspace
from strates.report import PRESETS, STAGE, Config, artifact, figures, run
from strates.report.document import MISSING, Code, Figure, Report, Section, Table, Text, duration, num, pct
from strates.report.render import table_html, to_html, to_markdown
from strates.report.sources import KINDS, Sources, gather
from strates.report.stage import SECTION_IDS, compose

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
        "lyapunov_per_bar": rng.normal(-0.1, 0.1, k), "sensitivity": rng.uniform(0, 2, k),
        "modes": rng.choice([1.0, 2.0], k),
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
    spans = [("train", T0, T0 + dt.timedelta(hours=60)),
             ("test", T0 + dt.timedelta(hours=60), T0 + dt.timedelta(hours=100))]
    history = [{"step": s, "loss": 1 / s, "mse": 0.8 / s, "pred": 0.9 / s, "variance": 0.1, "covariance": 0.2}
               for s in range(10, 110, 10)]
    skill = {"h1": {"random_walk": (0.05, 0.01, 0.09), "garch_t": (-0.02, -0.06, 0.01)},
             "h4": {"random_walk": (0.02, -0.01, 0.05), "garch_t": (-0.04, -0.09, 0.0)}}
    pngs = [
        figures.prices(bars, spans, dpi=50, max_points=60),
        figures.tokenizer({"train": {"ret": 0.9, "body": 0.95}, "validation": {"ret": 0.85, "body": 0.93}}, history,
                          dpi=50),
        figures.jepa_loss(history, {50: 0.2, 100: 0.1}, selected=100, dpi=50),
        figures.skill({"validation": skill, "test": skill}, dpi=50),
        figures.pit({"validation": {"cfm": (0.5, 1.5, 1.0, 1.0), "garch_t": (1.0, 1.0, 1.0, 1.0)}}, horizon=4, dpi=50),
        figures.fans(_fans(), assets=4, times=3, dpi=50),
        figures.equity(_equity(("agent", "buy_and_hold")), strategies=("agent",), highlight="agent", dpi=50),
        figures.heatmaps(_decisions(), bins=10, dpi=50),  # 30 decision times averaged into 10 columns
        figures.distributions(_decisions(), threshold=2 / 3, dpi=50),
    ]
    assert all(p.startswith(PNG) and len(p) > 1000 for p in pngs)


def test_figures_cope_with_degenerate_inputs():
    flat = _decisions(n=1, assets=("A",)).with_columns(pl.lit(1.0).alias("consensus"), pl.lit(0.0).alias("bifurcation"),
                                                      pl.lit(0.0).alias("lyapunov_per_bar"))
    assert figures.heatmaps(flat, dpi=40).startswith(PNG)
    assert figures.distributions(flat, threshold=None, dpi=40).startswith(PNG)
    assert figures.equity(_equity(("deterministic",), n=1), dpi=40).startswith(PNG)
    assert figures.fans(_fans(n=1, horizon=1), assets=1, times=3, dpi=40).startswith(PNG)
    # a period without horizons, a NaN interval, a forecast not scored in one period: drawn, not raised
    nan = float("nan")
    assert figures.skill({"validation": {"h1": {"bootstrap": (0.1, nan, nan)}}, "test": {}}, dpi=40).startswith(PNG)
    assert figures.pit({"validation": {"cfm": (2.0, 0.0)}, "test": {"garch_t": (1.0, 1.0)}}, horizon=1,
                       dpi=40).startswith(PNG)
    with pytest.raises(ValueError, match="at least one period"):
        figures.skill({}, dpi=40)
    with pytest.raises(ValueError, match="at least one period with a forecast"):
        figures.pit({"validation": {}}, horizon=1, dpi=40)


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
        Section("one", f"One {evil}", (Text(evil), Table(("name", "value"), ((evil, "1 | 2"),), caption=evil,
                                                         title=f"title {evil}"),
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
    assert '<p class="table-title">title &lt;script&gt;' in page
    md = to_markdown(_report(evil))
    assert "<script" not in md.split("```")[0]  # outside code fences nothing is raw HTML
    assert "&lt;script&gt;" in md and "1 \\| 2" in md and "\\[link\\]" in md
    assert "**title &lt;script&gt;" in md
    assert "![fig](figures/fig.png)" in md
    assert "## 1. One" in md and "## 2. Two" in md


def test_a_report_without_artifacts_says_not_recorded(tmp_path):
    """Sources holding no artifact: every section still renders, naming what is missing."""
    src = Sources(Workspace(tmp_path / "ws"), DEBUG)
    report = compose(src, report_id="f" * 16, report_config={})
    assert [s.id for s in report.sections] == list(SECTION_IDS)
    assert report.title == "chaos report" and not report.figures
    page = to_html(report)
    for command in ("chaos ingest", "chaos tokenize", "chaos train-jepa", "chaos train-cfm", "chaos train-agent",
                    "chaos multiverse"):
        assert f"produced by `{command}`" in page
    assert page.count(MISSING) == len(SECTION_IDS) - 1 + len(KINDS)  # a note per section, a provenance row per kind


def test_missing_multiverse_names_the_command(tmp_path):
    with pytest.raises(ArtifactNotFound) as err:
        run(DEBUG, Workspace(tmp_path / "empty"))
    assert "chaos multiverse" in str(err.value.fix)


def test_invalid_config_value_exits_2(tmp_path):
    from typer.testing import CliRunner

    from chaos_cli.app import app

    res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "report", "--set", "dpi=10"])
    assert res.exit_code == 2
    assert "dpi must be between 40 and 300" in res.stderr


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
    assert set(m.parents) == set(KINDS)
    assert m.metrics["sections"] == list(SECTION_IDS)
    assert m.summary["problems"] == []
    page, md = _files(ws, m)
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    assert MISSING not in page  # every artifact and file of a whole pipeline is there
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
    assert names >= {"data-prices", "tokenizer", "jepa-loss", "cfm-skill", "cfm-pit", "cfm-fans", "agent-equity-test",
                     "multiverse-heatmaps", "multiverse-distribution", "multiverse-equity"}


def test_report_shows_the_strates_own_tables(built):
    """Each table is defined once, by its strate: the report shows the very rows its CLI prints."""
    from strates.agent import artifact as agent_artifact
    from strates.cfm import artifact as cfm_artifact
    from strates.data import artifact as data_artifact
    from strates.fsq import artifact as fsq_artifact
    from strates.jepa import artifact as jepa_artifact
    from strates.multiverse import artifact as multiverse_artifact

    ws, _, result = built
    page, _ = _files(ws, result.manifest)
    m = {kind: artifacts.resolve(ws, aid, stage=kind) for kind, aid in result.manifest.parents.items()}
    agent, mv = agent_artifact.read(m["agent"]), multiverse_artifact.read(m["multiverse"])
    c = cfm_artifact.read(m["cfm"])
    cfm_tables = [t for name in ("validation", "test") for t in (cfm_artifact.scores_table(c, name),
                  cfm_artifact.skill_table(c, name), cfm_artifact.calibration_table(c, name)) if t is not None]
    assert len(cfm_tables) == 6  # the debug pipeline scores both periods
    assert re.search(r"beats itself given a shuffled condition at every validation horizon: (yes|no) ", page)
    assert f"factor {c.metrics.spread:.3f}" in page
    shown = [*data_artifact.tables(data_artifact.read(m["dataset"])),
             *fsq_artifact.tables(fsq_artifact.read_tokenizer(m["tokenizer"]), fsq_artifact.read_tokens(m["tokens"])),
             *jepa_artifact.tables(jepa_artifact.read(m["jepa"])), *agent_artifact.tables(agent),
             *multiverse_artifact.tables(mv), *cfm_artifact.tables(c), *cfm_tables]
    for t in shown:
        assert table_html(t) in page, t.title
    assert len(agent_artifact.tables(agent)) >= 1 and len(multiverse_artifact.tables(mv)) == 4


def test_report_id_is_the_hash_of_its_config_and_whole_lineage(built):
    ws, mv, result = built
    lineage = {"multiverse": mv.id, **{k: artifacts.resolve(ws, v, stage=k).id
                                        for k, v in result.manifest.parents.items() if k != "multiverse"}}
    assert set(lineage) == set(STAGE.parents)
    assert result.manifest.id == artifacts.artifact_id("report", to_dict(DEBUG), lineage)


def test_report_artifact_reads_back_typed(built):
    ws, mv, result = built
    r = artifact.load(ws, result.manifest.id)
    assert r.ref == result.manifest.ref and r.config == DEBUG
    assert r.summary.multiverse == mv.ref and r.summary.problems == ()
    assert r.metrics.sections == SECTION_IDS and r.metrics.figures == len(r.summary.figures) >= 8
    assert r.metrics.html_bytes == len(ws.read_bytes(f"report/{r.id}/{r.summary.html}"))
    (t,) = artifact.tables(ws, r)
    assert t.rows[0] == ("html", ws.uri("report", r.id, "report.html")) and f"{r.metrics.figures} figures" in t.title


def test_an_old_schema_input_fails_with_the_fix(built):
    """A manifest of an older schema is refused before any work, naming the command that rebuilds it."""
    ws, mv, _ = built
    old = dataclasses.replace(mv, schema=1)
    with pytest.raises(InvalidInput) as err:
        run(DEBUG, ws, multiverse=old, force=True)
    assert "schema 1" in err.value.message and "--force" in str(err.value.fix)
    agent = artifacts.resolve(ws, mv.parents["agent"], stage="agent")
    with pytest.raises(InvalidInput) as err:
        gather(ws, DEBUG, {"agent": dataclasses.replace(agent, schema=1)})
    assert "chaos train-agent --force" in str(err.value.fix)


def test_report_is_reused_and_exported(built, tmp_path):
    ws, mv, result = built
    again = run(DEBUG, ws, multiverse=mv.id)
    assert again.reused and again.manifest.id == result.manifest.id
    out = artifact.export(ws, artifact.read(result.manifest), str(tmp_path / "out" / "r.html"))
    assert out["html"].endswith("r.html") and out["markdown"].endswith("r.md")
    assert (tmp_path / "out" / "r.html").read_bytes() == ws.read_bytes(f"report/{result.manifest.id}/report.html")
    assert len(list((tmp_path / "out" / "figures").glob("*.png"))) == result.manifest.metrics["figures"]


def test_cli_report(built, tmp_path):
    from typer.testing import CliRunner

    from chaos_cli.app import app

    ws, mv, result = built
    args = ["--workspace", ws.url, "report", "--preset", "debug", "--multiverse", mv.id]
    res = CliRunner().invoke(app, ["--json", *args, "--out", str(tmp_path / "copy")], catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["ok"] and out["reused"] and out["ref"] == result.manifest.ref
    assert out["html"].endswith("report.html") and out["markdown"].endswith("report.md")
    assert out["metrics"]["sections"] == list(SECTION_IDS)
    assert (tmp_path / "copy" / "report.html").exists() and (tmp_path / "copy" / "report.md").exists()
    res = CliRunner().invoke(app, args, catch_exceptions=False, env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.stderr
    assert f"reused {result.manifest.ref}" in res.stdout and "open " in res.stdout
    assert f"{len(SECTION_IDS)} sections" in res.stdout
