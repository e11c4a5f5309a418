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
- `signal` (dict, embedded datasets only): the planted edge (`strates.data.embedded`, "Planted
  edge"): `kappa`, `policy` (the oracle's rule, in words), `oracle` (list, one row per period of
  the first fold and cost level in `ORACLE_COSTS_BPS`: `period`, `cost_bps`, `sharpe`, `bars`).
  The oracle's Sharpe is annualised with `periods_per_year`, after costs, from the bars with
  `strates.core.accounting`; positions chosen at bar t (ts in the period) are held over bar t+1
  (also in the period); the book starts flat in each period.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from strates.data.calendars import Clock, fmt_interval
from strates.data.config import Config
from strates.data.split import PERIODS, Fold

ORACLE_COSTS_BPS = (0.0, 5.0, 10.0, 20.0)
ORACLE_POLICY = ("position g(s_t) / SIGNAL_SCALE in [-1, 1] (the true expected planted return in units of its "
                 "largest value), held over bar t+1; flat when kappa = 0")


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


def signal_summary(bars: pl.DataFrame, g: pl.DataFrame, *, kappa: float, fold: Fold, periods_per_year: float
                   ) -> dict[str, Any]:
    """The planted edge's summary: `kappa` and the oracle's Sharpe after each cost of
    `ORACLE_COSTS_BPS` on each period of `fold`. `bars` (`asset, ts, close, ...`) and `g`
    (`asset, ts, g`: g(s_t) per bar) share one clock (the embedded dataset's)."""
    from strates.core import accounting
    from strates.data.embedded import oracle_positions

    frame = bars.select("asset", "ts", "close").join(g.select("asset", "ts", "g"), on=["asset", "ts"], how="left")
    wide = frame.sort("asset", "ts").partition_by("asset", maintain_order=True)
    ts = wide[0]["ts"].to_numpy()  # [n]
    close = np.stack([w["close"].to_numpy() for w in wide], 1)  # [n, A]
    pos = oracle_positions(np.stack([w["g"].fill_null(0.0).to_numpy() for w in wide], 1), kappa)  # [n, A]
    r_next = np.diff(np.log(close), axis=0)  # [n-1, A]: bar t+1's log return
    rows = []
    for name in PERIODS:
        a, b = fold.period(name).bounds64()
        keep = (ts[:-1] >= a) & (ts[1:] < b)  # bar t and bar t+1 inside the period
        for cost in ORACLE_COSTS_BPS:
            simple = np.asarray(accounting.simple(r_next[keep]))
            pnl, _ = accounting.rollout(pos[:-1][keep], simple, cost=accounting.bps(cost))
            returns = accounting.portfolio_returns(pnl, np.ones(pnl.shape, bool))
            ratio = accounting.sharpe(returns, periods_per_year=periods_per_year)
            rows.append({"period": name, "cost_bps": cost, "sharpe": round(ratio, 4), "bars": int(keep.sum())})
    return {"kappa": float(kappa), "policy": ORACLE_POLICY, "oracle": rows}


