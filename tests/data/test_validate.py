"""The bar rules: the malformed corpus (one file per rule, named after it) and the
row-level checks on frames (first violation by row order, duplicates in any order)."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from strates.core.errors import InvalidInput
from strates.data import validate
from strates.data.schema import BAR_SCHEMA
from strates.data.sources import SourceOptions, read_all

CORPUS = pathlib.Path(__file__).parent / "malformed"

# file name -> (rule, row, column); the rule is also the file name up to the first dot
EXPECTED: dict[str, tuple[str, int | None, str | None]] = {
    "ambiguous-column.csv": ("ambiguous-column", None, None),
    "bad-json.json": ("bad-json", 4, None),
    "bybit-error.json": ("bybit-error", None, None),
    "duplicate-timestamp.csv": ("duplicate-timestamp", 5, "timestamp"),
    "empty-asset.csv": ("empty-asset", 3, "symbol"),
    "empty-file.csv": ("empty-file", None, None),
    "empty-file.header-only.csv": ("empty-file", None, None),
    "high-below-low.csv": ("high-below-low", 3, "high"),
    "high-below-open-close.csv": ("high-below-open-close", 3, "high"),
    "low-above-open-close.csv": ("low-above-open-close", 5, "low"),
    "malformed-csv.csv": ("malformed-csv", 3, None),
    "missing-column.csv": ("missing-column", None, "volume"),
    "mixed-timezone.csv": ("mixed-timezone", 4, "timestamp"),
    "negative-volume.csv": ("negative-volume", 3, "volume"),
    "non-finite.csv": ("non-finite", 4, "close"),
    "non-positive-price.csv": ("non-positive-price", 4, "open"),
    "unknown-columns.csv": ("unknown-columns", None, None),
    "unparseable-number.csv": ("unparseable-number", 3, "high"),
    "unparseable-timestamp.csv": ("unparseable-timestamp", 4, "timestamp"),
}
FILES = sorted(p.name for p in CORPUS.iterdir() if p.is_file())


def test_every_corpus_file_has_an_expectation():
    assert FILES == sorted(EXPECTED)


@pytest.mark.parametrize("name", FILES)
def test_corpus_file_rejected_with_its_rule(name):
    rule, row, column = EXPECTED[name]
    assert name.split(".")[0] == rule
    path = str(CORPUS / name)
    with pytest.raises(InvalidInput) as info:
        read_all([path], SourceOptions())
    err = info.value
    assert (err.rule, err.row, err.column) == (rule, row, column), str(err)
    assert err.file == path and name in str(err)
    assert "fix:" in str(err) and err.fix
    assert f"[{rule}]" in str(err)
    assert rule in validate.ALL_RULES


def test_corpus_messages_show_the_offending_value():
    messages = {}
    names = ("unparseable-number.csv", "unparseable-timestamp.csv", "mixed-timezone.csv", "duplicate-timestamp.csv")
    for name in names:
        with pytest.raises(InvalidInput) as info:
            read_all([str(CORPUS / name)], SourceOptions())
        messages[name] = str(info.value)
    assert "'12,5'" in messages["unparseable-number.csv"]
    assert "'2024-13-45 00:02:00'" in messages["unparseable-timestamp.csv"]
    assert "'2024-01-01T00:02:00Z'" in messages["mixed-timezone.csv"]
    assert "rows 3 and 5" in messages["duplicate-timestamp.csv"]


# ----------------------------------------------------------------------------- frames

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def bars(rows: list[tuple], *, row_offset: int = 2) -> pl.DataFrame:
    """rows of (asset, minute, open, high, low, close, volume)."""
    frame = pl.DataFrame(
        [(a, T0 + timedelta(minutes=m), o, h, lo, c, v) for a, m, o, h, lo, c, v in rows],
        schema=BAR_SCHEMA,
        orient="row",
    )
    return frame.with_row_index("__row", offset=row_offset)


GOOD = ("A", 0, 10.0, 11.0, 9.0, 10.5, 100.0)


def row(minute: int, **change) -> tuple:
    base: dict[str, object] = dict(zip(("asset", "m", "o", "h", "lo", "c", "v"), GOOD, strict=True))
    base["m"] = minute
    base.update(change)
    return tuple(base.values())


def rule_of(frame: pl.DataFrame) -> tuple[str, int | None, str | None] | None:
    try:
        validate.check_bars(frame, file="f.csv")
    except InvalidInput as e:
        err = e
    else:
        return None
    assert err.file == "f.csv" and err.fix
    return err.rule, err.row, err.column


def test_valid_frame_passes():
    assert rule_of(bars([row(0), row(1), row(2, asset="B"), row(1, asset="B")])) is None
    assert rule_of(bars([row(0, v=0.0)])) is None  # zero volume is allowed


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"o": 0.0}, ("non-positive-price", "open")),
        ({"lo": -1.0}, ("non-positive-price", "low")),
        ({"h": 9.5}, ("high-below-open-close", "high")),
        ({"lo": 10.2}, ("low-above-open-close", "low")),
        ({"h": 8.0}, ("high-below-low", "high")),
        ({"c": float("nan")}, ("non-finite", "close")),
        ({"h": float("inf")}, ("non-finite", "high")),
        ({"v": None}, ("non-finite", "volume")),
        ({"o": None}, ("non-finite", "open")),
        ({"v": -1.0}, ("negative-volume", "volume")),
        ({"asset": ""}, ("empty-asset", "asset")),
        ({"asset": None}, ("empty-asset", "asset")),
    ],
)
def test_each_rule(change, expected):
    frame = bars([row(0), row(1), row(2, **change), row(3)])
    assert rule_of(frame) == (expected[0], 4, expected[1])


def test_null_timestamp():
    null_at_row_3 = pl.when(pl.col("__row") == 3).then(None).otherwise(pl.col("ts"))
    frame = bars([row(0), row(1)]).with_columns(null_at_row_3.alias("ts"))
    assert rule_of(frame) == ("unparseable-timestamp", 3, "ts")


def test_first_violation_by_row_order_wins():
    frame = bars([row(0), row(1, v=-1.0), row(2, o=0.0), row(1)])
    assert rule_of(frame) == ("negative-volume", 3, "volume")
    # a duplicate (row 4 repeats row 2) before a price error in row 5
    frame = bars([row(0), row(1), row(0), row(3, o=-1.0)])
    assert rule_of(frame) == ("duplicate-timestamp", 4, "ts")


def test_nan_is_reported_as_non_finite_not_as_a_relation():
    # NaN compares false in every relation; the row must say non-finite
    assert rule_of(bars([row(0, o=float("nan"))])) == ("non-finite", 2, "open")


@pytest.mark.parametrize("layout", ["asset-ts", "ts-asset", "shuffled"])
def test_duplicates_found_in_any_order(layout):
    rows = [row(m, asset=a) for a in "ABC" for m in range(5)]
    if layout == "ts-asset":
        rows.sort(key=lambda r: (r[1], r[0]))
    elif layout == "shuffled":
        rows = rows[7:] + rows[:7]
    assert rule_of(bars(rows)) is None
    dup_rows = [*rows[:9], row(3, asset="B"), *rows[9:]]
    with pytest.raises(InvalidInput) as info:
        validate.check_bars(bars(dup_rows), file="f.csv")
    err = info.value
    first, second = (i + 2 for i, r in enumerate(dup_rows) if r[0] == "B" and r[1] == 3)
    assert err.rule == "duplicate-timestamp" and err.row == second
    assert f"rows {first} and {second}" in str(err)


def test_inspect_reports_order():
    ordered = bars([row(0), row(1), row(0, asset="B")])
    assert validate.inspect(ordered) == (None, True)
    assert validate.inspect(bars([row(1), row(0)])) == (None, False)
    assert validate.inspect(bars([row(0, asset="B"), row(0)])) == (None, False)
    # equal timestamps in one asset are a duplicate, never "in order"
    violation, in_order = validate.inspect(bars([row(0), row(0)]))
    assert violation is not None and violation.rule == "duplicate-timestamp" and not in_order


def test_rules_and_fixes_cover_each_other():
    assert set(validate.RULES) == set(validate.FIXES)
