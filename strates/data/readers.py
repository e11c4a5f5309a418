"""What every bar reader shares: options, small helpers, and `finish`.

Every reader (`csv_format`, `parquet_format`, `bybit_format`) ends in `finish`, which
parses what is left of the timestamps, drops blank lines, runs `validate.inspect` once and,
when a rule is broken, refines the violation with the raw value the file held
(`unparseable-number`, `mixed-timezone`, ...) and names the column as the file does.

Row numbers (`__row`): for CSV the line number in an editor (header = line 1), counted
as header lines + record index, which is exact unless a quoted field holds a newline
(then rows after it are off by one per embedded newline). Blank lines count as records,
so they keep the numbering exact. For Parquet and JSON, the 1-based record index.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, replace

import polars as pl

from strates.core.errors import InvalidInput
from strates.data import validate
from strates.data.columns import ColumnPlan
from strates.data.schema import BAR_COLUMNS
from strates.data.timeparse import TimeParser

ROW = validate.ROW
TS_RAW = "__ts_raw"
RAW = "__raw_"
SAMPLE_BYTES = 1 << 16
SAMPLE_ROWS = 200
FIELDS = ("open", "high", "low", "close", "volume")



@dataclass(frozen=True)
class Options:
    """What the readers need from `SourceOptions` (resolved: tz checked, never None)."""

    ts_column: str | None
    asset: str | None
    tz: str
    keep_extra: bool


# ----------------------------------------------------------------------------- helpers


def head_bytes(path: str, n: int = SAMPLE_BYTES) -> tuple[bytes, bool]:
    """The first `n` bytes of the file (decompressed if gzip) and whether that is all."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:  # type: ignore[operator]
            data = f.read(n + 1)
    except (OSError, EOFError) as e:
        raise InvalidInput(f"cannot read the file: {e}", rule="unreadable-file", file=path,
                           fix="check that the file is complete (re-download it)") from None
    return data[:n], len(data) <= n


def stem(path: str) -> str:
    name = os.path.basename(path)
    for ext in (".csv.gz", ".csv", ".parquet", ".pq", ".json", ".gz", ".txt"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return os.path.splitext(name)[0]


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def numeric_sample(sample: pl.DataFrame) -> dict[str, bool]:
    out = {}
    for name in sample.columns:
        col = sample[name]
        if col.dtype == pl.String:
            cast = col.str.strip_chars().cast(pl.Float64, strict=False)
            out[name] = cast.null_count() == col.null_count()
        else:
            out[name] = col.dtype.is_numeric()
    return out


def asset_expr(plan_asset: str | None, value: str | None) -> pl.Expr:
    if plan_asset is not None:
        return pl.col(plan_asset).cast(pl.String).alias("asset")
    return pl.lit(value, dtype=pl.String).alias("asset")


def raise_empty(path: str, what: str) -> None:
    raise InvalidInput(
        f"no data rows ({what})",
        rule="empty-file",
        fix="check the file was saved completely, or remove it from the source folder",
        file=path,
    )


# ----------------------------------------------------------------------------- finish


def finish(
    frame: pl.DataFrame,
    *,
    file: str,
    time: TimeParser,
    extras: list[str],
    notes: list[str],
    raw_numbers: bool,
    one_asset: bool = False,
    sources: dict[str, str] | None = None,
) -> tuple[pl.DataFrame, bool]:
    """Frame with asset, TS_RAW, ts, the five fields (plus RAW+field text when
    `raw_numbers`), extras and ROW -> (validated BAR_COLUMNS + extras + ROW, whether its
    rows are strictly increasing in (asset, ts)). `sources` maps bar fields to the file's
    column names, so an error names the column as the file does."""
    if TS_RAW in frame.columns and frame["ts"].null_count() > frame[TS_RAW].null_count():
        frame = frame.with_columns(time.fallback(frame[TS_RAW], frame["ts"]).alias("ts"))
    if TS_RAW in frame.columns and frame[TS_RAW].null_count():
        content = [TS_RAW, *((RAW + f) if raw_numbers else f for f in FIELDS)]
        blank = pl.all_horizontal([pl.col(c).is_null() for c in content])
        n_blank = int(frame.select(blank.sum()).item())
        if n_blank:
            frame = frame.filter(~blank)
            notes.append(f"skipped {n_blank} blank line{'s' if n_blank > 1 else ''}")
    if frame.height == 0:
        raise_empty(file, "the file has a header but no rows")
    bars = frame.select(*BAR_COLUMNS, *extras, ROW)
    one_asset = one_asset and bool(bars["asset"][0])
    violation, in_order = validate.inspect(bars, one_asset=one_asset)
    if violation is not None:
        violation = _refine(violation, frame, time)
        if sources and violation.column in sources:
            violation = replace(violation, column=sources[violation.column])
        raise violation.error(file)
    return bars, in_order


def source_names(plan: ColumnPlan) -> dict[str, str]:
    out = {"ts": plan.ts, **plan.fields}
    if plan.asset:
        out["asset"] = plan.asset
    return out


def _refine(v: validate.Violation, frame: pl.DataFrame, time: TimeParser) -> validate.Violation:
    rec = frame.row(v.position, named=True)
    if v.rule == "unparseable-timestamp" and TS_RAW in rec:
        rule, message = time.explain(rec[TS_RAW])
        fix = {
            "mixed-timezone": "give every timestamp a UTC offset (or Z), or none of them "
            "(then --tz names their zone)",
            "ambiguous-local-time": "give timestamps in UTC or with their UTC offset",
        }.get(rule)
        return v.with_message(rule, message, fix)
    if v.rule == "non-finite" and v.column and (RAW + v.column) in rec:
        raw = rec[RAW + v.column]
        if raw is not None and rec[v.column] is None:
            return v.with_message(
                "unparseable-number",
                f"cannot read '{raw}' as a number",
                "write numbers with a dot as decimal separator and no thousands separator "
                "(e.g. 1234.5)",
            )
    return v


def number(src: str, field: str, raw_numbers: bool) -> list[pl.Expr]:
    col = pl.col(src)
    if not raw_numbers:
        return [col.cast(pl.Float64).alias(field)]
    return [
        col.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False).alias(field),
        col.cast(pl.String).alias(RAW + field),
    ]
