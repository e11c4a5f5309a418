"""The report's Strate III section and its figures on a hand-made cfm artifact (no pipeline):
facts, the strate's own tables per period, the skill and PIT figures, and what is said
when a period, the recalibration or the shuffled-condition check is absent."""

from __future__ import annotations

import dataclasses
import datetime as dt
import struct

import pytest

from strates.cfm import artifact as cfm_artifact
from strates.cfm.artifact import Calibration, Cfm, Diversity, HorizonScore, Metrics, PathScores, PeriodScores, Skill
from strates.cfm.config import Config as CfmConfig
from strates.cfm.config import Coupling
from strates.core import artifacts
from strates.core.config import merge_presets, to_dict
from strates.core.workspace import Workspace
from strates.report import PRESETS, Config, figures, sections
from strates.report.document import MISSING, Facts, Figure, Heading, Report, Table, Text
from strates.report.render import to_html
from strates.report.sources import Sources

DEBUG = merge_presets(Config(), PRESETS, ["debug"])
PNG = b"\x89PNG\r\n\x1a\n"
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
HORIZONS = (1, 2, 4)
LEVELS = (0.5, 0.8, 0.9, 0.95)


def _png_size(png: bytes) -> tuple[int, int]:
    """(width, height) in pixels from the PNG's IHDR chunk."""
    assert png.startswith(PNG)
    return struct.unpack(">II", png[16:24])


def _period(start: dt.datetime, *, shuffled_skill: float, recalibrated: bool) -> PeriodScores:
    names = [k for k, _ in cfm_artifact.FORECASTS if recalibrated or k != "cfm_recalibrated"]
    forecasts = {k: PathScores(tuple(HorizonScore(h, 0.01 * h * (1 + i / 10), 0.5, 0.9) for h in HORIZONS),
                               0.02 + i / 1000, 40, 8) for i, k in enumerate(names)}
    pit = {"cfm": (1.6, 1.3, 1.1, 0.9, 0.6, 0.6, 0.9, 1.1, 1.3, 0.6),  # any shape summing to 10 bins x 0.1
           "garch_t": (1.0,) * 10}
    calibration = {k: tuple(Calibration(h, LEVELS, (0.48, 0.79, 0.91, 0.96), pit.get(k, (1.2,) * 5 + (0.8,) * 5), 40)
                            for h in HORIZONS) for k in names}
    against = {**{b: 0.05 - 0.02 * j for j, b in enumerate(cfm_artifact.BASELINES)},
               cfm_artifact.SHUFFLED: shuffled_skill}
    skill = {f"h{h}": {b: Skill(v, v - 0.03, v + 0.03, 2.5, 20, 200) for b, v in against.items()} for h in HORIZONS}
    return PeriodScores(start=start, end=start + dt.timedelta(days=5), states=40, futures_per_state=8,
                        forecasts=forecasts, calibration=calibration, skill=skill, diversity=Diversity(3.1, 2.2),
                        sphere_norm_max_error=1e-6, ensemble_disagreement=0.01,
                        skill_recalibrated=skill if recalibrated else {})


def _cfm(*, test: bool = True, recalibrate: bool = True, shuffled_skill: float = 0.04) -> Cfm:
    config = CfmConfig()
    config = dataclasses.replace(config, eval=dataclasses.replace(config.eval, recalibrate=recalibrate))
    validation = _period(T0, shuffled_skill=shuffled_skill, recalibrated=recalibrate)
    spread = 1.25 if recalibrate else 1.0
    metrics = Metrics(couplings=(), validation=validation,
                      test=_period(T0 + dt.timedelta(days=5), shuffled_skill=shuffled_skill, recalibrated=recalibrate)
                      if test else None,
                      spread=spread, condition_used=shuffled_skill > 0)
    summary = cfm_artifact.Summary(couplings=(Coupling.COT,), main=Coupling.COT, ensemble=1, fold="f0")
    fitted = {"train": {"start": T0 - dt.timedelta(days=30), "end": T0}}
    manifest = artifacts.Manifest(stage="cfm", id="c" * 16, created=T0, config=to_dict(config), parents={}, files={},
                                  metrics=to_dict(metrics), summary=to_dict(summary), fitted=fitted, version="test",
                                  selected={"spread": validation.period.to_dict()} if recalibrate else {})
    return Cfm(manifest, config, summary, metrics)


