"""Bar sources: find the files, detect their format, read and validate them, combine them.

Formats (`SourceOptions.format`, `auto` by default; what was detected is always said in
the notes):

- `csv`: OHLCV as people save it (pandas/yfinance, exchange exports, `.csv.gz`); columns matched by
  name (see `strates.data.columns`), timestamps by layout (see `strates.data.timeparse`). Detection:
  anything else that has a header line.
- `parquet`: the same columns in a Parquet file; datetime, date, string or integer timestamps.
  Detection: the `PAR1` magic bytes.
- `bybit-json`: Bybit v5 `/market/kline` responses saved to disk, one or a JSON array of pages.
  Detection: the file starts with `{` or `[`.
- `binance-csv`: data.binance.vision kline dumps: 12 columns, no header (or the `open_time,...`
  header), open time in ms (µs for spot from 2025). Detection: first line is 12 numbers, or that
  header.

`read_bars` validates each file's rows itself (`strates.data.validate`), so an error names
the file, the row and the column. `read_all` then checks that no (asset, ts) appears in two
files, and sorts by (asset, ts) only when the input was not already in that order.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass

import polars as pl

from strates.core.errors import InvalidInput
from strates.data import bybit_format, csv_format, parquet_format, readers, validate
from strates.data.schema import BAR_COLUMNS
from strates.data.timeparse import check_tz

FORMATS = ("auto", "csv", "parquet", "bybit-json", "binance-csv")
EXTENSIONS = (".csv", ".csv.gz", ".parquet", ".json")
_FILE = "__file"


@dataclass(frozen=True, kw_only=True)
class SourceOptions:
    """How to read bar files.

    format: one of FORMATS; `auto` detects per file.
    ts_column: the timestamp column, when the names do not say it (or say it twice).
    asset: asset name for files without an asset/symbol/ticker column (default: the file
      name stem, or for Binance dumps the stem before the first `-`).
    tz: IANA zone of naive timestamps (default UTC); values with an offset ignore it.
    keep_extra: keep extra numeric columns (renamed snake_case) instead of dropping them.
    """

    format: str = "auto"
    ts_column: str | None = None
    asset: str | None = None
    tz: str | None = None
    keep_extra: bool = False

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidInput(
                f"unknown format '{self.format}'",
                rule="bad-option",
                fix=f"use one of: {', '.join(FORMATS)}",
            )
        check_tz(self.tz)
        if self.asset is not None and not self.asset.strip():
            raise InvalidInput("--asset is empty", rule="bad-option", fix="give a name such as BTCUSDT")


def list_source_files(path: str) -> list[str]:
    """`path` itself if it is a file; for a folder, every *.csv, *.csv.gz, *.parquet and
    *.json below it (recursively, hidden files and folders skipped), sorted."""
    if not os.path.exists(path):
        raise InvalidInput(
            f"no such file or folder: {path}",
            rule="missing-file",
            fix="give the path of a bar file or of a folder of bar files",
            file=path,
        )
    if os.path.isfile(path):
        return [path]
    found = []
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [os.path.join(root, name) for name in files
                  if not name.startswith(".") and name.lower().endswith(EXTENSIONS)]
    if not found:
        raise InvalidInput(
            f"the folder {path} holds no bar files",
            rule="no-source-files",
            fix=f"put files ending in {', '.join(EXTENSIONS)} in it, or point at another folder",
            file=path,
        )
    return sorted(found)


def detect_format(path: str, options: SourceOptions) -> str:
    """The explicit format, or for `auto` one decided from the first bytes: 'parquet',
    'bybit-json', or 'auto-csv' (the CSV reader then tells generic from Binance)."""
    if options.format != "auto":
        return options.format
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"PAR1":
        return "parquet"
    head, _ = readers.head_bytes(path, 256)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"["):
        return "bybit-json"
    return "auto-csv"


def read_bars(path: str, options: SourceOptions) -> tuple[pl.DataFrame, list[str]]:
    """Read and validate one file.

    Returns (frame, notes): BAR_COLUMNS (schema.BAR_SCHEMA dtypes), then kept extra
    columns (Float64), then `__row` (UInt32: the line number in an editor for CSV, header =
    line 1; the 1-based record index for Parquet and JSON), in file order (not sorted).
    Raises InvalidInput (naming this file) for the first broken rule.
    """
    frame, notes, _ = _read_one(path, options)
    return frame, notes


def _read_one(path: str, options: SourceOptions) -> tuple[pl.DataFrame, list[str], bool]:
    if not os.path.isfile(path):
        list_source_files(path)  # raises the right error for a missing path
        raise InvalidInput(f"{path} is a folder", rule="missing-file", file=path,
                           fix="use read_all(list_source_files(path)) for folders")
    if os.path.getsize(path) == 0:
        raise InvalidInput(
            "the file is empty (0 bytes)",
            rule="empty-file",
            fix="check the file was saved completely, or remove it from the source folder",
            file=path,
        )
    opts = readers.Options(
        ts_column=options.ts_column,
        asset=options.asset,
        tz=check_tz(options.tz),
        keep_extra=options.keep_extra,
    )
    fmt = detect_format(path, options)
    if fmt == "parquet":
        frame, notes, in_order = parquet_format.read_parquet(path, opts)
        if options.format == "auto":
            notes.insert(0, "detected format parquet")
    elif fmt == "bybit-json":
        frame, notes, in_order = bybit_format.read_bybit(path, opts)
    else:
        frame, notes, in_order = csv_format.read_csv(path, "auto" if fmt == "auto-csv" else fmt, opts)
    return frame, notes, in_order


def read_all(paths: list[str], options: SourceOptions) -> tuple[pl.DataFrame, list[str]]:
    """Read every file, reject an (asset, ts) present in two files, concatenate, and sort
    by (asset, ts) when the input was not in that order (said in the notes).

    Returns BAR_COLUMNS + kept extras (null where a file lacks them), without `__row`.
    """
    if not paths:
        raise InvalidInput("no bar files given", rule="no-source-files",
                           fix="give a bar file or a folder of bar files")
    frames: list[pl.DataFrame] = []
    notes: list[str] = []
    extras: list[str] = []
    in_order = True
    for path in paths:
        frame, file_notes, file_in_order = _read_one(path, options)
        prefix = f"{path}: " if len(paths) > 1 else ""
        notes += [prefix + n for n in file_notes]
        extras += [c for c in frame.columns if c not in BAR_COLUMNS and c != validate.ROW and c not in extras]
        frames.append(frame)
        in_order = in_order and file_in_order
    if len(frames) == 1:
        frame = frames[0]
    else:
        frame = pl.concat(
            [f.with_columns(pl.lit(i, dtype=pl.UInt32).alias(_FILE)) for i, f in enumerate(frames)],
            how="diagonal",
            rechunk=False,
        )
        # every file is in order: only the seams between files can break the order
        in_order = in_order and _seams_in_order(frames)
    if not in_order:
        frame = _sort(frame, paths, notes)
    return frame.select(*BAR_COLUMNS, *extras), notes


def _seams_in_order(frames: list[pl.DataFrame]) -> bool:
    ends = [(f["asset"][-1], f["ts"][-1], f["asset"][0], f["ts"][0]) for f in frames]
    return all(a_end < b_start or (a_end == b_start and t_end < u_start)
               for (a_end, t_end, _, _), (_, _, b_start, u_start) in itertools.pairwise(ends))


def _sort(frame: pl.DataFrame, paths: list[str], notes: list[str]) -> pl.DataFrame:
    """Sort by (asset, ts), note the out-of-order rows per file, and reject an (asset, ts)
    found in two files (rows within one file were checked by `read_bars`).

    Sorting is done per asset (`partition_by`, then a stable sort by ts only where an
    asset's rows are not already in time order): a file sorted by (ts, asset) needs no sort
    at all, only a regrouping, which is several times cheaper than a two-key sort.
    """
    multi = _FILE in frame.columns
    back = validate.out_of_order_mask()
    if multi:
        back = back & (pl.col(_FILE) == pl.col(_FILE).shift(1))
        counts = frame.group_by(_FILE).agg(back.sum().alias("n"), pl.len().alias("rows")).sort(_FILE)
    else:
        counts = frame.select(pl.lit(0).alias(_FILE), back.sum().alias("n"), pl.len().alias("rows"))
    for file_index, n, rows in counts.iter_rows():
        if n:
            newest_first = " (newest first)" if n == rows - 1 and rows > 2 else ""
            notes.append(f"sorted {n} out-of-order rows in {paths[file_index]}{newest_first}")
    parts = frame.partition_by("asset", maintain_order=True, as_dict=True)
    ordered = []
    for key in sorted(parts):
        part = parts[key]
        if not part["ts"].is_sorted():
            part = part.sort("ts", maintain_order=True)
        ordered.append(part)
    frame = pl.concat(ordered, rechunk=False)
    if multi:
        dup = (pl.col("asset") == pl.col("asset").shift(1)) & (pl.col("ts") == pl.col("ts").shift(1))
        hit = frame.select(dup.arg_true().first()).item()
        if hit is not None:
            later, earlier = frame.row(hit, named=True), frame.row(hit - 1, named=True)
            a, b = paths[earlier[_FILE]], paths[later[_FILE]]
            raise InvalidInput(
                f"asset {later['asset']} has a bar at {validate.fmt_ts(later['ts'])} in two files: "
                f"{a} (row {earlier[validate.ROW]}) and {b} (row {later[validate.ROW]})",
                rule="duplicate-timestamp",
                fix="give each bar in one file only: remove the overlapping rows or file",
                file=b,
                row=later[validate.ROW],
                column="ts",
            )
        if counts["n"].sum() == 0:
            notes.append("files overlap in time or are not in (asset, ts) order; rows sorted by (asset, ts)")
    return frame
