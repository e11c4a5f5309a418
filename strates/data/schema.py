"""The fixed schemas that every reader produces and every later stage reads.

Bars (one row per asset and bar, `ts` is the bar's open time in UTC):

| column | dtype | rule |
| ------ | ----- | ---- |
| asset  | String | non-empty |
| ts     | Datetime(us, UTC) | unique per asset |
| open, high, low, close | Float64 | finite, > 0, low <= min(open, close), high >= max(open, close) |
| volume | Float64 | finite, >= 0 |

Macro observations (one row per series and observation, long format):

| column | dtype | meaning |
| ------ | ----- | ------- |
| series | String | the series name, e.g. `DGS10` or `cot_13874A_net_noncommercial` |
| observed | Datetime(us, UTC) | the date the value refers to (FRED's observation_date, COT's "as of" date) |
| available | Datetime(us, UTC) | when it became public: observed + publication lag (vintage: vintage date + 1 day) |
| value | Float64 | the value |

A vintage file gives an observation one row per vintage (its first release and each
revision). A bar at `ts` may only see macro values with `available <= ts`: the latest
observation date released by then, with its newest value known by then
(`strates.data.macro.asof_join`). In the dataset each series becomes a column
`macro_<series>` on the bars.
"""

from __future__ import annotations

import polars as pl

TS_DTYPE = pl.Datetime("us", "UTC")

BAR_SCHEMA = pl.Schema({
    "asset": pl.String(),
    "ts": TS_DTYPE,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
})
BAR_COLUMNS: tuple[str, ...] = tuple(BAR_SCHEMA)
PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")

MACRO_SCHEMA = pl.Schema({
    "series": pl.String(),
    "observed": TS_DTYPE,
    "available": TS_DTYPE,
    "value": pl.Float64(),
})
MACRO_PREFIX = "macro_"
