"""`chaos ingest`: read, validate, align and split bars into a `dataset` artifact.

Order of work: resolve the config (hash the source files) -> reuse an identical artifact
unless forced -> read and validate every file (nothing is written before all of it passed)
-> join macro series as-of at their release (publication lag, or vintage date) -> detect
the bar interval, then each asset's calendar, periods per year and gaps
(`strates.data.calendars`) -> fix the time split -> measure the union clock's periods per
year over the first fold's training period -> write Parquet, then the manifest (summary
keys: `strates.data.summary`).

Files of a dataset artifact:

- `bars.parquet`: bars sorted by (asset, ts): `asset, ts, open, high, low, close, volume`,
  kept extras, then `macro_<series>` columns. For a series dataset (`--format series`,
  `strates.data.series`; summary `kind = "series"`): `asset, ts, <channels>` (the system
  in `asset`).
- `macro.parquet`: the raw macro observations (`series, observed, available, value`; one
  row per vintage for vintage files), when there are any.
- `gaps.parquet`: gaps against each asset's calendar (`asset, after, before,
  missing_bars`; closures such as holidays are not gaps), when there are any.
- `signal.parquet`: the embedded dataset's planted edge when kappa > 0 (`--signal`,
  `strates.data.embedded`): `asset, ts, g, drift` with g = g(s_t) known at bar t and drift =
  kappa sigma_t g(s_t), the expected planted log return of the next bar (`load_signal`). The
  summary's `signal` holds kappa and the oracle's Sharpe per period and cost.

The id hashes the resolved config, except `embedded.signal` when it is 0 (`identity`): the
embedded dataset without a planted edge keeps the id it had before the option existed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import os
import tempfile
import typing

from strates.core import artifacts, stage
from strates.core.errors import InvalidInput
from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace, open_url
from strates.data.config import Config, MacroSource, SourceFile
from strates.data.split import make_folds

KIND = "dataset"
EMBEDDED_NAME = "<embedded dataset>"
FRAME_NAME = "<frame>"  # the source name of an in-process series frame (`ingest_series`)


@dataclasses.dataclass(frozen=True)
class Result:
    manifest: artifacts.Manifest
    reused: bool
    uri: str


def _sha256(path: str) -> str:
    fs, fpath = open_url(path)
    with fs.open(fpath, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _is_remote(path: str) -> bool:
    return "://" in path and not path.startswith("file://")


def _expand(source: str, *, series: bool = False) -> list[str]:
    """The bar files behind one --source: a file, or the bar files in a folder (local or
    remote, recursively); for series, only the CSV and Parquet files of a folder."""
    from strates.data import sources
    from strates.data.series import EXTENSIONS as SERIES_EXTENSIONS

    if not _is_remote(source):
        found = sources.list_source_files(source)
        if series and os.path.isdir(source):
            found = [p for p in found if p.lower().endswith(SERIES_EXTENSIONS)]
            if not found:
                raise InvalidInput(f"the folder {source} holds no CSV or Parquet files", rule="no-source-files",
                                   file=source, fix="put the series files (.csv, .csv.gz, .parquet) in it")
        return found
    fs, path = open_url(source)
    protocol = source.split("://", 1)[0]
    if fs.isfile(path):
        return [source]
    extensions = SERIES_EXTENSIONS if series else sources.EXTENSIONS
    found = [
        p for p in fs.find(path)
        if p.lower().endswith(extensions) and not p.rsplit("/", 1)[-1].startswith(".")
    ]
    if not found:
        raise InvalidInput(
            f"no bar files under {source}", rule="no-source-files", file=source,
            fix=f"put files ending in {', '.join(extensions)} there, or point at another location",
        )
    return sorted(f"{protocol}://{p}" for p in found)


@contextlib.contextmanager
def _local_copies(paths: list[str]):
    """Local paths for `paths`: remote files are copied to a temporary folder (keeping their
    names, which may name the asset); errors and notes then name the remote URL again."""
    remote = [p for p in paths if _is_remote(p)]
    if not remote:
        yield paths, {}
        return
    with tempfile.TemporaryDirectory(prefix="chaos-ingest-") as tmp:
        local, back = [], {}
        for i, path in enumerate(paths):
            if not _is_remote(path):
                local.append(path)
                continue
            fs, fpath = open_url(path)
            target = os.path.join(tmp, str(i), fpath.rsplit("/", 1)[-1])
            os.makedirs(os.path.dirname(target))
            fs.get_file(fpath, target)
            local.append(target)
            back[target] = path
        try:
            yield local, back
        except InvalidInput as err:
            raise _renamed(err, back) from None


@typing.overload
def _rename(text: str, back: dict[str, str]) -> str: ...
@typing.overload
def _rename(text: None, back: dict[str, str]) -> None: ...
def _rename(text: str | None, back: dict[str, str]) -> str | None:
    if text is None:
        return None
    for local, url in back.items():
        text = text.replace(local, url)
    return text


def _renamed(err: InvalidInput, back: dict[str, str]) -> InvalidInput:
    return InvalidInput(
        _rename(err.detail, back), rule=err.rule, fix=_rename(err.fix, back), file=_rename(err.file, back),
        row=err.row, column=err.column,
    )


def resolve(config: Config) -> Config:
    """Fill in what the id depends on: the embedded spec, or every file with its hash."""
    from strates.data.embedded import EmbeddedSpec

    if not config.sources:
        return dataclasses.replace(config, embedded=config.embedded or EmbeddedSpec(), files=())
    paths: list[str] = []
    for src in config.sources:
        paths.extend(_expand(src, series=config.format == "series"))
    if len(set(paths)) != len(paths):
        dupes = sorted({p for p in paths if paths.count(p) > 1})
        raise InvalidInput(
            f"the same file is given twice: {', '.join(dupes)}", rule="duplicate-source",
            fix="pass each file or folder once",
        )
    files = tuple(SourceFile(p, _sha256(p)) for p in paths)
    macro = tuple(dataclasses.replace(m, sha256=_sha256(m.path)) for m in config.macro)
    return dataclasses.replace(config, files=files, macro=macro)


def _prepare(config: Config, parents) -> Config:
    return config if config.files else resolve(config)  # `run` resolves (hashes) once, under its own task


def _build(job: stage.Job[Config], frame=None) -> stage.Output:
    """Read and validate every file (or the in-process series `frame`), join macro at
    release time, measure calendars, split, write Parquet (nothing is written before all of
    it passed)."""
    import polars as pl

    config, rep = job.config, job.reporter
    channels: tuple[str, ...] = ()
    planted = None
    if config.series is not None:
        bars, channels, notes = _read_series(config, rep, frame)
        macro_obs, macro_info = None, {}
    else:
        bars, macro_obs, macro_info, notes, planted = _read(config, rep)
    for note in notes:
        rep.info(note)
    if macro_obs is not None and macro_obs.height:
        from strates.data.macro import asof_join

        with rep.task("joining macro series as-of (at their release: publication lags or vintages)"):
            bars = asof_join(bars, macro_obs)

    with rep.task("measuring calendars, periods per year and gaps, splitting in time"):
        from strates.data import calendars
        from strates.data.summary import calendar_notes, dataset_summary

        interval = detect_interval(bars)
        if channels:
            _check_whole_seconds(interval)
        tz = config.tz or "UTC"
        clocks = calendars.measure_all(bars, interval, tz=tz, calendar=config.calendar)
        first, last = typing.cast(dt.datetime, bars["ts"].min()), typing.cast(dt.datetime, bars["ts"].max())
        folds = make_folds(config.split, first=first, last=last, interval=interval)
        train = folds[0].train
        portfolio = calendars.union_clock(bars, interval, tz=tz, start=train.start, end=train.end,
                                          calendar=config.calendar)
        clock_notes = calendar_notes(clocks)
        notes.extend(clock_notes)
        gaps = pl.concat([c.gaps for c in clocks.values()])
        summary = dataset_summary(config, bars, macro_obs, macro_info, interval, folds, notes, clocks, portfolio,
                                  channels=channels, source="frame" if frame is not None else None)
    if planted is not None and config.embedded is not None:
        from strates.data.summary import signal_summary

        with rep.task("measuring the oracle of the planted edge"):
            summary["signal"] = signal_summary(bars, planted, kappa=config.embedded.signal, fold=folds[0],
                                               periods_per_year=summary["periods_per_year"])
    for note in clock_notes:
        rep.info(note)
    with rep.task("writing Parquet"):
        # LZ4: 3x faster to write than zstd-3 for ~25% more bytes, and the fastest to read
        job.writer.write_parquet("bars.parquet", bars, compression="lz4")
        if macro_obs is not None and macro_obs.height:
            job.writer.write_parquet("macro.parquet", macro_obs)
        if gaps.height:
            job.writer.write_parquet("gaps.parquet", gaps)
        if planted is not None and config.embedded is not None and config.embedded.signal > 0:
            job.writer.write_parquet("signal.parquet", planted)
    return stage.Output({"rows": bars.height, "assets": summary["n_assets"]}, summary)


def _read_series(config: Config, rep: Reporter, frame=None):
    """(`asset, ts, *channels`, the channels, notes) of the series files, or of `frame`."""
    from strates.data import series

    assert config.series is not None
    if frame is not None:
        with rep.task("validating the series frame"):
            return series.read_sources([(FRAME_NAME, frame, 1, None)], config.series, system=config.asset,
                                       ts_column=config.ts_column, tz=config.tz)
    with (rep.task(f"reading and validating {len(config.files)} series file(s)"),
          _local_copies([f.path for f in config.files]) as (local, back)):
        bars, channels, notes = series.read_files(local, config.series, system=config.asset,
                                                  ts_column=config.ts_column, tz=config.tz)
    return bars, channels, [_rename(n, back) for n in notes]


def _check_whole_seconds(interval: dt.timedelta) -> None:
    if interval < dt.timedelta(seconds=1) or interval % dt.timedelta(seconds=1):
        raise InvalidInput(
            f"the rows are {interval.total_seconds():g} s apart; a dataset's interval is a whole number of seconds",
            rule="sub-second-interval",
            fix="use --dt with a step of whole seconds (one sample per second, minute or hour: the time unit only "
                "names the step), or resample the series",
        )


def _planted(sim):
    """The embedded dataset's planted edge, `asset, ts, g, drift`, from its `Simulation`."""
    import numpy as np
    import polars as pl

    n = sim.g.shape[1]
    ts = sim.bars["ts"][:n]
    return pl.DataFrame({
        "asset": np.repeat(sim.assets, n), "ts": pl.concat([ts] * len(sim.assets)),
        "g": sim.g.ravel(), "drift": sim.planted.ravel(),
    }).sort("asset", "ts")


def identity(config: Config) -> dict:
    """What enters the id: the resolved config, less `embedded.signal` when it is 0 (the
    embedded data without a planted edge keeps its id)."""
    from strates.core.config import to_dict

    out = to_dict(config)
    if config.embedded is not None and config.embedded.signal == 0:
        out["embedded"] = {k: v for k, v in out["embedded"].items() if k != "signal"}
    return out


STAGE: stage.Stage[Config] = stage.Stage(kind=KIND, command="ingest", config=Config, build=_build, prepare=_prepare,
                                         identity=identity)


def run(
    config: Config,
    ws: Workspace,
    *,
    force: bool = False,
    reporter: Reporter | None = None,
    before_manifest=None,
) -> Result:
    """Ingest per `config` into `ws`; returns the (new or reused) dataset manifest."""
    rep = reporter or NullReporter()
    with rep.task("hashing sources" if config.sources else "resolving the config"):
        config = resolve(config)
    done = stage.run(STAGE, config, ws, parents={}, force=force, reporter=rep, before_manifest=before_manifest)
    return Result(done.manifest, done.reused, ws.uri(KIND, done.manifest.id))


def ingest_series(
    frame,
    ws: Workspace,
    *,
    step: dt.timedelta | str | None = None,
    start: dt.datetime | None = None,
    system: str | None = None,
    ts_column: str | None = None,
    tz: str | None = None,
    split: str = "0.7,0.15,0.15",
    calendar: str | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
) -> Result:
    """Ingest the series in the polars DataFrame `frame` (as a series file would hold it:
    a timestamp column, or none with `step`; an optional `system` column; numeric
    channels) into a dataset artifact, with the same rules as `chaos ingest --format
    series` (InvalidInput, nothing written) and no file written but the artifact's.

    `step` (a timedelta, or text such as `1h`, `15min`, `60`): a regular index from
    `start` (default 2000-01-01 UTC); `system`: the system's name when `frame` has no
    `system` column. The id hashes the frame's content (`series.frame_digest`), so the
    same frame and options reuse the same dataset."""
    from strates.core.config import choice
    from strates.data.config import CalendarKind, SeriesSpec, SourceFile, parse_step
    from strates.data.series import frame_digest

    if isinstance(step, str):
        step = parse_step(step)
    config = Config(
        format="series", series=SeriesSpec(step=step, start=start), asset=system, ts_column=ts_column, tz=tz,
        split=split, calendar=choice(CalendarKind, calendar, "calendar") if calendar else None,
        files=(SourceFile(FRAME_NAME, frame_digest(frame)),),
    )
    rep = reporter or NullReporter()
    series_stage = dataclasses.replace(STAGE, build=lambda job: _build(job, frame))
    done = stage.run(series_stage, config, ws, parents={}, force=force, reporter=rep)
    return Result(done.manifest, done.reused, ws.uri(KIND, done.manifest.id))


def _read(config: Config, rep: Reporter):
    import polars as pl

    from strates.data import macro as macro_mod
    from strates.data.release import fmt_duration

    notes: list[str] = []
    if config.embedded is not None:
        from strates.data import embedded
        from strates.data.validate import check_bars

        with rep.task("generating the embedded dataset"):
            sim = embedded.simulate(config.embedded)
            bars, macro_obs = sim.bars, sim.macro
        check_bars(bars.with_row_index("__row", offset=1), file=EMBEDDED_NAME)
        notes.append(
            f"embedded dataset: {bars['asset'].n_unique()} synthetic assets driven by chaotic systems "
            f"(seed {config.embedded.seed}); pass --source to ingest your own files"
        )
        info = {
            name: macro_mod.SeriesInfo(vintage=False, revised=False, note="synthetic series: never revised",
                                       lag=f"{fmt_duration(embedded.MACRO_LAGS[name])} after the observation date")
            for name in macro_obs["series"].unique().sort().to_list()
        }
        if config.embedded.signal > 0:
            notes.append(f"planted edge: kappa {config.embedded.signal:g} (chaos ingest --signal; the oracle is in "
                         "the summary's signal section)")
        return bars.sort("asset", "ts"), macro_obs, info, notes, _planted(sim)

    from strates.data import sources

    options = sources.SourceOptions(
        format=config.format, ts_column=config.ts_column, asset=config.asset, tz=config.tz,
        keep_extra=config.keep_extra,
    )
    with (rep.task(f"reading and validating {len(config.files)} file(s)"),
          _local_copies([f.path for f in config.files]) as (local, back)):
        bars, read_notes = sources.read_all(local, options)
    notes.extend(_rename(n, back) for n in read_notes)
    macro_frames, macro_info = [], {}
    for src in config.macro:
        with _local_copies([src.path]) as ((local,), back):
            read = macro_mod.read_macro_file(local, lag=src.lag, cot_market=config.cot_market)
        macro_frames.append(read.frame)
        macro_info.update(read.series)
        notes.extend(_rename(n, back) for n in read.notes)
    macro_obs = pl.concat(macro_frames) if macro_frames else None
    counts: dict[str, int] = {}
    for frame in macro_frames:
        for name in frame["series"].unique().to_list():
            counts[name] = counts.get(name, 0) + 1
    clash = sorted(n for n, c in counts.items() if c > 1)
    if clash:
        raise InvalidInput(
            f"macro series {', '.join(clash)} come from more than one file", rule="duplicate-series",
            fix="pass each series once (rename one file's value column if they differ)",
        )
    return bars, macro_obs, macro_info, notes, None


