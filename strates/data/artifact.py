"""The `dataset` artifact, typed: what `chaos ingest` records (`strates.data.summary` writes
it) and every later stage reads: folds, periods per year, calendars, assets, macro series.

`load(ws, ref)` is how a downstream stage reads a dataset; `read(manifest)` types one it
already holds. `tables(dataset)` are the tables the CLI and the report both show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum

from strates.core.errors import ConfigError
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.data.split import PERIODS, Fold, Period

KIND = "dataset"


class DatasetKind(enum.StrEnum):
    """What a dataset holds: OHLCV `bars` of assets, or the numeric channels of systems
    (`series`, `strates.data.series`: each system is an asset downstream; no OHLC, so the
    stages that trade bars refuse it)."""

    BARS = "bars"
    SERIES = "series"


@dataclasses.dataclass(frozen=True)
class AssetInfo:
    """One asset: its rows and time range, its measured calendar and bars a year, and the
    missing stretches against that calendar (`gaps`, `missing_bars`) beside the closures
    the calendar explains."""

    rows: int
    start: dt.datetime
    end: dt.datetime
    calendar: str
    periods_per_year: float
    gaps: int
    missing_bars: int
    closures: int


@dataclasses.dataclass(frozen=True)
class MacroInfo:
    """One macro series: observations, their dates, the release lag (first release after
    the observation date, seconds), and how the release time was set (`lag`, `vintage`)."""

    observations: int
    first_observed: dt.datetime
    last_observed: dt.datetime
    lag_seconds_min: float
    lag_seconds_max: float
    column: str
    vintage: bool | None = None
    revisions_may_leak: bool | None = None
    lag: str | None = None
    vintage_rows: int | None = None
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class Gaps:
    count: int
    missing_bars: int
    closures: int


@dataclasses.dataclass(frozen=True)
class ClockSpan:
    """Where the portfolio clock (periods per year, calendar) was measured."""

    start: dt.datetime
    end: dt.datetime
    bars: int
    measured_on: str


@dataclasses.dataclass(frozen=True)
class Split:
    spec: str
    folds: tuple[Fold, ...]


@dataclasses.dataclass(frozen=True)
class OracleRow:
    """The oracle of the planted edge on one period of the first fold at one cost level:
    its annualised Sharpe after costs and the bars it held positions over."""

    period: str
    cost_bps: float
    sharpe: float
    bars: int


@dataclasses.dataclass(frozen=True)
class Signal:
    """The embedded dataset's planted edge (`strates.data.embedded`, "Planted edge"): its
    strength `kappa`, the oracle's `policy` in words, and its Sharpe per period and cost."""

    kappa: float
    policy: str
    oracle: tuple[OracleRow, ...]

    def oracle_sharpe(self, period: str = "test", cost_bps: float = 5.0) -> float:
        """The oracle's Sharpe on `period` after `cost_bps`; a ConfigError lists what was measured."""
        for row in self.oracle:
            if row.period == period and row.cost_bps == float(cost_bps):
                return row.sharpe
        measured = sorted({(r.period, r.cost_bps) for r in self.oracle})
        raise ConfigError(f"the oracle was not measured on {period} at {cost_bps:g} bps",
                          fix=f"choose one of: {', '.join(f'{p} at {c:g} bps' for p, c in measured)}",
                          field="cost_bps")


@dataclasses.dataclass(frozen=True)
class Summary:
    """The dataset manifest's summary (see `strates.data.summary` for every key)."""

    source: str
    rows: int
    n_assets: int
    interval_seconds: int
    interval: str
    periods_per_year: float
    calendar: str
    clock: ClockSpan
    start: dt.datetime
    end: dt.datetime
    columns: tuple[str, ...]
    assets: dict[str, AssetInfo]
    gaps: Gaps
    split: Split
    notes: tuple[str, ...] = ()
    macro: dict[str, MacroInfo] = dataclasses.field(default_factory=dict)
    kind: DatasetKind = DatasetKind.BARS
    channels: tuple[str, ...] = ()  # a series dataset's channels, in order; the first plays the role of the price
    signal: Signal | None = None  # the planted edge and its oracle (embedded datasets)


@dataclasses.dataclass(frozen=True)
class Metrics:
    rows: int
    assets: int
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Dataset(Typed[dict, Summary, Metrics]):
    """A dataset artifact: its `manifest`, the resolved ingest `config` (sources and their
    hashes, as recorded), typed `summary` and `metrics`."""

    KIND = KIND
    COMMAND = "ingest"

    @property
    def is_series(self) -> bool:
        return self.summary.kind == DatasetKind.SERIES

    def require_bars(self, command: str) -> None:
        """Refuse a series dataset in a stage that needs OHLCV bars (InvalidInput, exit 2)."""
        if self.is_series:
            from strates.core.errors import InvalidInput

            raise InvalidInput(
                f"chaos {command} needs OHLCV bars, and dataset {self.id} is a series dataset (channels "
                f"{', '.join(self.summary.channels)}): a series has no prices to hold positions in, so no returns "
                "to account, no trading costs and no backtest",
                rule="series-dataset",
                fix="stop at chaos train-cfm (and chaos multiverse without an agent) for series; for trading, "
                    "ingest OHLCV bars (chaos ingest without --format series)",
            )

    @property
    def interval(self) -> dt.timedelta:
        return dt.timedelta(seconds=self.summary.interval_seconds)

    @property
    def folds(self) -> tuple[Fold, ...]:
        return self.summary.split.folds

    def fold(self, name: str | None = None) -> Fold:
        """The fold called `name` (the first when None); a clear error lists the others."""
        if name is None:
            return self.folds[0]
        for fold in self.folds:
            if fold.name == name:
                return fold
        raise ConfigError(f"dataset {self.id} has no fold {name!r}",
                          fix=f"choose one of: {', '.join(f.name for f in self.folds)}", field="fold")


