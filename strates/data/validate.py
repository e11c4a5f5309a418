"""The rules every bar must follow, checked in one vectorised pass.

`check_bars` computes one boolean per (rule, column) in a single `select`; only when one
of them is true does it locate the offending row (the smallest `__row`) and build the
message. Within one row the rules are reported in the order of `RULES`, columns in the
order of the schema, so a row with a NaN high says `non-finite`, not `high-below-low`.

| rule | a row breaks it when |
| ---- | -------------------- |
| `unparseable-timestamp` | `ts` is missing (the reader explains unreadable values) |
| `empty-asset` | `asset` is missing or empty |
| `non-finite` | a price or the volume is null, NaN or infinite |
| `non-positive-price` | a price is <= 0 |
| `high-below-low` | high < low |
| `high-below-open-close` | high < max(open, close) |
| `low-above-open-close` | low > min(open, close) |
| `negative-volume` | volume < 0 |
| `duplicate-timestamp` | a second row with the same (asset, ts); both rows are named |

Rules that need the raw text of a file (`unparseable-number`, `mixed-timezone`, `bad-json`,
`empty-file`, `unknown-columns`, `missing-column`, ...) are raised by the readers in
`strates.data.sources`, which refine a `Violation` found here with the value they read.

Duplicates are found without sorting when the frame is already strictly ordered by
(asset, ts) or by (ts, asset), the two layouts files come in; otherwise by sorting the
(asset, ts, position) keys once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import polars as pl

from strates.core.errors import InvalidInput
from strates.data.schema import PRICE_COLUMNS

ROW = "__row"

RULES: tuple[str, ...] = (
    "unparseable-timestamp",
    "empty-asset",
    "non-finite",
    "non-positive-price",
    "high-below-low",
    "high-below-open-close",
    "low-above-open-close",
    "negative-volume",
    "duplicate-timestamp",
)

# every rule id the bar readers raise (strates.data.sources and the *_format modules),
# beyond the per-row RULES above
READER_RULES: tuple[str, ...] = (
    "unparseable-number",
    "mixed-timezone",
    "ambiguous-local-time",
    "empty-file",
    "unknown-columns",
    "missing-column",
    "ambiguous-column",
    "malformed-csv",
    "bad-json",
    "bybit-error",
    "unreadable-file",
    "unknown-timezone",
    "bad-option",
    "missing-file",
    "no-source-files",
)
ALL_RULES: tuple[str, ...] = RULES + READER_RULES

FIXES: dict[str, str] = {
    "unparseable-timestamp": (
        "write timestamps as ISO 8601 (2024-01-31 or 2024-01-31 14:30:00, optionally with Z "
        "or an offset such as +01:00), US m/d/Y, or integer epoch seconds/milliseconds/"
        "microseconds; name the column with --ts-column if the wrong one was used"
    ),
    "empty-asset": "fill the asset/symbol column on every row, or drop it and pass --asset",
    "non-finite": "fill or remove the row: prices and volume must be finite numbers",
    "non-positive-price": "correct or remove the row: prices must be > 0",
    "high-below-low": "correct or remove the row: high must be >= low",
    "high-below-open-close": "correct or remove the row: high must be >= max(open, close)",
    "low-above-open-close": "correct or remove the row: low must be <= min(open, close)",
    "negative-volume": "correct or remove the row: volume must be >= 0",
    "duplicate-timestamp": "keep one bar per asset and timestamp: remove the other row",
}

_NUMERIC = (*PRICE_COLUMNS, "volume")


@dataclass(frozen=True)
class Violation:
    """The first broken rule in a frame.

    `position` is the 0-based index of the offending row in the frame, `row` its `__row`
    value (the line a person sees in an editor). For `duplicate-timestamp`,
    `other_position`/`other_row` name the earlier row with the same (asset, ts).
    """

    rule: str
    position: int
    row: int
    column: str | None
    message: str
    fix: str
    other_position: int | None = None
    other_row: int | None = None

    def error(self, file: str | None) -> InvalidInput:
        return InvalidInput(
            self.message, rule=self.rule, fix=self.fix, file=file, row=self.row, column=self.column
        )

    def with_message(self, rule: str, message: str, fix: str | None = None) -> Violation:
        return replace(self, rule=rule, message=message, fix=fix or FIXES.get(rule, self.fix))


def _row_masks() -> list[tuple[str, str | None, pl.Expr]]:
    """(rule, column, mask) for every per-row rule, in reporting order."""
    o, h, lo, c, v = (pl.col(name) for name in _NUMERIC)
    masks: list[tuple[str, str | None, pl.Expr]] = [
        ("unparseable-timestamp", "ts", pl.col("ts").is_null()),
        ("empty-asset", "asset", pl.col("asset").is_null() | (pl.col("asset").str.len_bytes() == 0)),
    ]
    masks += [("non-finite", name, ~pl.col(name).is_finite().fill_null(False)) for name in _NUMERIC]
    masks += [("non-positive-price", name, pl.col(name) <= 0) for name in PRICE_COLUMNS]
    masks += [
        ("high-below-low", "high", h < lo),
        ("high-below-open-close", "high", h < pl.max_horizontal(o, c)),
        ("low-above-open-close", "low", lo > pl.min_horizontal(o, c)),
        ("negative-volume", "volume", v < 0),
    ]
    return masks


def order_flags(*, one_asset: bool = False) -> dict[str, pl.Expr]:
    """Cheap aggregates that decide the order of rows without sorting (see `_order`).

    `chg` marks rows whose asset differs from the previous row's; `inc_within`: ts strictly
    increases within every run of one asset; `nondec`: ts never decreases overall.
    """
    a, t = pl.col("asset"), pl.col("ts")
    if one_asset:
        return {"n_chg": pl.lit(0), "inc_within": (t > t.shift(1)).all(), "nondec": (t >= t.shift(1)).all()}
    chg = a != a.shift(1)
    return {
        "n_chg": chg.sum(),
        "inc_within": ((t > t.shift(1)) | chg).all(),
        "nondec": (t >= t.shift(1)).all(),
    }


def _order(frame: pl.DataFrame, flags: dict, *, one_asset: bool) -> tuple[bool, bool]:
    """(in (asset, ts) order strictly, free of duplicates), decided without sorting when
    the frame is strictly ordered by (asset, ts) or by (ts, asset)."""
    if not flags["inc_within"]:
        asset_ts = False
    elif one_asset:
        asset_ts = True
    else:
        a = pl.col("asset")
        firsts = frame.select(a.filter((a != a.shift(1)).fill_null(True)))
        asset_ts = bool(firsts.select((a > a.shift(1)).all()).item())
    if asset_ts:
        return True, True
    if flags["nondec"] and not one_asset:
        a, t = pl.col("asset"), pl.col("ts")
        ts_asset = bool(frame.select(((a > a.shift(1)) | (t != t.shift(1))).all()).item())
        return False, ts_asset
    return False, False


def out_of_order_mask() -> pl.Expr:
    """True on rows whose (asset, ts) is smaller than the previous row's."""
    a, t = pl.col("asset"), pl.col("ts")
    return (a < a.shift(1)) | ((a == a.shift(1)) & (t < t.shift(1)))


