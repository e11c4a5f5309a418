"""A yfinance-style daily index panel with a volatility regime shift, for tests and benchmarks.

`write_daily_panel(folder)` writes one CSV per index (`Date,Open,High,Low,Close,Adj Close,Volume`,
ISO dates, as `yfinance.download(...).to_csv()` writes them) on business days. The bars are
the embedded market's (`strates.data.embedded`: chaotic drivers, regimes, Student-t shocks,
jumps) at hourly resolution, resampled to days (24 bars: first open, highest high, lowest
low, last close, summed volume) and relabelled onto business days. From `shift` on, every
log price move of a day relative to the previous close (open, high, low and close alike) is
multiplied by `factor`: with the default 0.35 the later years are about three times calmer
than the training years, the situation where a model that learned the training period's
scale carries it into calmer years.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np


def business_days(start: dt.date, n: int) -> list[dt.date]:
    """The first `n` weekdays from `start` on."""
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def write_daily_panel(folder: Path, *, assets: int = 3, days: int = 3000, start: dt.date = dt.date(2008, 1, 2),
                      shift: dt.date = dt.date(2016, 1, 4), factor: float = 0.35, seed: int = 7) -> list[Path]:
    """Write the panel (see the module docstring) into `folder`; returns the CSV paths."""
    import polars as pl

    from strates.data.embedded import EmbeddedSpec, generate

    bars, _ = generate(EmbeddedSpec(seed=seed, assets=assets, bars=24 * days, history_days=0, base_vol=0.0025))
    dates = business_days(start, days)
    k = np.where(np.array(dates) >= shift, factor, 1.0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for (asset,), part in sorted(bars.group_by("asset"), key=lambda kv: kv[0][0]):
        day = part.sort("ts").with_row_index("i").with_columns((pl.col("i") // 24).alias("day"))
        d = day.group_by("day", maintain_order=True).agg(
            pl.col("open").first(), pl.col("high").max(), pl.col("low").min(), pl.col("close").last(),
            pl.col("volume").sum())
        o, h, lo, c = (d[name].to_numpy() for name in ("open", "high", "low", "close"))
        prev = np.concatenate([[o[0]], c[:-1]])
        moves = [k * np.log(x / prev) for x in (o, h, lo, c)]  # log moves from the previous close, scaled
        close = o[0] * np.exp(np.cumsum(moves[3]))
        base = np.concatenate([[o[0]], close[:-1]])  # each day's previous close
        o2, h2, l2 = (base * np.exp(m) for m in moves[:3])
        path = folder / f"{asset.replace('-', '')}.csv"
        lines = ["Date,Open,High,Low,Close,Adj Close,Volume"]
        lines += [f"{t:%Y-%m-%d},{a:.4f},{b:.4f},{e:.4f},{f:.4f},{f:.4f},{int(v)}"
                  for t, a, b, e, f, v in zip(dates, o2, h2, l2, close, d["volume"].to_numpy(), strict=True)]
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths
