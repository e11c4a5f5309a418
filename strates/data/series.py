"""Generic series (`chaos ingest --format series`): numeric channels of one or more systems.

The method is domain-agnostic: a system is anything observed at regular times (a chaotic
flow, a sensor, a load curve), and downstream it plays the role of an asset (the column is
still called `asset`), so the tokenizer, JEPA and CFM run on it unchanged.

A source (a CSV or Parquet file, or a polars DataFrame given in-process) holds:

| column | meaning |
| ------ | ------- |
| timestamp | named as for bars (`date`, `time`, `ts`, ...) or by `--ts-column`; absent with `--dt` |
| `system` | optional: the system of each row (else one system: `--asset`, `system=`, or the file's stem) |
| any other | a numeric channel (Float64) |

Timestamps are read like a bar file's (`strates.data.timeparse`). With `--dt` (a regular
index), row i of a system is at `start + i * dt`.

Every system must have the same channel names; their order is the first source's (the
first channel plays the role of the price: its increments are the "returns" the CFM
forecasts and the probes predict, `strates.jepa.data`). With `--dt`, a pandas index column
(unnamed, `Unnamed: 0`, `__index_level_0__`) is dropped; without it, it is the timestamp
when no column is named as one.

Rules (each an `InvalidInput` naming the source, the row and the column; nothing is written
unless every source passes). Rows are counted as a person sees them: for CSV the line in an
editor (header = line 1), for Parquet and frames the 1-based record index.

| rule | broken when |
| ---- | ----------- |
| `no-numeric-channel` | no column is left for a channel |
| `non-numeric-column` | a channel column holds text (no value reads as a number) |
| `unparseable-number` | a value of a numeric channel is not a number |
| `reserved-column-name` | a channel is named `asset` or `ts`, or starts with `__` or `macro_` |
| `ambiguous-time` | `--dt` is given and a column is named as a timestamp |
| `missing-column` | no timestamp column and no `--dt` |
| `unparseable-timestamp` | a timestamp is empty, unreadable, or a float (use `--dt`) |
| `empty-system` | a `system` value is empty |
| `non-finite` | a channel value is missing, NaN or infinite |
| `duplicate-timestamp` | a system has two rows at one time (both rows named) |
| `non-monotonic-time` | a system's time goes back (both rows named; series are never re-sorted) |
| `too-few-rows` | a system has fewer than `MIN_ROWS` rows |
| `constant-channel` | a channel of a system never changes (it carries nothing; its features would divide by 0) |
| `mismatched-channels` | two sources hold different channel names |
| `duplicate-system` | two sources hold the same system |
| `missing-system` | an in-process frame has neither a `system` column nor `system=` |
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Sequence

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.columns import INDEX_NAMES, TS_NAMES, normalize
from strates.data.config import SeriesSpec
from strates.data.readers import stem
from strates.data.schema import TS_DTYPE
from strates.data.timeparse import check_tz, parse_column, typed_expr
from strates.data.validate import fmt_ts

MIN_ROWS = 32  # per system: the causal features standardise over trailing windows, and the split needs every period
SYSTEM = "system"
ROW = "__row"
EXTENSIONS = (".csv", ".csv.gz", ".parquet")
RESERVED = ("asset", "ts")


@dataclasses.dataclass(frozen=True)
class Read:
    """One source read and checked: `frame` (`asset, ts, *channels`, each system's rows in
    time order, `asset` = the system), its `channels`, and `notes`."""

    frame: pl.DataFrame
    channels: tuple[str, ...]
    notes: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class _Plan:
    ts: str | None
    system: str | None
    channels: tuple[str, ...]
    dropped: tuple[str, ...]


def _plan(names: list[str], *, source: str, ts_column: str | None, step: bool) -> _Plan:
    norm = {n: normalize(n) for n in names}
    found = ", ".join(f"'{n}'" for n in names)
    systems = [n for n in names if norm[n] == SYSTEM]
    if len(systems) > 1:
        raise InvalidInput(f"columns {', '.join(repr(s) for s in systems)} could all be the system column",
                           rule="ambiguous-column", fix="rename or remove all but one of them", file=source)
    system = systems[0] if systems else None
    index = names[0] if names and norm[names[0]] in INDEX_NAMES else next(
        (n for n in names if n == "__index_level_0__"), None)
    named = [n for n in names if norm[n] in TS_NAMES and n != system]
    dropped: list[str] = []
    if step:
        if named:
            raise InvalidInput(
                f"--dt sets a regular index, but column '{named[0]}' is named as a timestamp; columns: {found}",
                rule="ambiguous-time", file=source, column=named[0],
                fix="drop --dt to read the times from that column, or remove (or rename) the column",
            )
        ts = None
        if index is not None:
            dropped.append(index)
    elif ts_column is not None:
        exact = [n for n in names if n == ts_column] or [n for n in names if norm[n] == normalize(ts_column)]
        if not exact:
            raise InvalidInput(f"--ts-column '{ts_column}' is not a column of this file; columns: {found}",
                               rule="missing-column", fix="give one of the columns listed with --ts-column",
                               file=source, column=ts_column)
        ts = exact[0]
    elif len(named) > 1:
        raise InvalidInput(f"columns {', '.join(repr(n) for n in named)} could all be the timestamp column",
                           rule="ambiguous-column", fix="rename or remove all but one of them, or pick one with "
                                                        "--ts-column", file=source)
    elif named:
        ts = named[0]
    elif index is not None:
        ts = index
    else:
        raise InvalidInput(
            f"no timestamp column; columns found: {found}", rule="missing-column", file=source, column="timestamp",
            fix="add a timestamp column (date, datetime, timestamp, time, ts) or name it with --ts-column; for "
                "equally spaced rows without times give the step with --dt (e.g. --dt 1h)",
        )
    if ts is not None and index is not None and index != ts:
        dropped.append(index)
    channels = tuple(n for n in names if n not in (ts, system, *dropped))
    if not channels:
        raise InvalidInput(
            f"no numeric channel: the columns ({found}) are only the timestamp and system",
            rule="no-numeric-channel", file=source, fix="add at least one column of numbers (a channel)",
        )
    for name in channels:
        if name in RESERVED or name.startswith(("__", "macro_")):
            raise InvalidInput(
                f"channel '{name}' has a name the dataset keeps for itself", rule="reserved-column-name",
                file=source, column=name, fix="rename the column (not 'asset', 'ts', '__...' or 'macro_...')",
            )
    return _Plan(ts, system, channels, tuple(dropped))


def _numbers(frame: pl.DataFrame, name: str, *, source: str) -> pl.Expr:
    """The channel `name` as Float64 (text read as numbers: `nan`, `inf` are read, and
    then refused by `non-finite`)."""
    dtype = frame.schema[name]
    if dtype.is_numeric():
        return pl.col(name).cast(pl.Float64)
    if dtype != pl.String:
        raise InvalidInput(f"channel '{name}' has dtype {dtype}, not a number", rule="non-numeric-column",
                           file=source, column=name, fix="store channels as float or integer columns, or remove it")
    raw = frame[name].str.strip_chars()
    values = raw.cast(pl.Float64, strict=False)
    bad = values.is_null() & raw.is_not_null() & (raw.str.len_bytes() > 0)
    if bad.any():
        if values.is_not_null().sum() == 0:
            raise InvalidInput(f"channel '{name}' holds text (e.g. '{raw[int(bad.arg_true()[0])]}'), not numbers",
                               rule="non-numeric-column", file=source, column=name,
                               fix="remove the column, or name it 'system' if it names the system of each row")
        i = int(bad.arg_true()[0])
        raise InvalidInput(f"'{raw[i]}' is not a number", rule="unparseable-number", file=source,
                           row=int(frame[ROW][i]), column=name, fix="write channel values as plain numbers")
    return pl.col(name).str.strip_chars().cast(pl.Float64, strict=False)


def _times(frame: pl.DataFrame, plan: _Plan, spec: SeriesSpec, *, source: str, tz: str) -> pl.Series:
    """Datetime(us, UTC) of every row: the regular index, or the parsed timestamp column."""
    if plan.ts is None:
        assert spec.step is not None
        step_us = int(spec.step / dt.timedelta(microseconds=1))
        start = pl.lit(spec.first).cast(TS_DTYPE)
        return frame.select(
            (start + pl.duration(microseconds=pl.int_range(pl.len()).over("asset") * step_us)).alias("ts")
        ).to_series()
    col = frame[plan.ts]
    empty = col.is_null() if col.dtype != pl.String else (col.is_null() | (col.str.strip_chars().str.len_bytes() == 0))
    if empty.any():
        i = int(empty.arg_true()[0])
        raise InvalidInput("timestamp is empty", rule="unparseable-timestamp", file=source, row=int(frame[ROW][i]),
                           column=plan.ts, fix="fill in the time of the row, or remove the row")
    if isinstance(col.dtype, (pl.Datetime, pl.Date)):
        parsed = frame.select(typed_expr(pl.col(plan.ts), col.dtype, tz)).to_series()
        if parsed.null_count():
            i = int(parsed.is_null().arg_true()[0])
            raise InvalidInput(f"local time '{col[i]}' happens twice or not at all in {tz} (DST change)",
                               rule="ambiguous-local-time", file=source, row=int(frame[ROW][i]), column=plan.ts,
                               fix="store times in UTC or with an offset")
        return parsed.cast(TS_DTYPE)
    if col.dtype.is_float():
        raise InvalidInput(
            f"timestamp column '{plan.ts}' holds fractional numbers (e.g. {col[0]}), not times",
            rule="unparseable-timestamp", file=source, column=plan.ts,
            fix="for a simulation time axis, drop the column and give the step with --dt (e.g. --dt 1h); or "
                "write times as ISO 8601 or integer epoch seconds",
        )
    return parse_column(col.cast(pl.String), column=plan.ts, file=source, first_row=int(frame[ROW][0]), tz=tz,
                        fix="write timestamps as ISO 8601 (2024-01-31 14:30:00) or integer epoch seconds, one "
                            "layout per column; or give --dt for equally spaced rows")


def _check_rows(frame: pl.DataFrame, channels: tuple[str, ...], *, source: str) -> None:
    """Row rules in row order: a non-finite channel value, then time order within a system."""
    finite = [(~pl.col(c).is_finite().fill_null(False)).arg_true().first().alias(c) for c in channels]
    firsts = frame.select(*finite).row(0, named=True)
    bad = [(pos, c) for c, pos in firsts.items() if pos is not None]
    prev = pl.col("ts").shift(1).over("asset")
    back = frame.select((pl.col("ts") <= prev).fill_null(False).arg_true().first()).item()
    if bad and (back is None or min(bad)[0] <= back):
        pos, c = min(bad)
        value = frame[c][pos]
        what = "missing" if value is None else repr(value)
        raise InvalidInput(f"channel value is {what}, not a finite number", rule="non-finite", file=source,
                           row=int(frame[ROW][pos]), column=c,
                           fix="fill or remove the row: every channel value must be a finite number")
    if back is None:
        return
    rec = frame.row(back, named=True)
    earlier = frame.slice(0, back).filter(pl.col("asset") == rec["asset"]).tail(1).row(0, named=True)
    same = rec["ts"] == earlier["ts"]
    system = f"system {rec['asset']}: " if frame["asset"].n_unique() > 1 else ""
    raise InvalidInput(
        f"{system}the row at {fmt_ts(rec['ts'])} " + (f"repeats the time of row {earlier[ROW]}" if same else
                                                       f"comes after row {earlier[ROW]} at {fmt_ts(earlier['ts'])}"),
        rule="duplicate-timestamp" if same else "non-monotonic-time", file=source, row=int(rec[ROW]), column="ts",
        fix="keep one row per system and time: remove the other row" if same else
            "put each system's rows in time order (series are never re-sorted: a row out of order usually means "
            "two series were concatenated)",
    )


def _check_systems(frame: pl.DataFrame, channels: tuple[str, ...], *, source: str) -> None:
    """Per system: enough rows, and no constant channel."""
    stats = frame.group_by("asset", maintain_order=True).agg(
        pl.len().alias("__n"), *((pl.col(c).max() == pl.col(c).min()).alias(c) for c in channels))
    for row in stats.iter_rows(named=True):
        if row["__n"] < MIN_ROWS:
            raise InvalidInput(
                f"system {row['asset']} has {row['__n']} row(s); a series needs at least {MIN_ROWS}",
                rule="too-few-rows", file=source,
                fix=f"give at least {MIN_ROWS} rows per system (the features standardise over trailing windows and "
                    "the split needs training, validation and test rows), or remove the system",
            )
        flat = [c for c in channels if row[c]]
        if flat:
            value = frame.filter(pl.col("asset") == row["asset"])[flat[0]][0]
            raise InvalidInput(
                f"channel '{flat[0]}' of system {row['asset']} is constant ({value!r} on every row): it carries "
                "nothing, and its standardised increments and levels would divide by zero",
                rule="constant-channel", file=source, column=flat[0],
                fix="remove the channel from every source (all systems share the channel names)",
            )


def check_frame(raw: pl.DataFrame, spec: SeriesSpec, *, source: str, system: str | None, ts_column: str | None,
                tz: str | None, first_row: int = 1, default_system: str | None = None) -> Read:
    """Read and check one source already loaded as `raw` (its row i is row `first_row + i`).

    `system` names a source without a `system` column (else `default_system`, e.g. the file
    stem; with neither: `missing-system`). Returns the checked `Read`; raises InvalidInput
    for the first broken rule."""
    zone = check_tz(tz)
    notes: list[str] = []
    plan = _plan(list(raw.columns), source=source, ts_column=ts_column, step=spec.step is not None)
    frame = raw.with_row_index(ROW, offset=first_row)
    content = [c for c in raw.columns if c not in plan.dropped]
    blank = frame.select(pl.all_horizontal([_blank(frame, c) for c in content]).alias("b"))["b"]
    if blank.any():
        notes.append(f"skipped {int(blank.sum())} blank row(s)")
        frame = frame.filter(~blank)
    if frame.height == 0:
        raise InvalidInput("no data rows", rule="empty-file", file=source,
                           fix="check the file was saved completely, or remove it from the sources")
    notes.extend(f"dropped the index column '{name}'" + (" (--dt sets the times)" if plan.ts is None else "")
                 for name in plan.dropped)
    if plan.system is not None:
        names = frame[plan.system].cast(pl.String).str.strip_chars()
        empty = names.is_null() | (names.str.len_bytes() == 0)
        if empty.any():
            i = int(empty.arg_true()[0])
            raise InvalidInput("the system name is empty", rule="empty-system", file=source, row=int(frame[ROW][i]),
                               column=plan.system, fix="name the system of every row, or remove the row")
        asset = names.alias("asset")
        if system is not None:
            notes.append(f"--asset ignored: the source names its systems in column '{plan.system}'")
    else:
        name = system or default_system
        if not name:
            raise InvalidInput("the frame has no 'system' column and no system name was given", rule="missing-system",
                               file=source, fix="pass system='name', or add a 'system' column")
        asset = pl.Series("asset", [name] * frame.height, pl.String)
        if system is None:
            notes.append(f"system '{name}' named after the file (use --asset to name it)")
    frame = frame.with_columns(asset)
    values = [_numbers(frame, c, source=source).alias(c) for c in plan.channels]
    ts = _times(frame, plan, spec, source=source, tz=zone)
    frame = frame.select("asset", ts.alias("ts"), *values, ROW)
    _check_rows(frame, plan.channels, source=source)
    _check_systems(frame, plan.channels, source=source)
    out = frame.drop(ROW)
    if plan.system is not None:
        out = out.sort("asset", maintain_order=True)  # each system's rows keep their (checked) time order
    return Read(out, plan.channels, tuple(notes))


def _blank(frame: pl.DataFrame, name: str) -> pl.Expr:
    col = pl.col(name)
    if frame.schema[name] == pl.String:
        return col.is_null() | (col.str.strip_chars().str.len_bytes() == 0)
    return col.is_null()


def load_file(path: str) -> tuple[pl.DataFrame, int]:
    """A series file as a raw frame (CSV: every column as text) and the row number of its
    first record (CSV: 2, below the header; Parquet: 1)."""
    if not os.path.isfile(path):
        raise InvalidInput(f"no such file: {path}", rule="missing-file", file=path,
                           fix="give the path of a CSV or Parquet file, or of a folder of them")
    if os.path.getsize(path) == 0:
        raise InvalidInput("the file is empty (0 bytes)", rule="empty-file", file=path,
                           fix="check the file was saved completely, or remove it from the sources")
    with open(path, "rb") as f:
        parquet = f.read(4) == b"PAR1"
    try:
        if parquet:
            return pl.read_parquet(path), 1
        return pl.read_csv(path, infer_schema=False), 2
    except pl.exceptions.PolarsError as e:
        kind = "Parquet" if parquet else "CSV"
        raise InvalidInput(f"cannot read the file as {kind}: {str(e).splitlines()[0]}", rule="unreadable-file",
                           file=path, fix=f"save it as a complete {kind} file (UTF-8, one header line for CSV)",
                           ) from None


def read_sources(sources: Sequence[tuple[str, pl.DataFrame, int, str | None]], spec: SeriesSpec, *,
                 system: str | None = None, ts_column: str | None = None, tz: str | None = None
                 ) -> tuple[pl.DataFrame, tuple[str, ...], list[str]]:
    """Check every source (`(name, raw frame, first row, default system)`) and combine them:
    returns (`asset, ts, *channels` sorted by (asset, ts), the channels, notes). Every
    source must hold the same channel names and distinct systems."""
    if system is not None and len(sources) > 1:
        raise InvalidInput(f"--asset names one system, but {len(sources)} sources were given", rule="bad-option",
                           fix="drop --asset (each file is named after its stem), or add a 'system' column")
    reads: list[tuple[str, Read]] = []
    notes: list[str] = []
    for name, raw, first_row, default in sources:
        read = check_frame(raw, spec, source=name, system=system, ts_column=ts_column, tz=tz, first_row=first_row,
                           default_system=default)
        prefix = f"{name}: " if len(sources) > 1 else ""
        notes += [prefix + n for n in read.notes]
        reads.append((name, read))
    first_name, first = reads[0]
    owner: dict[str, str] = {}
    frames = []
    for name, read in reads:
        if set(read.channels) != set(first.channels):
            raise InvalidInput(
                f"every system must have the same channel names: {first_name} has {list(first.channels)}, "
                f"this one {list(read.channels)}",
                rule="mismatched-channels", file=name,
                fix="rename or drop columns so that every source holds the same channels (ingest systems observed "
                    "differently into separate datasets)",
            )
        if read.channels != first.channels:
            notes.append(f"{name}: channels reordered as in {first_name} ({', '.join(first.channels)})")
        for s in read.frame["asset"].unique(maintain_order=True).to_list():
            if s in owner:
                raise InvalidInput(f"system {s} is in two sources: {owner[s]} and {name}", rule="duplicate-system",
                                   file=name, fix="give each system in one source only (rename one of them)")
            owner[s] = name
        frames.append(read.frame.select("asset", "ts", *first.channels))
    frame = pl.concat(frames).sort("asset", maintain_order=True)
    channels = first.channels
    notes.append(f"series: {len(owner)} system(s), channels {', '.join(channels)} (the first, '{channels[0]}', "
                 "plays the role of the price: its increments are the returns the futures forecast)")
    return frame, channels, notes


def read_files(paths: Sequence[str], spec: SeriesSpec, *, system: str | None = None, ts_column: str | None = None,
               tz: str | None = None) -> tuple[pl.DataFrame, tuple[str, ...], list[str]]:
    """`read_sources` over files (each system named after its file's stem unless it has a
    `system` column)."""
    bad = [p for p in paths if not p.lower().endswith(EXTENSIONS)]
    if bad:
        raise InvalidInput(f"{bad[0]} is not a CSV or Parquet file", rule="unknown-format", file=bad[0],
                           fix=f"--format series reads files ending in {', '.join(EXTENSIONS)}")
    sources = []
    for path in paths:
        raw, first_row = load_file(path)
        sources.append((path, raw, first_row, stem(path)))
    return read_sources(sources, spec, system=system, ts_column=ts_column, tz=tz)


def frame_digest(frame: pl.DataFrame) -> str:
    """sha256 of a frame's column names, dtypes and values (what a dataset id hashes for an
    in-process frame, like a file's bytes)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for name in frame.columns:
        col = frame[name]
        h.update(f"{name}\x00{col.dtype}\x00{col.null_count()}\x00".encode())
        if col.dtype.is_numeric():
            h.update(col.cast(pl.Float64).fill_null(np.nan).to_numpy().tobytes())
            h.update(col.is_null().to_numpy().tobytes())
        elif col.dtype.is_temporal():
            h.update(col.to_physical().fill_null(0).cast(pl.Int64).to_numpy().tobytes())
            h.update(col.is_null().to_numpy().tobytes())
        else:
            h.update("\x1f".join("\x00" if v is None else str(v) for v in col.to_list()).encode())
    return h.hexdigest()