read = Dataset.read
load = Dataset.load


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def split_table(ds: Dataset) -> Table:
    """Each fold's train / validation / test periods, and about how many bars of the
    portfolio clock each holds (its length times the measured bars a year)."""
    year = dt.timedelta(days=365.25)
    rows = []
    for fold in ds.folds:
        for name in PERIODS:
            p: Period = fold.period(name)
            bars = (p.end - p.start) / year * ds.summary.periods_per_year
            rows.append((fold.name, name, _when(p.start), _when(p.end), f"{bars:,.0f}"))
    return table(("fold", "period", "start", "end (excl.)", "≈ bars"), rows, left=4,
                 title=f"split {ds.summary.split.spec}",
                 caption=f"Boundaries are half-open [start, end) on the dataset's bar grid (UTC); ≈ bars: the "
                         f"period's length times the {ds.summary.periods_per_year:,.1f} bars a year of the "
                         f"portfolio clock ({ds.summary.calendar}).")


def assets_table(ds: Dataset) -> Table:
    """Per asset (per system for a series dataset): bars, first and last bar, calendar,
    bars a year, gaps and closures."""
    if ds.is_series:
        return _systems_table(ds)
    rows = [(name, f"{a.rows:,}", _when(a.start), _when(a.end), a.calendar, f"{a.periods_per_year:,.1f}",
             f"{a.gaps:,}", f"{a.missing_bars:,}", f"{a.closures:,}") for name, a in sorted(ds.summary.assets.items())]
    return table(("asset", "bars", "first", "last", "calendar", "bars/year", "gaps", "missing bars", "closures"),
                 rows, left=5, title=f"dataset {ds.id}: {ds.summary.n_assets} assets, {ds.summary.rows:,} bars every "
                       f"{ds.summary.interval}, {ds.summary.periods_per_year:,.1f} bars a year ({ds.summary.calendar})")


def _systems_table(ds: Dataset) -> Table:
    s = ds.summary
    rows = [(name, f"{a.rows:,}", _when(a.start), _when(a.end), a.calendar, f"{a.periods_per_year:,.1f}",
             f"{a.gaps:,}", f"{a.missing_bars:,}") for name, a in sorted(s.assets.items())]
    return table(("system", "rows", "first", "last", "calendar", "rows/year", "gaps", "missing rows"), rows, left=5,
                 title=f"series dataset {ds.id}: {s.n_assets} systems x {len(s.channels)} channels "
                       f"({', '.join(s.channels)}), {s.rows:,} rows every {s.interval}",
                 caption=f"The first channel, '{s.channels[0] if s.channels else '-'}', plays the role of the price: "
                         "its increments are the returns the futures forecast.")


def macro_table(ds: Dataset) -> Table | None:
    """Per macro series: observations, their dates, the release lag and how it was set (None
    when the dataset has no macro series)."""
    if not ds.summary.macro:
        return None

    def lag(m: MacroInfo) -> str:
        lo, hi = m.lag_seconds_min / 86400, m.lag_seconds_max / 86400
        return f"{lo:.1f} d" if hi - lo < 0.05 else f"{lo:.1f}-{hi:.1f} d"

    rows = [(name, "vintages" if m.vintage else (m.lag or "-"), "yes" if m.revisions_may_leak else "no",
             f"{m.observations:,}", m.first_observed.strftime("%Y-%m-%d"), m.last_observed.strftime("%Y-%m-%d"), lag(m))
            for name, m in sorted(ds.summary.macro.items())]
    return table(("series", "release time set by", "revisions may leak", "observations", "first observed",
                  "last observed", "release lag"), rows, left=3, wrap=1,
                 title="macro series, joined at their release time",
                 caption="Release lag: first release after the observation date. A series whose revisions may leak "
                         "holds latest-vintage values; pass ALFRED vintage files for real-time values.")


def signal_table(ds: Dataset) -> Table | None:
    """The planted edge's oracle: one row per period of the first fold, its Sharpe after each
    cost level (None without a planted edge: files, or kappa = 0)."""
    sig = ds.summary.signal
    if sig is None or sig.kappa == 0:
        return None
    costs = sorted({r.cost_bps for r in sig.oracle})
    periods = [p for p in PERIODS if any(r.period == p for r in sig.oracle)]
    bars = {r.period: r.bars for r in sig.oracle}
    rows = [(p, f"{bars[p]:,}", *(f"{sig.oracle_sharpe(p, c):+.2f}" for c in costs)) for p in periods]
    return table(("period", "bars", *(f"Sharpe @ {c:g} bps" for c in costs)), rows, left=1,
                 title=f"planted edge kappa = {sig.kappa:g}: the oracle that knows g",
                 caption=f"Oracle: {sig.policy}. Sharpe of the equal-weight portfolio after costs, annualised with "
                         f"{ds.summary.periods_per_year:,.1f} bars a year (first fold).")


def tables(ds: Dataset) -> list[Table]:
    macro, signal = macro_table(ds), signal_table(ds)
    return [assets_table(ds), *([macro] if macro else []), split_table(ds), *([signal] if signal else [])]
