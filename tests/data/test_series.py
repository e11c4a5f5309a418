"""`chaos ingest --format series` and `ingest_series`: both file layouts, `--dt`, the
in-process frame, and every validation rule (exit 2, the file, row and column named,
nothing written)."""

from __future__ import annotations

import datetime as dt
import json
import pathlib

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from chaos_cli.app import app
from strates.core.errors import ConfigError, InvalidInput
from strates.core.workspace import Workspace
from strates.data import artifact
from strates.data.config import SERIES_START, Config, SeriesSpec, parse_step
from strates.data.ingest import ingest_series, load_bars, run
from strates.data.series import MIN_ROWS

N = 120


def _channels(n: int = N, *, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return {"x": np.sin(t / 7.0) + 0.1 * rng.normal(size=n), "y": np.cumsum(rng.normal(size=n)) - 40.0}


def _ingest(ws: pathlib.Path, *args: str):
    return CliRunner().invoke(app, ["--workspace", str(ws), "--json", "ingest", "--format", "series", *args])


def _nothing_written(ws: pathlib.Path) -> bool:
    folder = ws / "dataset"
    return not folder.exists() or not any(folder.iterdir())


def test_one_file_per_system_on_a_regular_index(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for k, name in enumerate(("lorenz", "rossler")):
        pl.DataFrame(_channels(seed=k)).write_csv(src / f"{name}.csv")
    (src / "notes.json").write_text("{}")  # a folder's other files are not series
    res = _ingest(tmp_path / "ws", "--source", str(src), "--dt", "1h")
    assert res.exit_code == 0, res.stderr
    out = json.loads(res.stdout)
    ds = artifact.load(Workspace(tmp_path / "ws"), out["id"])
    assert ds.is_series and ds.summary.kind == artifact.DatasetKind.SERIES and ds.summary.channels == ("x", "y")
    assert sorted(ds.summary.assets) == ["lorenz", "rossler"] and ds.summary.rows == 2 * N
    assert ds.summary.interval == "1h" and ds.summary.calendar.startswith("continuous")  # under a week: every hour
    assert ds.summary.periods_per_year == pytest.approx(8766)
    assert ds.summary.start == SERIES_START and ds.fold().train.start == SERIES_START
    bars = load_bars(Workspace(tmp_path / "ws"), ds.manifest)
    assert bars.columns == ["asset", "ts", "x", "y"]
    lorenz = bars.filter(pl.col("asset") == "lorenz")
    np.testing.assert_array_equal(lorenz["x"].to_numpy(), _channels(seed=0)["x"])
    assert (lorenz["ts"].diff().drop_nulls() == dt.timedelta(hours=1)).all()
    assert ds.manifest.config["series"] == {"step": 3600.0}
    # the same files and options are reused
    again = _ingest(tmp_path / "ws", "--source", str(src), "--dt", "1h")
    assert again.exit_code == 0 and json.loads(again.stdout)["reused"]


def test_a_system_column_with_timestamps_in_parquet(tmp_path):
    t0 = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    parts = []
    for k, name in enumerate(("b_sys", "a_sys")):
        ch = _channels(seed=k)
        parts.append(pl.DataFrame({
            "time": [t0 + dt.timedelta(minutes=15 * i) for i in range(N)], "system": name, **ch}))
    path = tmp_path / "panel.parquet"
    pl.concat(parts).write_parquet(path)
    res = _ingest(tmp_path / "ws", "--source", str(path))
    assert res.exit_code == 0, res.stderr
    ds = artifact.load(Workspace(tmp_path / "ws"), json.loads(res.stdout)["id"])
    assert sorted(ds.summary.assets) == ["a_sys", "b_sys"] and ds.summary.interval == "15min"
    assert ds.summary.start == t0 and ds.summary.channels == ("x", "y")
    bars = load_bars(Workspace(tmp_path / "ws"), ds.manifest)
    assert bars["asset"].to_list() == ["a_sys"] * N + ["b_sys"] * N  # sorted by (system, ts)
    np.testing.assert_array_equal(bars.filter(pl.col("asset") == "b_sys")["y"].to_numpy(), _channels(seed=0)["y"])


def test_dt_in_seconds_with_a_start_and_an_index_column(tmp_path):
    path = tmp_path / "sensor.csv"
    pl.DataFrame({"": np.arange(N), **_channels()}).write_csv(path)  # pandas' unnamed index column
    res = _ingest(tmp_path / "ws", "--source", str(path), "--dt", "90", "--start", "2024-01-01T06:00:00")
    assert res.exit_code == 0, res.stderr
    ds = artifact.load(Workspace(tmp_path / "ws"), json.loads(res.stdout)["id"])
    assert ds.summary.interval_seconds == 90 and ds.summary.channels == ("x", "y")  # the index is not a channel
    assert ds.summary.start == dt.datetime(2024, 1, 1, 6, tzinfo=dt.UTC)
    assert any("dropped the index column" in n for n in ds.summary.notes)


def test_the_step_is_read_in_the_usual_units():
    assert parse_step("1h") == dt.timedelta(hours=1)
    assert parse_step("15min") == parse_step("15m") == dt.timedelta(minutes=15)
    assert parse_step("1h30min") == dt.timedelta(minutes=90)
    assert parse_step("60") == dt.timedelta(seconds=60) and parse_step("1d") == dt.timedelta(days=1)
    for bad in ("", "fast", "1ms", "1h30"):
        with pytest.raises(ConfigError):
            parse_step(bad)
    with pytest.raises(ConfigError, match="whole number of seconds"):
        SeriesSpec(step=dt.timedelta(milliseconds=500))
    with pytest.raises(ConfigError, match="needs --dt"):
        SeriesSpec(start=SERIES_START)


@pytest.mark.parametrize(("options", "message"), [
    (["--dt", "1h", "--macro", "cpi.csv"], "--macro"),
    (["--dt", "1h", "--keep-extra"], "--keep-extra"),
    (["--dt", "1h", "--ts-column", "time"], "choose one"),
    (["--start", "2024-01-01"], "needs --dt"),
])
def test_options_that_do_not_apply_to_series(tmp_path, options, message):
    path = tmp_path / "s.csv"
    pl.DataFrame(_channels()).write_csv(path)
    res = _ingest(tmp_path / "ws", "--source", str(path), *options)
    assert res.exit_code == 2 and message in res.stderr and _nothing_written(tmp_path / "ws")
    with pytest.raises(ConfigError, match="--source"):
        Config(format="series")
    with pytest.raises(ConfigError, match="--format series"):
        Config(sources=(str(path),), series=SeriesSpec(step=dt.timedelta(hours=1)))


def _frame(**override) -> pl.DataFrame:
    t0 = dt.datetime(2024, 1, 1)
    data: dict = {"ts": [(t0 + dt.timedelta(hours=i)).isoformat() for i in range(N)],
                  **{k: v.tolist() for k, v in _channels().items()}}
    data.update(override)
    return pl.DataFrame(data)


def _with(values: np.ndarray, row: int, value) -> list:
    out: list = values.tolist()
    out[row] = value
    return out


BROKEN = {
    # name: (frame written to the file, rule, row (CSV line; None: no row), column)
    "nan": (_frame(x=_with(_channels()["x"], 9, float("nan"))), "non-finite", 11, "x"),
    "inf": (_frame(y=_with(_channels()["y"], 4, float("inf"))), "non-finite", 6, "y"),
    "missing": (_frame(y=_with(_channels()["y"], 20, None)), "non-finite", 22, "y"),
    "duplicate": (_frame(ts=_with(np.asarray(_frame()["ts"]), 30, _frame()["ts"][29])), "duplicate-timestamp", 32,
                  "ts"),
    "backwards": (_frame(ts=_with(np.asarray(_frame()["ts"]), 30, _frame()["ts"][3])), "non-monotonic-time", 32,
                  "ts"),
    "constant": (_frame(y=[2.5] * N), "constant-channel", None, "y"),
    "no channel": (_frame().select("ts"), "no-numeric-channel", None, None),
    "text channel": (_frame(label=["up"] * N), "non-numeric-column", None, "label"),
    "bad number": (_frame(x=[str(v) for v in _with(_channels()["x"], 7, "1.2.3")]), "unparseable-number", 9, "x"),
    "too few rows": (_frame().head(MIN_ROWS - 1), "too-few-rows", None, None),
    "reserved name": (_frame(asset=_channels()["x"].tolist()), "reserved-column-name", None, "asset"),
    "bad timestamp": (_frame(ts=_with(np.asarray(_frame()["ts"]), 12, "soon")), "unparseable-timestamp", 14, "ts"),
    "no timestamp": (_frame().drop("ts"), "missing-column", None, "timestamp"),
    "empty system": (_frame(system=_with(np.array(["a"] * N), 50, "")), "empty-system", 52, "system"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_rule_exits_2_naming_the_place_and_writes_nothing(tmp_path, case):
    frame, rule, row, column = BROKEN[case]
    path = tmp_path / "system_a.csv"
    frame.write_csv(path)
    res = _ingest(tmp_path / "ws", "--source", str(path))
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert f"[{rule}]" in res.stderr and str(path) in res.stderr and "fix:" in res.stderr
    if row is not None:
        assert f"row {row}" in res.stderr
    if column is not None:
        assert f"column '{column}'" in res.stderr
    assert _nothing_written(tmp_path / "ws")


def test_rules_across_files(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.parquet"
    pl.DataFrame(_channels()).write_csv(a)
    pl.DataFrame({"x": _channels(seed=1)["x"], "w": _channels(seed=1)["y"]}).write_csv(b)
    res = _ingest(tmp_path / "ws", "--source", str(a), "--source", str(b), "--dt", "1h")
    assert res.exit_code == 2 and "[mismatched-channels]" in res.stderr and "['x', 'y']" in res.stderr
    assert "['x', 'w']" in res.stderr and str(b) in res.stderr
    pl.DataFrame({"system": "a", "y": _channels(seed=2)["y"], "x": _channels(seed=2)["x"]}).write_parquet(c)
    res = _ingest(tmp_path / "ws", "--source", str(a), "--source", str(c), "--dt", "1h")
    assert res.exit_code == 2 and "[duplicate-system]" in res.stderr and str(c) in res.stderr
    # --dt and a column named as a timestamp: which times?
    _frame().write_csv(tmp_path / "t.csv")
    res = _ingest(tmp_path / "ws", "--source", str(tmp_path / "t.csv"), "--dt", "1h")
    assert res.exit_code == 2 and "[ambiguous-time]" in res.stderr
    assert _nothing_written(tmp_path / "ws")
    # channels in another order are reordered as in the first file
    c.unlink()
    pl.DataFrame({"system": "c", "y": _channels(seed=2)["y"], "x": _channels(seed=2)["x"]}).write_parquet(c)
    res = _ingest(tmp_path / "ws", "--source", str(a), "--source", str(c), "--dt", "1h")
    assert res.exit_code == 0, res.stderr
    ds = artifact.load(Workspace(tmp_path / "ws"), json.loads(res.stdout)["id"])
    assert ds.summary.channels == ("x", "y") and sorted(ds.summary.assets) == ["a", "c"]
    np.testing.assert_array_equal(
        load_bars(Workspace(tmp_path / "ws"), ds.manifest).filter(pl.col("asset") == "c")["x"].to_numpy(),
        _channels(seed=2)["x"])


def test_ingest_series_in_process(tmp_path):
    ws = Workspace(tmp_path / "ws")
    t0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    frame = pl.DataFrame({
        "system": ["henon"] * N + ["logistic"] * N,
        "timestamp": [t0 + dt.timedelta(days=i) for i in range(N)] * 2,
        "u": np.concatenate([_channels(seed=3)["x"], _channels(seed=4)["x"]]),
    })
    result = ingest_series(frame, ws, split="0.6,0.2,0.2")
    ds = artifact.read(result.manifest)
    assert not result.reused and ds.is_series and ds.summary.channels == ("u",) and ds.summary.source == "frame"
    assert ds.summary.interval == "1d" and sorted(ds.summary.assets) == ["henon", "logistic"]
    assert result.manifest.config["files"][0]["path"] == "<frame>"
    assert ingest_series(frame, ws, split="0.6,0.2,0.2").reused  # same content, same id
    changed = frame.with_columns(pl.when(pl.int_range(pl.len()) == 5).then(0.0).otherwise(pl.col("u")).alias("u"))
    assert ingest_series(changed, ws, split="0.6,0.2,0.2").manifest.id != result.manifest.id
    # a regular index and a name for a frame of one system
    one = ingest_series(pl.DataFrame(_channels()), ws, step="1h", system="solo")
    assert sorted(artifact.read(one.manifest).summary.assets) == ["solo"]
    with pytest.raises(InvalidInput, match="system="):
        ingest_series(pl.DataFrame(_channels()), ws, step="1h")
    with pytest.raises(InvalidInput) as err:
        ingest_series(pl.DataFrame(_channels()).with_columns(x=pl.lit(1.0)), ws, step="1h", system="flat")
    assert err.value.rule == "constant-channel" and err.value.exit_code == 2
    assert len(list((tmp_path / "ws" / "dataset").iterdir())) == 3  # the failures wrote nothing


def test_a_bar_dataset_is_not_a_series(tmp_path):
    from strates.data.embedded import EmbeddedSpec

    ds = artifact.read(run(Config(embedded=EmbeddedSpec(assets=1, bars=200)), Workspace(tmp_path)).manifest)
    assert ds.summary.kind == artifact.DatasetKind.BARS and not ds.is_series and ds.summary.channels == ()
    ds.require_bars("train-agent")  # no error
