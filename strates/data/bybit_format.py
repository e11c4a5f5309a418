"""Bybit v5 kline JSON saved to disk: one `/v5/market/kline` response, or a JSON array of
them (pages). Each `result.list` item is [startTime ms, open, high, low, close, volume,
turnover] as strings, newest first; the asset is `result.symbol`."""

from __future__ import annotations

import gzip
import json

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.readers import (
    FIELDS,
    ROW,
    SAMPLE_ROWS,
    TS_RAW,
    Options,
    finish,
    number,
    raise_empty,
    stem,
)
from strates.data.timeparse import detect

BYBIT_COLUMNS = ("start_time", "open", "high", "low", "close", "volume", "turnover")


def _bad_json(path: str, message: str, row: int | None = None) -> InvalidInput:
    return InvalidInput(
        message,
        rule="bad-json",
        fix="save the Bybit v5 /market/kline response unchanged (one response, or a JSON "
        "array of responses)",
        file=path,
        row=row,
    )


def read_bybit(path: str, opts: Options) -> tuple[pl.DataFrame, list[str], bool]:
    """Bybit v5 kline responses: `{"retCode":0,"result":{"symbol":..,"list":[[start ms,
    open, high, low, close, volume, turnover], ...]}}`, newest first; or an array of them."""
    notes = ["detected format bybit-json"]
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if not data.strip():
        raise_empty(path, "the file is empty")
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = f" at line {e.lineno} column {e.colno}" if isinstance(e, json.JSONDecodeError) else ""
        raise _bad_json(path, f"not valid JSON{where}: {getattr(e, 'msg', e)}",
                        getattr(e, "lineno", None)) from None
    pages = doc if isinstance(doc, list) else [doc]
    rows: list[list[str | None]] = []
    assets: list[str] = []
    symbols: list[str] = []
    for p, page in enumerate(pages, start=1):
        if not isinstance(page, dict) or "retCode" not in page or "result" not in page:
            raise _bad_json(path, f"page {p} is not a Bybit response (no retCode/result keys)")
        if page["retCode"] != 0:
            raise InvalidInput(
                f"Bybit returned an error in page {p}: retCode {page['retCode']}, "
                f"retMsg '{page.get('retMsg', '')}'",
                rule="bybit-error",
                fix="fetch the data again (check symbol, category and interval) and save a "
                "response with retCode 0",
                file=path,
            )
        result = page["result"]
        items = result.get("list") if isinstance(result, dict) else None
        if not isinstance(items, list):
            raise _bad_json(path, f"page {p} has no result.list")
        symbol = result.get("symbol")
        if not symbol:
            symbol = opts.asset or stem(path)
            notes.append(f"page {p} has no result.symbol: asset '{symbol}' from "
                         + ("--asset" if opts.asset else "the file name"))
        for item in items:
            if not isinstance(item, list) or len(item) < 6:
                raise _bad_json(
                    path, f"kline {len(rows) + 1} is {json.dumps(item)[:80]}, expected "
                    "[startTime, open, high, low, close, volume, turnover]", len(rows) + 1
                )
            rows.append([None if x is None else str(x) for x in [*item, None][:7]])
            assets.append(symbol)
        if symbol not in symbols:
            symbols.append(symbol)
    if not rows:
        raise_empty(path, "result.list is empty")
    notes.append(f"asset {', '.join(symbols)}")
    time = detect([r[0] for r in rows[:SAMPLE_ROWS]], tz=opts.tz, column="start_time", file=path, first_row=1)
    if time.kind != "epoch":
        raise _bad_json(path, f"startTime '{rows[0][0]}' is not an epoch time in milliseconds", 1)
    notes += [n for n in time.notes if "naive" not in n]
    raw = pl.DataFrame(rows, schema=dict.fromkeys(BYBIT_COLUMNS, pl.String), orient="row")
    raw = raw.with_columns(pl.Series("asset", assets, dtype=pl.String))
    exprs = [
        pl.col("asset"),
        pl.col("start_time").alias(TS_RAW),
        time.expr(pl.col("start_time").str.strip_chars().cast(pl.Int64, strict=False)).alias("ts"),
    ]
    for field in FIELDS:
        exprs += number(field, field, raw_numbers=True)
    extras = []
    if opts.keep_extra:
        extras = ["turnover"]
        exprs.append(pl.col("turnover").cast(pl.Float64, strict=False))
        notes.append("kept extra column 'turnover'")
    else:
        notes.append("dropped extra column 'turnover' (use --keep-extra to keep it)")
    frame = raw.with_row_index(ROW, offset=1).select(*exprs, ROW)
    bars, in_order = finish(frame, file=path, time=time, extras=extras, notes=notes, raw_numbers=True)
    return bars, notes, in_order