def _fmt(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, float):
        return repr(value) if value == value else "NaN"
    return str(value)


def fmt_ts(value: object) -> str:
    """A UTC datetime as `2024-01-31 14:30:00 UTC` (microseconds only when present)."""
    if value is None:
        return "empty"
    text = value.replace(tzinfo=None).isoformat(sep=" ")  # type: ignore[attr-defined]
    return f"{text} UTC"


def _row_message(rule: str, column: str | None, rec: dict) -> str:
    o, h, lo, c, v = (rec.get(name) for name in _NUMERIC)
    if rule == "unparseable-timestamp":
        return "timestamp is missing"
    if rule == "empty-asset":
        return "asset is empty"
    if rule == "non-finite":
        return f"{column} is {_fmt(rec.get(column))}: prices and volume must be finite numbers"
    if rule == "non-positive-price":
        return f"{column} is {_fmt(rec.get(column))}: prices must be > 0"
    if rule == "high-below-low":
        return f"high {_fmt(h)} is below low {_fmt(lo)}"
    if rule == "high-below-open-close":
        return f"high {_fmt(h)} is below max(open {_fmt(o)}, close {_fmt(c)})"
    if rule == "low-above-open-close":
        return f"low {_fmt(lo)} is above min(open {_fmt(o)}, close {_fmt(c)})"
    if rule == "negative-volume":
        return f"volume {_fmt(v)} is negative"
    raise AssertionError(rule)


def _row_of(frame: pl.DataFrame, position: int) -> int:
    if ROW in frame.columns:
        return int(frame[ROW][position])
    return position + 1


