"""CSV bar files: generic OHLCV (pandas, yfinance, exchange exports) and Binance dumps.

The layout is decided from the first 64 KiB: separator (`,`, tab or `;`), header (or a
Binance headerless dump), the yfinance three-line header, which column is which
(`strates.data.columns`) and how timestamps are written (`strates.data.timeparse`).

The file is then read straight from its path with one lazy query. The fast path gives
polars the dtypes (prices Float64, epoch Int64, text String) and parses the timestamps in
the same query; if polars refuses a value, the slow path reads every column as text,
casts with `strict=False` and keeps the raw text to name the offending value.
"""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.columns import ColumnPlan, plan_columns
from strates.data.readers import (
    FIELDS,
    ROW,
    SAMPLE_ROWS,
    TS_RAW,
    Options,
    asset_expr,
    finish,
    head_bytes,
    is_number,
    number,
    numeric_sample,
    raise_empty,
    source_names,
    stem,
)
from strates.data.timeparse import TimeParser, detect

BINANCE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "count",
    "taker_buy_volume",
    "taker_buy_quote_volume",
    "ignore",
)
BINANCE_EXTRAS = ("quote_volume", "count", "taker_buy_volume", "taker_buy_quote_volume")


@dataclass(frozen=True)
class CsvLayout:
    names: tuple[str, ...]
    has_header: bool
    separator: str
    plan: ColumnPlan
    asset_value: str | None
    time: TimeParser
    skip: int = 0  # lines between the header and the first row (yfinance)


def sniff_csv(path: str, fmt: str, opts: Options, notes: list[str]) -> CsvLayout:
    """Read the first 64 KiB and decide the layout: header, separator, columns, timestamps."""
    data, complete = head_bytes(path)
    if not data.strip():
        raise_empty(path, "the file is empty")
    if not complete and b"\n" in data:
        data = data[: data.rindex(b"\n") + 1]
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    first_line = text.splitlines()[0] if text.splitlines() else ""
    separator = max((",", "\t", ";"), key=first_line.count)
    if first_line.count(separator) == 0:
        separator = ","
    if separator != ",":
        notes.append(f"columns separated by {'tab' if separator == chr(9) else repr(separator)}")
    first = next(csv.reader([first_line], delimiter=separator), [])
    all_numbers = bool(first) and all(is_number(x) for x in first if x.strip())
    binance_header = [normalize_field(x) for x in first] == list(BINANCE_COLUMNS)
    if fmt == "auto":
        binance = (all_numbers and len(first) == len(BINANCE_COLUMNS)) or binance_header
        fmt = "binance-csv" if binance else "csv"
        notes.append(f"detected format {fmt}")
    if fmt == "binance-csv":
        return _binance_layout(path, text, first, all_numbers, separator, opts, notes)
    if all_numbers:
        raise InvalidInput(
            f"the first line holds numbers, not column names ({len(first)} fields: "
            f"{','.join(first[:6])}...)",
            rule="unknown-columns",
            fix="add a header line such as 'timestamp,open,high,low,close,volume' "
            "(Binance kline dumps have 12 columns and are read with --format binance-csv)",
            file=path,
            row=1,
        )
    skip, ts_column, asset_option = 0, opts.ts_column, opts.asset
    ticker = _yfinance_ticker(text, separator, path)
    if ticker is not None:
        # yfinance >= 0.2.51 writes three header lines: Price,..., Ticker,AAPL,..., Date,,,
        skip, ts_column = 2, ts_column or first[0]
        asset_option = asset_option or ticker
        notes.append(f"read the yfinance three-line header: asset '{ticker}', timestamps in column '{first[0]}'")
    sample = _sample(text, separator, has_header=True, names=None, skip=skip)
    names = sample.columns
    if sample.height == 0:
        raise_empty(path, "the file has a header but no rows")
    plan = plan_columns(
        names,
        file=path,
        ts_column=ts_column,
        keep_extra=opts.keep_extra,
        numeric=numeric_sample(sample),
        has_asset_option=opts.asset is not None,
    )
    asset_value = None
    if plan.asset is None:
        asset_value = asset_option or stem(path)
        if asset_option is None:
            notes.append(f"asset '{asset_value}' taken from the file name (use --asset to set it)")
    time = detect(sample[plan.ts].to_list(), tz=opts.tz, column=plan.ts, file=path, first_row=2 + skip)
    return CsvLayout(tuple(names), True, separator, plan, asset_value, time, skip)


def _yfinance_ticker(text: str, separator: str, path: str) -> str | None:
    """The ticker of a yfinance three-line header, else None. A header with several
    tickers (wide format) is rejected: it holds one column per asset and field."""
    lines = text.splitlines()[:3]
    if len(lines) < 3:
        return None
    second, third = (next(csv.reader([line], delimiter=separator), []) for line in lines[1:3])
    if not second or second[0].strip().lower() != "ticker" or any(x.strip() for x in third[1:]):
        return None
    tickers = sorted({x.strip() for x in second[1:] if x.strip()})
    if len(tickers) != 1:
        raise InvalidInput(
            f"a yfinance file with several tickers in one row of columns ({', '.join(tickers[:5])})",
            rule="unknown-columns",
            fix="download one ticker per file, or stack them: df.stack(level=1).reset_index() "
            "gives a long table with a Ticker column",
            file=path,
        )
    return tickers[0]


