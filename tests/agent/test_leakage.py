"""Selection is leakage too: walk-forward folds from the real `make_folds`, manifests written
through the real `ArtifactWriter` into a temporary workspace, and the agent's choice of
evaluation periods. No model is trained: the guard runs before any model file is read.

In `walk-forward:K`, fold k validates on fold k-1's test block. A JEPA of fold 1 chose its
checkpoint on (the first part of) that block, so fold 0's test period is not out of sample
for it, and neither is any period inside its selection range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.agent import PRESETS, Config
from strates.agent.stage import evaluation_periods
from strates.cfm import artifact as cfm_artifact
from strates.cfm.config import Coupling
from strates.core import artifacts
from strates.core.artifacts import LeakageError
from strates.core.config import to_dict
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.data.split import make_folds
from strates.jepa.stage import validation_split

FIRST = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def _debug() -> Config:
    from strates.core.config import merge_presets

    return merge_presets(Config(), PRESETS, ["debug"])


def _commit(ws, stage, *, config, parents, summary=None, metrics=None, fitted=None, selected=None
            ) -> artifacts.Manifest:
    writer = artifacts.begin(ws, stage, artifacts.artifact_id(stage, config, parents))
    writer.commit(config=config, parents=parents, summary=summary or {}, metrics=metrics or {}, fitted=fitted,
                  selected=selected)
    manifest = artifacts.get(ws, stage, writer.id)  # read back: what a later stage sees
    assert manifest is not None
    return manifest


def _dataset_summary(folds, *, bars: int) -> dict:
    """A one-asset hourly dataset's summary, as `chaos ingest` records it."""
    last = FIRST + (bars - 1) * HOUR
    asset = data_artifact.AssetInfo(rows=bars, start=FIRST, end=last, calendar="24/7", periods_per_year=8766.0,
                                    gaps=0, missing_bars=0, closures=0)
    return to_dict(data_artifact.Summary(
        source="test", rows=bars, n_assets=1, interval_seconds=3600, interval="1h", periods_per_year=8766.0,
        calendar="24/7", clock=data_artifact.ClockSpan(FIRST, last, bars, "BTC"), start=FIRST, end=last,
        columns=("close",), assets={"BTC": asset}, gaps=data_artifact.Gaps(0, 0, 0),
        split=data_artifact.Split("walk-forward:3", tuple(folds))))


@pytest.fixture
def walk_forward(tmp_path):
    """A walk-forward:3 dataset of 1200 hourly bars (blocks of exactly 200 bars) and models of fold1 in the order the
    pipeline writes them: tokenizer and tokens, jepa (fitted on train, checkpoint selected on
    the first part of validation, as `train-jepa` records it), cfm (fitted on train)."""
    ws = Workspace(tmp_path / "ws")
    folds = make_folds("walk-forward:3", first=FIRST, last=FIRST + 1199 * HOUR, interval=HOUR)
    dataset = _commit(ws, "dataset", config={"split": "walk-forward:3"}, parents={},
                      summary=_dataset_summary(folds, bars=1200), metrics={"rows": 1200, "assets": 1})
    fold = data_artifact.read(dataset).fold("fold1")
    train = fold.train.to_dict()
    tokenizer = _commit(ws, "tokenizer", config={"fold": "fold1"}, parents={"dataset": dataset.id},
                        fitted={"train": train})
    tokens = _commit(ws, "tokens", config={"fold": "fold1"}, parents={"dataset": dataset.id, "tokenizer": tokenizer.id},
                     summary={"fold": "fold1"})
    chosen, diagnostic = validation_split(fold, share=0.5, interval=HOUR)
    jepa = _commit(ws, "jepa", config={"select": {"share": 0.5}}, parents={"tokens": tokens.id, "dataset": dataset.id},
                   summary={"fold": "fold1", "diagnostic": diagnostic.to_dict()}, fitted={"train": train},
                   selected={"validation": chosen.to_dict()})
    cfm_summary = cfm_artifact.Summary(couplings=(Coupling.COT,), main=Coupling.COT, ensemble=1, fold="fold1")
    cfm = _commit(ws, "cfm", config={}, parents={"jepa": jepa.id, "tokens": tokens.id, "dataset": dataset.id},
                  summary=to_dict(cfm_summary), metrics={"couplings": []}, fitted={"train": train})
    return ws, folds, dataset, fold, jepa, cfm


