"""Artifacts on a real local folder and on gs:// served by a GCS emulator process."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import tomllib

import polars as pl
import pytest
import tomli_w

from strates.core import artifacts
from strates.core.artifacts import LeakageError, Manifest
from strates.core.errors import ArtifactNotFound
from strates.core.workspace import Workspace


def _publish(ws, stage="dataset", config=None, parents=None, payload=b"data"):
    config = config or {"alpha": 1}
    parents = parents or {}
    aid = artifacts.artifact_id(stage, config, parents)
    writer = artifacts.begin(ws, stage, aid)
    writer.write_bytes("payload.bin", payload)
    writer.write_parquet("table.parquet", pl.DataFrame({"x": [1, 2, 3]}))
    return writer.commit(config=config, parents=parents, metrics={"rows": 3}, summary={"note": "t"})


def test_id_is_stable_and_depends_on_every_input():
    a = artifacts.artifact_id("dataset", {"a": 1, "b": [1, 2]}, {})
    assert a == artifacts.artifact_id("dataset", {"b": [1, 2], "a": 1}, {})  # key order is irrelevant
    assert len(a) == artifacts.ID_LENGTH
    assert a != artifacts.artifact_id("tokens", {"a": 1, "b": [1, 2]}, {})
    assert a != artifacts.artifact_id("dataset", {"a": 2, "b": [1, 2]}, {})
    assert a != artifacts.artifact_id("dataset", {"a": 1, "b": [1, 2]}, {"dataset": "x"})


def test_publish_list_show_roundtrip(workspace_url):
    ws = Workspace(workspace_url)
    assert artifacts.list_artifacts(ws) == []
    m = _publish(ws, payload=b"hello")
    found = artifacts.list_artifacts(ws)
    assert [x.id for x in found] == [m.id]
    got = artifacts.get(ws, "dataset", m.id)
    assert got is not None and got == m
    assert got.files["payload.bin"].size == 5
    assert got.files["payload.bin"].sha256 == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    assert ws.read_bytes(f"dataset/{m.id}/payload.bin") == b"hello"
    # the manifest is sorted and parseable TOML that round-trips exactly
    assert Manifest.from_toml(m.to_toml()) == m


def test_references_latest_id_prefix_and_stage(workspace_url):
    ws = Workspace(workspace_url)
    first = _publish(ws, config={"n": 1})
    second = _publish(ws, config={"n": 2})
    other = _publish(ws, stage="tokens", config={"n": 1}, parents={"dataset": second.id})
    assert artifacts.resolve(ws, "latest", stage="dataset").id == second.id
    assert artifacts.resolve(ws, "latest").id == other.id
    assert artifacts.resolve(ws, first.id).id == first.id
    assert artifacts.resolve(ws, f"dataset/{first.id[:6]}").id == first.id
    assert artifacts.resolve(ws, "dataset/latest").id == second.id
    with pytest.raises(ArtifactNotFound, match="too short"):
        artifacts.resolve(ws, first.id[:2])
    with pytest.raises(ArtifactNotFound, match="no dataset artifact matches"):
        artifacts.resolve(ws, "ffffffffffff", stage="dataset")
    with pytest.raises(ArtifactNotFound, match="where a tokens is needed"):
        artifacts.resolve(ws, f"dataset/{first.id}", stage="tokens")
    with pytest.raises(ArtifactNotFound, match="no model artifacts"):
        artifacts.resolve(ws, "latest", stage="model")


def test_ambiguous_prefix_lists_candidates(tmp_path):
    ws = Workspace(tmp_path)
    n = 0
    # find two configs whose ids share the first 4 hex digits (expected within ~300 tries)
    by_prefix: dict[str, dict] = {}
    while True:
        cfg = {"n": n}
        aid = artifacts.artifact_id("dataset", cfg, {})
        if aid[:4] in by_prefix:
            break
        by_prefix[aid[:4]] = cfg
        n += 1
    a = _publish(ws, config=by_prefix[aid[:4]])
    b = _publish(ws, config=cfg)
    ids = {a.id, b.id}
    with pytest.raises(ArtifactNotFound, match="matches 2 artifacts") as info:
        artifacts.resolve(ws, aid[:4], stage="dataset")
    assert all(i in str(info.value) for i in ids)


def test_republish_replaces_and_force_keeps_id(workspace_url):
    ws = Workspace(workspace_url)
    m1 = _publish(ws, payload=b"one")
    m2 = _publish(ws, payload=b"two-two")
    assert m1.id == m2.id
    assert ws.read_bytes(f"dataset/{m1.id}/payload.bin") == b"two-two"
    got = artifacts.get(ws, "dataset", m1.id)
    assert got is not None and got.files["payload.bin"].size == 7
    assert len(artifacts.list_artifacts(ws)) == 1


_CRASH = textwrap.dedent(
    """
    import os, sys, time
    from strates.core import artifacts
    from strates.core.workspace import Workspace
    ws = Workspace(sys.argv[1])
    w = artifacts.begin(ws, "dataset", "deadbeefdeadbeef")
    w.write_bytes("bars.parquet", b"x" * 10000)
    w.write_bytes("macro.parquet", b"y" * 100)
    def hang():
        print("READY", flush=True)
        time.sleep(60)
    w.commit(config={"a": 1}, parents={}, before_manifest=hang)
    """
)


def test_interrupted_publish_is_invisible_and_collected(workspace_url):
    ws = Workspace(workspace_url)
    kept = _publish(ws, config={"kept": True})
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH, workspace_url], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
        proc.send_signal(signal.SIGKILL)  # killed between the data files and the manifest
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert ws.exists("dataset/deadbeefdeadbeef/bars.parquet")  # data files were written...
    assert [m.id for m in artifacts.list_artifacts(ws)] == [kept.id]  # ...but no artifact is visible
    assert artifacts.resolve(ws, "latest", stage="dataset").id == kept.id
    with pytest.raises(ArtifactNotFound):
        artifacts.resolve(ws, "deadbeef")
    assert artifacts.leftovers(ws) == ["dataset/deadbeefdeadbeef"]
    assert artifacts.gc(ws, dry_run=True) == ["dataset/deadbeefdeadbeef"]
    assert ws.exists("dataset/deadbeefdeadbeef/bars.parquet")  # dry run removed nothing
    assert artifacts.gc(ws) == ["dataset/deadbeefdeadbeef"]
    assert not ws.exists("dataset/deadbeefdeadbeef/bars.parquet")
    assert artifacts.leftovers(ws) == []
    assert [m.id for m in artifacts.list_artifacts(ws)] == [kept.id]  # gc leaves artifacts alone


def test_abort_removes_partial_files(workspace_url):
    ws = Workspace(workspace_url)
    w = artifacts.begin(ws, "dataset", "0123456789abcdef")
    w.write_bytes("a.bin", b"a")
    w.abort()
    assert not ws.exists("dataset/0123456789abcdef/a.bin")
    assert artifacts.leftovers(ws) == []


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    ws = Workspace(tmp_path)
    ws.write_bytes("dataset/0123456789abcdef/manifest.toml", b"stage = [broken")
    with pytest.raises(Exception, match="bad-manifest") as info:
        artifacts.list_artifacts(ws)
    assert "0123456789abcdef" in str(info.value)


def _manifest(fitted_end):
    return Manifest(
        stage="tokens", id="abc", created=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), config={}, parents={},
        files={}, metrics={}, summary={},
        fitted={"train": {"start": dt.datetime(2024, 1, 1, tzinfo=dt.UTC), "end": fitted_end}}, version="0",
    )


def test_leakage_check_fails_loudly():
    boundary = dt.datetime(2024, 10, 1, tzinfo=dt.UTC)
    artifacts.check_fitted_before(_manifest(boundary), boundary)  # end is exclusive: fine
    with pytest.raises(LeakageError, match="after the test period starts"):
        artifacts.check_fitted_before(_manifest(boundary + dt.timedelta(hours=1)), boundary)


def test_ancestors_walk_every_parent_once(tmp_path):
    ws = Workspace(tmp_path)
    data = _publish(ws, "dataset")
    tok = _publish(ws, "tokens", parents={"dataset": data.id})
    model = _publish(ws, "jepa", parents={"tokens": tok.id, "dataset": data.id})
    assert [m.ref for m in artifacts.ancestors(ws, model)] == [tok.ref, data.ref]
    orphan = _publish(ws, "cfm", parents={"jepa": "0123456789abcdef"})
    with pytest.raises(ArtifactNotFound, match="names a parent jepa/0123456789abcdef"):
        artifacts.ancestors(ws, orphan)


def test_evaluation_periods_must_not_overlap_fitted_ranges():
    day = lambda d: dt.datetime(2024, 1, d, tzinfo=dt.UTC)  # noqa: E731
    fitted = dataclasses.replace(_manifest(day(10)), fitted={"train": {"start": day(1), "end": day(10)}})
    artifacts.check_disjoint([fitted], day(10), day(20), period="test")  # half-open ranges only touch
    assert artifacts.overlapping([fitted], day(12), day(20)) == []
    with pytest.raises(LeakageError, match=r"overlaps data the models were fitted on or selected on: "
                                           r".*fitted on 'train' data 2024-01-01"):
        artifacts.check_disjoint([fitted], day(9), day(20), period="test")
    hits = artifacts.overlapping([fitted], dt.datetime(2023, 1, 1, tzinfo=dt.UTC), day(2))
    assert [hit[1] for hit in hits] == ["train"]


def _day(d):
    return dt.datetime(2024, 1, d, tzinfo=dt.UTC)


def test_selected_ranges_round_trip_and_default_to_empty(workspace_url):
    ws = Workspace(workspace_url)
    config, parents = {"alpha": 1}, {"dataset": "ab" * 8}
    writer = artifacts.begin(ws, "jepa", artifacts.artifact_id("jepa", config, parents))
    m = writer.commit(config=config, parents=parents, fitted={"train": {"start": _day(1), "end": _day(10)}},
                      selected={"validation": {"start": _day(10), "end": _day(12)}})
    got = artifacts.get(ws, "jepa", m.id)
    assert got is not None and got == m and got.selected == {"validation": {"start": _day(10), "end": _day(12)}}
    assert got.to_json()["selected"]["validation"] == {"start": "2024-01-10T00:00:00Z", "end": "2024-01-12T00:00:00Z"}
    # a manifest written before `selected` existed reads as having selected nothing
    raw = tomllib.loads(m.to_toml().decode())
    del raw["selected"]
    old = Manifest.from_toml(tomli_w.dumps(raw).encode())
    assert old.selected == {} and old.fitted == m.fitted and old.id == m.id
    assert _publish(ws).selected == {}


def test_ids_hash_schema_stage_config_and_parents_only():
    # pinned: the id hashes (schema, stage, config, parents) only, so neither `selected` nor
    # the time of the run changes it. Schema 1 gave 0261eca03c714ae1; schema 2 (typed
    # summaries) changed every id once, so a workspace of schema-1 artifacts is rebuilt
    config = {"train": {"steps": 12}, "when": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
    assert artifacts.artifact_id("jepa", config, {"tokens": "ab" * 8, "dataset": "cd" * 8}) == "44d58d6287338df3"
    assert artifacts.MANIFEST_SCHEMA == 2


def test_an_old_schema_artifact_is_refused_with_the_fix(tmp_path):
    from strates.core.errors import InvalidInput

    old = dataclasses.replace(_publish(Workspace(str(tmp_path))), schema=1)
    with pytest.raises(InvalidInput, match="schema 1") as err:
        artifacts.current(old, command="train-jepa")
    assert err.value.rule == "old-schema" and "chaos train-jepa --force" in str(err.value.fix)


def test_guard_refuses_periods_a_model_was_selected_on():
    model = dataclasses.replace(_manifest(_day(10)), stage="jepa",
                                fitted={"train": {"start": _day(1), "end": _day(10)}},
                                selected={"validation": {"start": _day(10), "end": _day(12)}})
    hits = artifacts.overlapping([model], _day(11), _day(20))
    assert [(h.ref, h.use, h.name) for h in hits] == [("jepa/abc", "selected", "validation")]
    assert hits[0].describe() == ("jepa/abc was selected on 'validation' data "
                                  "2024-01-10T00:00:00+00:00 .. 2024-01-12T00:00:00+00:00")
    with pytest.raises(LeakageError, match=r"the test period .* overlaps .*jepa/abc was selected on 'validation' data "
                                           r"2024-01-10.* \.\. 2024-01-12") as info:
        artifacts.check_disjoint([model], _day(11), _day(20), period="test")
    assert info.value.exit_code == 2 and "2024-01-12" in str(info.value.fix)  # the fix names the first safe start
    artifacts.check_disjoint([model], _day(12), _day(20), period="test")  # after both: fine
    with pytest.raises(LeakageError, match="was selected on 'validation' data up to 2024-01-12"):
        artifacts.check_fitted_before(model, _day(11))
    artifacts.check_fitted_before(model, _day(12))
    # where scoring may start inside a period whose first part chose a model
    assert artifacts.first_unused([model], _day(10), _day(14)) == _day(12)
    assert artifacts.first_unused([model], _day(12), _day(14)) == _day(12)
    assert artifacts.first_unused([model], _day(10), _day(11)) == _day(11)  # nothing left