def _first_duplicate(frame: pl.DataFrame) -> Violation | None:
    """Sort (asset, ts, position) once; report the earliest row repeating an earlier one."""
    keys = (
        frame.select("asset", "ts", pl.int_range(pl.len(), dtype=pl.Int64).alias("__pos"))
        .filter(pl.col("ts").is_not_null())
        .sort("asset", "ts", "__pos")
    )
    dup = (pl.col("asset") == pl.col("asset").shift(1)) & (pl.col("ts") == pl.col("ts").shift(1))
    pairs = keys.select(pl.col("__pos").alias("later"), pl.col("__pos").shift(1).alias("earlier"), dup.alias("d"))
    pairs = pairs.filter(pl.col("d"))
    if pairs.height == 0:
        return None
    first = pairs.sort("later").row(0, named=True)
    later, earlier = int(first["later"]), int(first["earlier"])
    rec = frame.row(later, named=True)
    row, other = _row_of(frame, later), _row_of(frame, earlier)
    return Violation(
        rule="duplicate-timestamp",
        position=later,
        row=row,
        column="ts",
        message=(
            f"asset {rec['asset']} has two bars at {fmt_ts(rec['ts'])}: rows {other} and {row}"
        ),
        fix=FIXES["duplicate-timestamp"],
        other_position=earlier,
        other_row=other,
    )


def find_violation(frame: pl.DataFrame) -> Violation | None:
    """The first violation by row order in a bar frame (BAR_COLUMNS [+ extras] [+ `__row`]),
    or None. One `select` of booleans in the common case where all rows are valid."""
    return inspect(frame)[0]


def inspect(frame: pl.DataFrame, *, one_asset: bool = False) -> tuple[Violation | None, bool]:
    """(first violation or None, whether rows are strictly increasing in (asset, ts)).

    One `select` of cheap triggers (a fused row check, null counts, order aggregates);
    the per-rule masks run only when a trigger fires. `one_asset` (every row has the same
    non-empty asset, as when the reader set it) skips the string comparisons.
    """
    o, h, lo, c, v = (pl.col(name) for name in _NUMERIC)
    nullable = ["ts", *_NUMERIC] if one_asset else ["asset", "ts", *_NUMERIC]
    rows_ok = (h >= o) & (h >= c) & (lo <= o) & (lo <= c) & (lo > 0) & (v >= 0) & (o + h + lo + c + v).is_finite()
    triggers = {
        "rows_ok": rows_ok.all(),
        "nulls": pl.sum_horizontal([pl.col(n).null_count() for n in nullable]),
        "empty_asset": pl.lit(False) if one_asset else (pl.col("asset").str.len_bytes() == 0).any(),
        **order_flags(one_asset=one_asset),
    }
    flags = frame.select(**triggers).row(0, named=True)
    found: list[Violation] = []
    if not flags["rows_ok"] or flags["nulls"] or flags["empty_asset"]:
        row_violation = _first_row_violation(frame)
        if row_violation is not None:
            found.append(row_violation)
    in_order, no_dups = _order(frame, flags, one_asset=one_asset)
    if not no_dups:
        head = frame if not found else frame.head(found[0].position)
        dup = _first_duplicate(head)
        if dup is not None:
            found.append(dup)
    if not found:
        return None, in_order
    return min(found, key=lambda x: x.position), in_order


def _first_row_violation(frame: pl.DataFrame) -> Violation | None:
    masks = _row_masks()
    flags = frame.select(*(mask.any().alias(f"{i}") for i, (_, _, mask) in enumerate(masks))).row(0)
    failing = [i for i, flag in enumerate(flags) if flag]
    if not failing:
        return None
    firsts = frame.select(*(masks[i][2].arg_true().first().alias(f"{i}") for i in failing)).row(0, named=True)
    # masks are in reporting order, so the first minimum position wins ties within a row
    i = min(failing, key=lambda k: (firsts[f"{k}"], k))
    rule, column, _ = masks[i]
    position = int(firsts[f"{i}"])
    rec = frame.row(position, named=True)
    return Violation(
        rule=rule,
        position=position,
        row=_row_of(frame, position),
        column=column,
        message=_row_message(rule, column, rec),
        fix=FIXES[rule],
    )


def check_bars(frame: pl.DataFrame, *, file: str) -> None:
    """Raise `InvalidInput` for the first violation (by row order) in `frame`, naming
    `file`, the row (`__row`), the column, the rule and the fix. Returns None if valid."""
    violation = find_violation(frame)
    if violation is not None:
        raise violation.error(file)