def _upstream(ws, cfm):
    return [cfm, *artifacts.ancestors(ws, cfm)]


def test_fold0_test_chose_the_fold1_models_and_is_refused(walk_forward):
    ws, folds, _, fold, jepa, cfm = walk_forward
    assert folds[1].validation == folds[0].test  # the premise: fold k validates on fold k-1's test block
    assert jepa.selected["validation"]["start"] == fold.validation.start
    test0 = folds[0].test
    with pytest.raises(LeakageError) as info:
        artifacts.check_disjoint(_upstream(ws, cfm), test0.start, test0.end, period="test:fold0")
    message = str(info.value)
    assert f"{jepa.ref} was selected on 'validation' data {test0.start.isoformat()}" in message
    assert info.value.exit_code == 2
    # the fitted ranges alone do not touch it: only the selected one makes it leak
    assert all(hit.use == "selected" for hit in artifacts.overlapping(_upstream(ws, cfm), test0.start, test0.end))


def test_walk_forward_backtests_only_folds_from_the_models_own_test_start(walk_forward):
    ws, folds, _, fold, _, cfm = walk_forward
    periods, skipped = evaluation_periods(_debug(), folds, fold, _upstream(ws, cfm))
    assert periods == [("test", folds[1].test), ("test:fold2", folds[2].test)]
    assert [s.fold for s in skipped] == ["fold0"]
    assert "before the models' own test period (fold1" in skipped[0].reason
    # an earlier fold is skipped even when no model recorded a selection on it
    fitted_only = [dataclasses.replace(m, selected={}) for m in _upstream(ws, cfm)]
    periods, skipped = evaluation_periods(_debug(), folds, fold, fitted_only)
    assert "test:fold0" not in [p.name for p in periods] and [s.fold for s in skipped] == ["fold0"]


def test_a_requested_period_inside_validation_is_refused(walk_forward):
    ws, folds, _, fold, jepa, cfm = walk_forward
    upstream = _upstream(ws, cfm)
    val = folds[1].validation
    for start, end in ((val.start, val.end), (val.start + 2 * HOUR, val.start + 10 * HOUR)):
        config = dataclasses.replace(_debug(), backtest=dataclasses.replace(
            _debug().backtest, period=f"{start.isoformat()},{end.isoformat()}"))
        with pytest.raises(LeakageError, match=rf"requested backtest period .*{jepa.ref} was selected on 'validation'"):
            evaluation_periods(config, folds, fold, upstream)
    # the models' own test period is fine when asked for explicitly
    test = folds[1].test
    config = dataclasses.replace(_debug(), backtest=dataclasses.replace(
        _debug().backtest, period=f"{test.start.isoformat()},{test.end.isoformat()}"))
    periods, _ = evaluation_periods(config, folds, fold, upstream)
    assert [p.span for p in periods] == [test]
    # the agent's own training range is checked too, before it is written
    config = dataclasses.replace(_debug(), backtest=dataclasses.replace(
        _debug().backtest, period=f"{fold.train.start.isoformat()},{(fold.train.start + HOUR).isoformat()}"))
    with pytest.raises(LeakageError, match="agent/new was fitted on 'train'"):
        evaluation_periods(config, folds, fold, [], own={"train": fold.train}, ref="agent/new")


def test_cli_refuses_a_period_inside_validation_with_exit_2(walk_forward):
    ws, folds, _, _, jepa, cfm = walk_forward
    val = folds[1].validation
    res = CliRunner().invoke(app, ["--workspace", ws.url, "train-agent", "--preset", "debug", "--cfm", cfm.id,
                                   "--period", f"{val.start.isoformat()},{val.end.isoformat()}"])
    assert res.exit_code == 2, res.output
    assert jepa.ref in res.stderr and "selected on 'validation'" in res.stderr
    assert not artifacts.list_artifacts(ws, "agent")  # refused before anything was written