def _section(tmp_path, c: Cfm):
    return sections.cfm(Sources(Workspace(tmp_path / "ws"), DEBUG, cfm=c))


def test_the_section_shows_facts_tables_and_both_figures(tmp_path):
    c = _cfm()
    s = _section(tmp_path, c)
    facts = dict(next(b for b in s.blocks if isinstance(b, Facts)).items)
    assert facts["spread recalibration"].startswith("factor 1.250 ")
    assert facts["uses its condition"].startswith(
        "the flow beats itself given a shuffled condition at every validation horizon: yes (")
    assert "h1 +0.040, h2 +0.040, h4 +0.040" in facts["uses its condition"]
    assert facts["selected on"].startswith("spread: 2024-03-01")
    assert [b.text for b in s.blocks if isinstance(b, Heading)][:2] == ["validation", "test"]
    titles = [b.title for b in s.blocks if isinstance(b, Table)]
    for name in ("validation", "test"):
        for make in (cfm_artifact.scores_table, cfm_artifact.skill_table, cfm_artifact.calibration_table):
            t = make(c, name)
            assert t is not None and t.title in titles
    shown = {b.name: b for b in s.blocks if isinstance(b, Figure)}
    assert set(shown) == {"cfm-skill", "cfm-pit"}
    assert all(f.png.startswith(PNG) for f in shown.values())
    assert "95% intervals" in shown["cfm-skill"].caption and "h=4" in shown["cfm-pit"].caption
    assert "too wide" in shown["cfm-pit"].caption and "too narrow" in shown["cfm-pit"].caption
    # two periods: the PIT figure has two rows of panels
    one = _section(tmp_path, _cfm(test=False))
    pit_one = next(b for b in one.blocks if isinstance(b, Figure) and b.name == "cfm-pit")
    assert _png_size(shown["cfm-pit"].png)[1] > _png_size(pit_one.png)[1]


def test_the_section_says_no_when_the_condition_is_ignored_and_what_is_absent(tmp_path):
    c = _cfm(test=False, recalibrate=False, shuffled_skill=-0.02)
    s = _section(tmp_path, c)
    facts = dict(next(b for b in s.blocks if isinstance(b, Facts)).items)
    assert "at every validation horizon: no (" in facts["uses its condition"]
    assert "h4 -0.020" in facts["uses its condition"]
    assert facts["spread recalibration"] == "none (eval.recalibrate is off)"
    assert facts["selected on"].startswith("nothing")
    assert any(isinstance(b, Text) and b.text.startswith("test: not recorded") for b in s.blocks)
    page = to_html(Report("r", (), (s,)))
    assert "spread recalibrated" not in page  # no recalibrated forecast in any table
    # without validation there is no check to report, and it says so
    unscored = dataclasses.replace(c, metrics=dataclasses.replace(c.metrics, validation=None, condition_used=None))
    facts = dict(next(b for b in _section(tmp_path, unscored).blocks if isinstance(b, Facts)).items)
    assert facts["uses its condition"].startswith(MISSING)
    assert not [b for b in _section(tmp_path, unscored).blocks if isinstance(b, Figure)]


def test_skill_points_name_the_shuffled_condition_by_its_forecast():
    p = _period(T0, shuffled_skill=0.04, recalibrated=False)
    points = sections.skill_points(p)
    assert list(points) == ["h1", "h2", "h4"]
    assert list(points["h1"]) == [*cfm_artifact.BASELINES, "cfm_shuffled"]
    assert points["h2"]["cfm_shuffled"] == pytest.approx((0.04, 0.01, 0.07))
    assert figures.skill({"validation": points}, dpi=40).startswith(PNG)


def test_every_cfm_forecast_has_its_own_colour_and_label():
    names = [k for k, _ in cfm_artifact.FORECASTS]
    colours = [figures.COLORS[k] for k in names]
    assert len(set(colours)) == len(names)
    labels = dict(cfm_artifact.FORECASTS)
    assert all(figures._label(k) == labels[k] for k in names)
