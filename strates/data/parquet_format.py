"""Parquet bar files: the same column names as CSV; timestamps stored as datetime (naive
or with a zone), date, ISO text or integer epoch; prices numeric (or text, then parsed)."""

from __future__ import annotations

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.columns import plan_columns
from strates.data.readers import (
    ROW,
    SAMPLE_ROWS,
    TS_RAW,
    Options,
    asset_expr,
    finish,
    number,
    raise_empty,
    source_names,
    stem,
)
from strates.data.timeparse import TimeParser, detect, typed_expr


def read_parquet(path: str, opts: Options) -> tuple[pl.DataFrame, list[str], bool]:
    notes: list[str] = []
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as e:  # noqa: BLE001 - pyarrow/polars raise several kinds for a bad file
        raise InvalidInput(
            f"cannot read the file as Parquet: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
            rule="unreadable-file",
            fix="check that the file is a complete Parquet file (re-export it)",
            file=path,
        ) from None
    names = list(schema)
    found = ", ".join(f"'{n}' ({schema[n]})" for n in names)
    plan = plan_columns(
        names,
        file=path,
        ts_column=opts.ts_column,
        keep_extra=opts.keep_extra,
        numeric={n: schema[n].is_numeric() for n in names},
        has_asset_option=opts.asset is not None,
    )
    notes += plan.notes
    lf = pl.scan_parquet(path).with_row_index(ROW, offset=1)
    raw_numbers = False
    for field, src in plan.fields.items():
        dtype = schema[src]
        if dtype == pl.String:
            raw_numbers = True
        elif not dtype.is_numeric():
            raise InvalidInput(
                f"column '{src}' ({field}) has dtype {dtype}, not a number; columns: {found}",
                rule="unknown-columns",
                fix=f"store {field} as a float or integer column",
                file=path,
                column=src,
            )
    ts_dtype = schema[plan.ts]
    if ts_dtype.is_temporal() and isinstance(ts_dtype, (pl.Datetime, pl.Date)):
        time = TimeParser(kind="datetime", tz=opts.tz)
        ts_expr = typed_expr(pl.col(plan.ts), ts_dtype, opts.tz)
        aware = getattr(ts_dtype, "time_zone", None)
        notes.append(
            f"timestamps stored with time zone {aware}, converted to UTC" if aware
            else ("assumed UTC for naive timestamps (use --tz to set their zone)" if opts.tz == "UTC"
                  else f"naive timestamps read as {opts.tz} local time and converted to UTC")
        )
        ts_raw = pl.col(plan.ts).cast(pl.String)
    elif ts_dtype == pl.String or ts_dtype.is_integer():
        first = pl.scan_parquet(path).select(plan.ts).head(SAMPLE_ROWS).collect().to_series().to_list()
        time = detect(first, tz=opts.tz, column=plan.ts, file=path, first_row=1)
        notes += time.notes
        col = pl.col(plan.ts)
        if time.kind == "epoch" and ts_dtype == pl.String:
            col = col.str.strip_chars().cast(pl.Int64, strict=False)
        elif time.kind == "text" and ts_dtype != pl.String:
            col = col.cast(pl.String)
        ts_expr = time.expr(col.cast(pl.Int64) if time.kind == "epoch" else col)
        ts_raw = pl.col(plan.ts)
    else:
        raise InvalidInput(
            f"timestamp column '{plan.ts}' has dtype {ts_dtype}; columns: {found}",
            rule="unknown-columns",
            fix="store timestamps as a datetime, date, ISO string or integer epoch column",
            file=path,
            column=plan.ts,
        )
    asset_value = None
    if plan.asset is None:
        asset_value = opts.asset or stem(path)
        if opts.asset is None:
            notes.append(f"asset '{asset_value}' taken from the file name (use --asset to set it)")
    exprs = [asset_expr(plan.asset, asset_value), ts_raw.alias(TS_RAW), ts_expr.alias("ts")]
    for field, src in plan.fields.items():
        exprs += number(src, field, raw_numbers=raw_numbers and schema[src] == pl.String)
    exprs += [pl.col(src).cast(pl.Float64).alias(out) for src, out in plan.extras]
    frame = lf.select(*exprs, ROW).collect()
    if frame.height == 0:
        raise_empty(path, "the Parquet file has no rows")
    bars, in_order = finish(frame, file=path, time=time, extras=[o for _, o in plan.extras], notes=notes,
                            raw_numbers=False, one_asset=plan.asset is None, sources=source_names(plan))
    return bars, notes, in_order