def detect_interval(bars) -> dt.timedelta:
    """The bar interval: the most common step between consecutive bars, per asset; all
    assets must agree (one dataset, one clock)."""
    import polars as pl

    steps = (
        bars.lazy()
        .select("asset", pl.col("ts").diff().over("asset").alias("step"))
        .drop_nulls("step")
        .group_by("asset", "step")
        .agg(pl.len().alias("n"))
        .sort(["asset", "n", "step"], descending=[False, True, False])
        .group_by("asset", maintain_order=True)
        .first()
        .collect()
    )
    if steps.height == 0:
        raise InvalidInput(
            "every asset has a single bar: no bar interval can be detected", rule="too-few-bars",
            fix="ingest at least two bars per asset",
        )
    per_asset = dict(zip(steps["asset"].to_list(), steps["step"].to_list(), strict=True))
    distinct = sorted(set(per_asset.values()))
    if len(distinct) > 1:
        shown = ", ".join(f"{a}: {_fmt_td(s)}" for a, s in sorted(per_asset.items())[:8])
        raise InvalidInput(
            f"assets have different bar intervals ({shown})", rule="mixed-intervals",
            fix="ingest each bar interval into its own dataset (one --source per interval)",
        )
    return distinct[0]


def _fmt_td(td: dt.timedelta) -> str:
    seconds = int(td.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def load_bars(ws: Workspace, manifest: artifacts.Manifest):
    """Read a dataset's bars as a polars DataFrame (through fsspec: works on gs:// too)."""
    import io

    import polars as pl

    return pl.read_parquet(io.BytesIO(ws.read_bytes(f"{manifest.stage}/{manifest.id}/bars.parquet")))


def load_signal(ws: Workspace, manifest: artifacts.Manifest):
    """The planted edge of an embedded dataset built with kappa > 0 (`signal.parquet`: `asset,
    ts, g, drift`) as a polars DataFrame; None when the dataset has none."""
    import io

    import polars as pl

    rel = f"{manifest.stage}/{manifest.id}/signal.parquet"
    if "signal.parquet" not in manifest.files:
        return None
    return pl.read_parquet(io.BytesIO(ws.read_bytes(rel)))


__all__ = ["STAGE", "Config", "MacroSource", "Result", "ingest_series", "load_bars", "load_signal", "resolve", "run"]