def normalize_field(name: str) -> str:
    return name.strip().strip('"').lower()


def _sample(
    text: str, separator: str, *, has_header: bool, names: list[str] | None, skip: int = 0
) -> pl.DataFrame:
    try:
        return pl.read_csv(
            io.StringIO(text),
            separator=separator,
            has_header=has_header,
            skip_rows_after_header=skip,
            new_columns=names,
            infer_schema=False,
            n_rows=SAMPLE_ROWS,
            truncate_ragged_lines=True,
        )
    except pl.exceptions.NoDataError:
        return pl.DataFrame()


def _binance_layout(
    path: str, text: str, first: list[str], all_numbers: bool, separator: str, opts: Options, notes: list[str]
) -> CsvLayout:
    has_header = not all_numbers
    if len(first) != len(BINANCE_COLUMNS):
        raise InvalidInput(
            f"a Binance kline file has {len(BINANCE_COLUMNS)} columns, this one {len(first)}",
            rule="unknown-columns",
            fix="use a data.binance.vision kline CSV, or --format csv with named columns",
            file=path,
            row=1,
        )
    sample = _sample(text, separator, has_header=has_header, names=list(BINANCE_COLUMNS))
    if sample.height == 0:
        raise_empty(path, "no kline rows")
    extras = tuple((n, n) for n in BINANCE_EXTRAS) if opts.keep_extra else ()
    plan = ColumnPlan(
        ts="open_time",
        fields={f: f for f in FIELDS},
        asset=None,
        extras=extras,
        notes=(),
    )
    asset = opts.asset or stem(path).split("-")[0]
    if opts.asset is None:
        notes.append(f"asset '{asset}' taken from the file name")
    notes.append("dropped Binance columns close_time, ignore")
    if not opts.keep_extra:
        notes.append(f"dropped extra columns {', '.join(BINANCE_EXTRAS)} (use --keep-extra to keep them)")
    time = detect(sample["open_time"].to_list(), tz=opts.tz, column="open_time", file=path,
                  first_row=2 if has_header else 1)
    return CsvLayout(BINANCE_COLUMNS, has_header, separator, plan, asset, time)


def read_csv(path: str, fmt: str, opts: Options) -> tuple[pl.DataFrame, list[str], bool]:
    notes: list[str] = []
    layout = sniff_csv(path, fmt, opts, notes)
    plan = layout.plan
    notes += [*plan.notes, *layout.time.notes]
    fields = {f: plan.fields[f] for f in FIELDS}
    extras = [out for _, out in plan.extras]
    numeric_sources = {*fields.values(), *(src for src, _ in plan.extras)}

    def query(fast: bool) -> pl.LazyFrame:
        schema: dict[str, pl.DataType] = {}
        for name in layout.names:
            if not fast:
                schema[name] = pl.String()
            elif name == plan.ts:
                schema[name] = layout.time.raw_dtype
            elif name in numeric_sources:
                schema[name] = pl.Float64()
            else:
                schema[name] = pl.String()
        lf = pl.scan_csv(
            path,
            schema=schema,
            has_header=layout.has_header,
            separator=layout.separator,
            skip_rows_after_header=layout.skip,
        ).with_row_index(ROW, offset=(2 if layout.has_header else 1) + layout.skip)
        ts_raw = pl.col(plan.ts)
        if not fast and layout.time.kind == "epoch":
            ts_raw = ts_raw.str.strip_chars().cast(pl.Int64, strict=False)
        exprs = [
            asset_expr(plan.asset, layout.asset_value),
            pl.col(plan.ts).alias(TS_RAW),
            layout.time.expr(ts_raw).alias("ts"),
        ]
        for field, src in fields.items():
            exprs += number(src, field, raw_numbers=not fast)
        for src, out in plan.extras:
            exprs += [pl.col(src).cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).alias(out)
                      if not fast else pl.col(src).alias(out)]
        return lf.select(*exprs, ROW)

    raw_numbers = False
    try:
        frame = query(fast=True).collect()
    except pl.exceptions.PolarsError:
        raw_numbers = True
        try:
            frame = query(fast=False).collect()
        except pl.exceptions.PolarsError as e:
            message = str(e).splitlines()[0]
            row = None
            if "more fields" in message:
                row = _first_long_line(path, layout.separator, len(layout.names))
                message = f"a line has more than the {len(layout.names)} fields of the header"
            raise InvalidInput(
                f"cannot read the file as CSV: {message}",
                rule="malformed-csv",
                fix="save it as UTF-8 CSV with the same number of fields on every line",
                file=path,
                row=row,
            ) from None
    bars, in_order = finish(frame, file=path, time=layout.time, extras=extras, notes=notes,
                            raw_numbers=raw_numbers, one_asset=plan.asset is None, sources=source_names(plan))
    return bars, notes, in_order


def _first_long_line(path: str, separator: str, n_fields: int) -> int | None:
    """The line number of the first record with more than `n_fields` fields (failure
    path only: this walks the file with the csv module)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    with opener(path, "rt", encoding="utf-8", errors="replace", newline="") as f:  # type: ignore[operator]
        reader = csv.reader(f, delimiter=separator)
        for record in reader:
            if len(record) > n_fields:
                return reader.line_num
    return None
