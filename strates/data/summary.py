"""The dataset manifest's summary: what was ingested, its calendars, gaps, split and macro series.

Keys (besides `source`, `rows`, `n_assets`, `interval`, `interval_seconds`, `start`, `end`,
`columns`, `split`, `notes`):

- `kind` (str): `bars` (OHLCV) or `series` (generic channels, `strates.data.series`; each
  system is an asset)
- `channels` (list of str): a series dataset's channels, in order (the first plays the role of
  the price); empty for bars
- `periods_per_year` (float): bars a year of the equal-weight portfolio: the union of every asset's
  bar times, measured (`strates.data.calendars`) over the first fold's training period, so
  evaluation periods play no part
- `calendar` (str): the calendar of that union clock (`24/7`, `weekdays`,
  `weekdays 09:30-16:00 America/New_York`, ...)
- `clock` (dict): where the two above were measured: `start`, `end`, `bars`, `measured_on` (the
  whole data when the training period holds under a week of bars)
- `assets[a].periods_per_year` (float): the asset's bars a year, over all its bars
- `assets[a].calendar` (str): the asset's calendar
- `assets[a].gaps`, `.missing_bars` (int): missing stretches against that calendar, and their bars
- `assets[a].closures` (int): missing stretches a market closure explains (holidays, early closes):
  not gaps
- `gaps` (dict): `count`, `missing_bars`, `closures` over all assets
- `macro[s]` (dict): per series: `observations`, `first_observed`, `last_observed`,
  `lag_seconds_min/max` (first release after the observation date), `column`, `vintage` (bool),
  `revisions_may_leak` (bool), `lag` (how `available` was set), `note` (e.g. "revisions may leak
  ...")
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from strates.data.calendars import Clock, fmt_interval
from strates.data.config import Config


def dataset_summary(config: Config, bars: pl.DataFrame, macro_obs: pl.DataFrame | None, macro_info: dict,
                    interval: dt.timedelta, folds: list, notes: list[str], clocks: dict[str, Clock],
                    portfolio: tuple[Clock, dict], *, channels: tuple[str, ...] = (),
                    source: str | None = None) -> dict[str, Any]:
    """The summary of a dataset; `channels`: a series dataset's channels (empty for bars),
    `source`: where the data came from when not `embedded` or `files` (`frame`)."""
    per_asset = bars.group_by("asset").agg(
        pl.len().alias("rows"), pl.col("ts").min().alias("start"), pl.col("ts").max().alias("end")
    ).sort("asset")
    assets = {}
    for row in per_asset.iter_rows(named=True):
        clock = clocks[row["asset"]]
        assets[row["asset"]] = {
            "rows": row["rows"], "start": row["start"], "end": row["end"],
            "calendar": clock.calendar.name, "periods_per_year": round(float(clock.periods_per_year), 3),
            "gaps": clock.gaps.height, "missing_bars": int(clock.gaps["missing_bars"].sum() or 0),
            "closures": clock.closures,
        }
    clock, span = portfolio
    summary: dict[str, Any] = {
        "source": source or ("embedded" if config.embedded is not None else "files"),
        "kind": "series" if config.format == "series" else "bars",
        "channels": list(channels),
        "rows": bars.height,
        "n_assets": len(assets),
        "interval_seconds": int(interval.total_seconds()),
        "interval": fmt_interval(int(interval / dt.timedelta(microseconds=1))),
        "periods_per_year": round(float(clock.periods_per_year), 3),
        "calendar": clock.calendar.name,
        "clock": span,
        "start": bars["ts"].min(),
        "end": bars["ts"].max(),
        "columns": bars.columns,
        "assets": assets,
        "gaps": {
            "count": sum(a["gaps"] for a in assets.values()),
            "missing_bars": sum(a["missing_bars"] for a in assets.values()),
            "closures": sum(a["closures"] for a in assets.values()),
        },
        "split": {"spec": config.split, "folds": [f.to_dict() for f in folds]},
        "notes": notes,
    }
    if macro_obs is not None and macro_obs.height:
        summary["macro"] = _macro(macro_obs, macro_info)
    return summary


def _macro(macro_obs: pl.DataFrame, info: dict) -> dict[str, dict[str, Any]]:
    first = macro_obs.group_by("series", "observed").agg(pl.col("available").min(), pl.len().alias("rows"))
    stats = first.group_by("series").agg(
        pl.len().alias("observations"),
        pl.col("rows").sum().alias("rows"),
        pl.col("observed").min().alias("first_observed"),
        pl.col("observed").max().alias("last_observed"),
        (pl.col("available") - pl.col("observed")).min().alias("lag_min"),
        (pl.col("available") - pl.col("observed")).max().alias("lag_max"),
    ).sort("series")
    out = {}
    for row in stats.iter_rows(named=True):
        entry: dict[str, Any] = {
            "observations": row["observations"],
            "first_observed": row["first_observed"],
            "last_observed": row["last_observed"],
            "lag_seconds_min": row["lag_min"].total_seconds(),
            "lag_seconds_max": row["lag_max"].total_seconds(),
            "column": f"macro_{row['series']}",
        }
        known = info.get(row["series"])
        if known is not None:
            entry["vintage"] = known.vintage
            entry["revisions_may_leak"] = known.revisions_may_leak
            entry["lag"] = known.lag
            if known.vintage:
                entry["vintage_rows"] = row["rows"]
            if known.note:
                entry["note"] = known.note
        out[row["series"]] = entry
    return out


def calendar_notes(clocks: dict[str, Clock]) -> list[str]:
    """One note per calendar: its assets, bars a year, and the closures not counted as gaps."""
    groups: dict[str, list[str]] = {}
    for asset, clock in clocks.items():
        groups.setdefault(clock.calendar.name, []).append(asset)
    notes = []
    for name, assets in groups.items():
        shown = ", ".join(assets[:5]) + (f" and {len(assets) - 5} more" if len(assets) > 5 else "")
        ppy = [clocks[a].periods_per_year for a in assets]
        rate = f"{min(ppy):,.1f}" if max(ppy) - min(ppy) < 0.05 else f"{min(ppy):,.1f}-{max(ppy):,.1f}"
        closures = sum(clocks[a].closures for a in assets)
        text = f"calendar {name}: {shown}; {rate} bars a year"
        if closures:
            text += f"; {closures} closures (holidays, early closes) not counted as gaps"
        notes.append(text)
    return notes
