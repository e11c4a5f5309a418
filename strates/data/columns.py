"""Which column is which: matching the headers people actually write to the bar schema.

Names are compared after lower-casing and removing everything but letters and digits
(`Open Time`, `open_time` and `OpenTime` are all `opentime`). Accepted names per field:

- ts: date, datetime, timestamp, time, ts, open_time, timestamp_utc, datetime_utc, date_utc; else an
  unnamed first column (pandas `to_csv` index: empty header, `Unnamed: 0`, `__index_level_0__`)
- open, high, low, close: open/o, high/h, low/l, close/c (also `open_price` ...)
- volume: volume, vol, v
- asset (optional): asset, symbol, ticker (first found, in this order)

One-letter names count only when at least three of o/h/l/c are present. A file where fewer
than three of the six required fields are recognisable is `unknown-columns`; otherwise a
missing one is `missing-column`.

Everything else is an extra column: kept (Float64, renamed snake_case) with `keep_extra` when
its values are numbers, otherwise dropped; every drop is said in the notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from strates.core.errors import InvalidInput

TS_NAMES = ("date", "datetime", "timestamp", "time", "ts", "opentime", "timestamputc", "datetimeutc", "dateutc")
INDEX_NAMES = ("", "unnamed0", "indexlevel0", "index")
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "open": ("open", "o", "openprice"),
    "high": ("high", "h", "highprice"),
    "low": ("low", "l", "lowprice"),
    "close": ("close", "c", "closeprice"),
    "volume": ("volume", "vol", "v"),
}
ASSET_NAMES = ("asset", "symbol", "ticker")


def normalize(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def snake(name: str) -> str:
    """`Adj Close` -> `adj_close`, `quoteVolume` -> `quote_volume`."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.strip())
    return re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()


@dataclass(frozen=True)
class ColumnPlan:
    """Source column names for each bar field. `fields` maps open/high/low/close/volume to
    a source name; `extras` are (source name, output name) pairs of numeric extras to keep."""

    ts: str
    fields: dict[str, str]
    asset: str | None
    extras: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]


def _expected() -> str:
    parts = [f"{k}: {'/'.join(v)}" for k, v in FIELD_NAMES.items()]
    return "timestamp: date/datetime/timestamp/time/ts/open_time; " + "; ".join(parts)


def _index_column(names: list[str], norm: dict[str, str]) -> str | None:
    """An unnamed index column: the first column with an empty or `Unnamed: 0` header
    (pandas `to_csv`), or `__index_level_0__` anywhere (pandas `to_parquet`)."""
    if names and norm[names[0]] in INDEX_NAMES:
        return names[0]
    return next((n for n in names if n == "__index_level_0__"), None)


def plan_columns(
    names: list[str],
    *,
    file: str,
    ts_column: str | None,
    keep_extra: bool,
    numeric: dict[str, bool],
    has_asset_option: bool,
) -> ColumnPlan:
    """Map source column `names` to bar fields. `numeric[name]` says whether a column's
    sampled values are numbers (for extras). Raises `unknown-columns` when too little is
    recognisable, `missing-column` when a required field is absent, `ambiguous-column`
    when two columns claim one field."""
    norm = {name: normalize(name) for name in names}
    found = ", ".join(f"'{n}'" for n in names)
    notes: list[str] = []

    # one-letter names (o,h,l,c,v) count only as a set: a lone 'c' column is not a close
    letters = sum(1 for n in names if norm[n] in ("o", "h", "l", "c"))
    short_ok = letters >= 3

    def claim(field: str, aliases: tuple[str, ...]) -> str | None:
        hits = [n for n in names if norm[n] in aliases and (short_ok or len(norm[n]) > 1)]
        if len(hits) > 1:
            raise InvalidInput(
                f"columns {', '.join(repr(h) for h in hits)} could all be the {field} column",
                rule="ambiguous-column",
                fix="rename or remove all but one of them"
                + (" or pick one with --ts-column" if field == "timestamp" else ""),
                file=file,
            )
        return hits[0] if hits else None

    if ts_column is not None:
        exact = [n for n in names if n == ts_column] or [n for n in names if norm[n] == normalize(ts_column)]
        if not exact:
            raise InvalidInput(
                f"--ts-column '{ts_column}' is not a column of this file; columns: {found}",
                rule="missing-column",
                fix="give one of the columns listed with --ts-column",
                file=file,
                column=ts_column,
            )
        ts = exact[0]
    else:
        ts = claim("timestamp", TS_NAMES)
        index_col = _index_column(names, norm)
        if ts is None and index_col is not None:
            ts = index_col
            notes.append("timestamps taken from the unnamed index column (as pandas writes it)")
        elif ts is not None and index_col is not None:
            notes.append(f"ignored the unnamed index column; timestamps from '{ts}'")
    fields = {f: claim(f, aliases) for f, aliases in FIELD_NAMES.items()}
    recognised = (ts is not None) + sum(1 for src in fields.values() if src)
    if recognised < 3 or not any(fields[f] for f in ("open", "high", "low", "close")):
        raise InvalidInput(
            f"cannot tell which columns hold the timestamp and prices; columns found: {found}",
            rule="unknown-columns",
            fix=f"name the columns as expected ({_expected()}), or give --ts-column",
            file=file,
        )
    missing = [f for f, src in fields.items() if src is None]
    if ts is None:
        missing.insert(0, "timestamp")
    if missing:
        what = missing[0]
        fix = (
            "add a timestamp column (date, datetime, timestamp, time, ts, open_time) or name it with --ts-column"
            if what == "timestamp"
            else f"add a '{what}' column (accepted names: {'/'.join(FIELD_NAMES[what])})"
        )
        if what == "volume":
            fix += "; volume is never invented"
        raise InvalidInput(
            f"no {' or '.join(missing)} column; columns found: {found}",
            rule="missing-column",
            fix=fix,
            file=file,
            column=what,
        )
    assert ts is not None
    asset = None
    for alias in ASSET_NAMES:
        hits = [n for n in names if norm[n] == alias and n != ts]
        if hits:
            asset = hits[0]
            break
    if asset and has_asset_option:
        notes.append(f"--asset ignored: the file names the asset in column '{asset}'")
    used = {ts, asset, *fields.values()}
    index_col = _index_column(names, norm)
    extras: list[tuple[str, str]] = []
    taken = {"asset", "ts", "open", "high", "low", "close", "volume"}
    for name in names:
        if name in used or name == index_col:
            continue
        if not keep_extra:
            notes.append(f"dropped extra column '{name}' (use --keep-extra to keep it)")
            continue
        if not numeric.get(name, False):
            notes.append(f"dropped extra column '{name}': its values are not numbers")
            continue
        out = snake(name) or f"extra_{len(extras) + 1}"
        while out in taken or out.startswith("__"):
            out = f"extra_{out.strip('_')}"
        taken.add(out)
        extras.append((name, out))
        notes.append(f"kept extra column '{name}' as '{out}'")
    return ColumnPlan(ts=ts, fields=fields, asset=asset, extras=tuple(extras), notes=tuple(notes))  # type: ignore[arg-type]
