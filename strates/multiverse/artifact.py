"""The `multiverse` artifact, typed: what `chaos multiverse` records and the report reads.

`read(manifest)` types a manifest already held; `load(ws, ref)` resolves and types one.
`tables(multiverse)` are the tables the CLI and the report both show: the distribution of
the per-decision metrics, the decisions against the noise floor, the comparison of the
deterministic, filtered and consensus-sized policies (the agent's backtest table,
`strates.agent.artifact.performance_table`) and the verdicts.

The futures alone (`chaos multiverse --futures-only` or `--cfm`; no agent, no decisions)
make an artifact of their own kind, `multiverse-futures` (`FuturesOnly`: `read_futures`,
`load_futures`, `futures_tables`): λ per bar and per unit time, sensitivity and modes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from strates.agent.artifact import BACKTEST_NOTE, Performance, Trials, find, performance_table, span_text
from strates.agent.bootstrap import Difference
from strates.agent.config import PlannerKind
from strates.cfm.config import Method
from strates.core import artifacts
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.data.split import Period
from strates.multiverse.config import Config

KIND = "multiverse"
COMMAND = "multiverse"
FUTURES_KIND = "multiverse-futures"  # the futures alone: no agent, no decisions
READINGS = ("lyapunov_per_bar", "sensitivity", "modes")  # what the futures alone measure, per asset and time
METRICS = ("consensus", "bifurcation", *READINGS)  # per decision
POLICIES = ("deterministic", "filtered", "sized")
GATED = ("filtered", "sized")  # the policies judged against the deterministic one
STATS = ("mean", "std", "min", "p05", "p25", "p50", "p75", "p95", "max")
DEFINITIONS = "DESIGN.md, Canonical definitions; strates/multiverse/crossing.py"


@dataclasses.dataclass(frozen=True)
class Distribution:
    """A per-decision metric over every asset and decision time: mean, std, min, the 5th,
    25th, 50th, 75th and 95th percentiles, max."""

    mean: float
    std: float
    min: float
    p05: float
    p25: float
    p50: float
    p75: float
    p95: float
    max: float

    @classmethod
    def of(cls, values) -> Distribution:
        """Of `values [K]` (K >= 1)."""
        import numpy as np

        p05, p25, p50, p75, p95 = map(float, np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95]))
        return cls(mean=float(values.mean()), std=float(values.std()), min=float(values.min()), p05=p05, p25=p25,
                   p50=p50, p75=p75, p95=p95, max=float(values.max()))

    def stat(self, name: str) -> float:
        """One of `STATS`."""
        return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class Distributions:
    """The distribution of each per-decision metric of `crossing` (`METRICS`)."""

    consensus: Distribution
    bifurcation: Distribution
    lyapunov_per_bar: Distribution
    sensitivity: Distribution
    modes: Distribution

    def items(self) -> tuple[tuple[str, Distribution], ...]:
        return tuple((name, getattr(self, name)) for name in METRICS)


@dataclasses.dataclass(frozen=True)
class Crossed:
    """The period crossed (the agent's backtest period `name`), its span and its bars."""

    name: str
    span: Period
    bars: int


@dataclasses.dataclass(frozen=True)
class DecisionTimes:
    """`count` decision times of the period's `of_bars` bars (`every` bar, or evenly spaced
    over the whole period), from `first` to `last`."""

    count: int
    of_bars: int
    every: bool
    first: dt.datetime
    last: dt.datetime


@dataclasses.dataclass(frozen=True)
class NoiseFloor:
    """The decision noise floor: the flip rate of `copies` re-seeded copies of universe 0
    (σ = 0), the mean bifurcation index, and how far it is above the floor."""

    copies: int
    flip_rate: float
    bifurcation: float
    above_floor: float


@dataclasses.dataclass(frozen=True)
class Replay:
    """How exactly universe 0 is the agent's walk: the largest |difference| from the
    agent's positions file (None when the file lacks the period), and, at the decision
    times, from universe 0 recomputed in the batch with the same random streams."""

    universe0_batch_max_abs_diff: float
    max_abs_diff_backtest: float | None = None


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A gated `policy` against the deterministic one at `cost_bps`: the paired stationary
    block bootstrap of the per-bar return difference (`strates.agent.bootstrap.Difference`:
    the annualised Sharpe and mean-return differences with their `level` intervals, the
    mean block length, the replicates); `shown` when the Sharpe interval excludes 0."""

    policy: str
    cost_bps: float
    difference: Difference

    @property
    def shown(self) -> bool:
        return self.difference.shown


@dataclasses.dataclass(frozen=True)
class Metrics:
    """M `universes` (+ the unperturbed one) at angle `sigma`, N `futures` each over
    `horizon` steps, the contested `threshold`; the period and its decision times; the
    decisions (asset x decision time) and how many were contested (and which assets at the
    last decision time); the futures' readings, means over every decision
    (`lyapunov_per_bar`; `lyapunov_per_time`, the same per second of the bar interval
    `interval_seconds`; `sensitivity`; `modes`) and `lyapunov_floor`, what a flow that
    ignores its condition would read; the metrics' distributions, the noise floor, the
    replay check; the policies' backtest rows (`comparison`) and the verdicts per cost level."""

    universes: int
    sigma: float
    futures: int
    horizon: int
    threshold: float
    period: Crossed
    decision_times: DecisionTimes
    decisions: int
    contested: int
    contested_share: float
    interval_seconds: float
    lyapunov_per_bar: float
    lyapunov_per_time: float
    lyapunov_floor: float
    sensitivity: float
    modes: float
    distribution: Distributions
    noise_floor: NoiseFloor
    replay: Replay
    comparison: tuple[Performance, ...]
    verdict: tuple[Verdict, ...]
    contested_assets_last: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Summary:
    """The agent crossed, its planner, the flat band, the measured periods per year, the
    trials the DSR counts, the assets with no bar in the period, where the definitions are."""

    agent: str
    planner: PlannerKind
    band: float
    periods_per_year: float
    n_trials: int
    trials: Trials
    absent: tuple[str, ...] = ()
    definitions: str = DEFINITIONS


@dataclasses.dataclass(frozen=True)
class Multiverse(Typed[Config, Summary, Metrics]):
    """A multiverse artifact: its `manifest`, resolved `config`, typed `summary` and `metrics`."""

    KIND = KIND
    COMMAND = COMMAND

    def row(self, policy: str, cost_bps: float) -> Performance:
        return find(self.metrics.comparison, policy, cost_bps)

    def verdict(self, policy: str, cost_bps: float) -> Verdict:
        for v in self.metrics.verdict:
            if v.policy == policy and v.cost_bps == float(cost_bps):
                return v
        raise KeyError(f"{self.ref} has no verdict for {policy} at {cost_bps:g} bps")


read = Multiverse.read
load = Multiverse.load
_typed = Multiverse.of


# -- the futures alone ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FuturesDistributions:
    """The distribution of each reading (`READINGS`) over every asset and decision time."""

    lyapunov_per_bar: Distribution
    sensitivity: Distribution
    modes: Distribution

    def items(self) -> tuple[tuple[str, Distribution], ...]:
        return tuple((name, getattr(self, name)) for name in READINGS)


@dataclasses.dataclass(frozen=True)
class AssetReadings:
    """One asset's (or system's) readings: its `bars` in the period (with a full scale
    window behind them), the `decisions` (decision times) crossed, and the means over them."""

    bars: int
    decisions: int
    lyapunov_per_bar: float
    lyapunov_per_time: float
    sensitivity: float
    modes: float


@dataclasses.dataclass(frozen=True)
class FuturesMetrics:
    """M `universes` (+ the unperturbed one) at angle `sigma`, N `futures` each over
    `horizon` steps; the period crossed (the fold's test period: `period.bars` distinct
    times); `assets` crossed, at most `decision_times` evenly spaced times per asset,
    `decisions` (asset x time) in all, from `first` to `last`; the bar interval
    (`interval_seconds`); the means over every decision of λ per bar (`lyapunov_per_bar`),
    per second (`lyapunov_per_time`), sensitivity and modes; `lyapunov_floor`, what a flow
    that ignores its condition would read; their distributions; the same per asset."""

    universes: int
    sigma: float
    futures: int
    horizon: int
    period: Crossed
    assets: int
    decision_times: int
    decisions: int
    first: dt.datetime
    last: dt.datetime
    interval_seconds: float
    lyapunov_per_bar: float
    lyapunov_per_time: float
    lyapunov_floor: float
    sensitivity: float
    modes: float
    distribution: FuturesDistributions
    per_asset: dict[str, AssetReadings]
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class FuturesSummary:
    """The cfm whose futures were crossed, its fold, how they were drawn (the cfm's own
    ODE `method` and `nfe`, `ensemble` members sharing the N futures), the assets with no
    decision time in the period, where the definitions are."""

    cfm: str
    fold: str
    method: Method
    nfe: int
    ensemble: int
    absent: tuple[str, ...] = ()
    definitions: str = DEFINITIONS


@dataclasses.dataclass(frozen=True)
class FuturesOnly(Typed[Config, FuturesSummary, FuturesMetrics]):
    """A `multiverse-futures` artifact: the futures of a cfm crossed without an agent."""

    KIND = FUTURES_KIND
    COMMAND = COMMAND


read_futures = FuturesOnly.read
load_futures = FuturesOnly.load


# -- tables -------------------------------------------------------------------------------
def _value(v: float) -> str:
    """3 decimals, or 3 significant digits for a value too large or too small for them."""
    return f"{v:.3f}" if v == 0 or 1e-3 <= abs(v) < 1e4 else f"{v:.3g}"


def readings_text(mt: Metrics | FuturesMetrics) -> str:
    """The futures' readings in one sentence: the means and what they mean."""
    return (f"Mean Lyapunov proxy λ = {_value(mt.lyapunov_per_bar)} per bar ({mt.lyapunov_per_time:.3g} per second at "
            f"{mt.interval_seconds:g} s a bar; < 0: perturbations shrink, > 0: they grow; a flow that ignores its "
            f"condition reads {_value(mt.lyapunov_floor)}), perturbation sensitivity {_value(mt.sensitivity)} (0: the "
            f"push moves nothing compared with the futures' spread), {_value(mt.modes)} future modes on average "
            f"(over {mt.horizon} steps, {mt.futures} futures per universe).")


def distribution_table(mv: Multiverse) -> Table:
    """The distribution of each per-decision metric, titled with what was crossed."""
    mt = mv.metrics
    p, times = mt.period, mt.decision_times
    spacing = " (every bar)" if times.every else ", evenly spaced over the whole period"
    return table(("metric", *STATS), [(name.replace("_", " "), *(_value(d.stat(s)) for s in STATS))
                                      for name, d in mt.distribution.items()],
                 "Distribution of the per-decision metrics over every asset and decision time. " + readings_text(mt),
                 title=f"{p.name} {span_text(p.span)}: {times.count} decision times of {p.bars:,} bars{spacing}, "
                       f"{mt.decisions:,} decisions, {mt.universes} universes + 1 at σ={mt.sigma:g} rad, "
                       f"{mt.futures} futures each")


def decisions_table(mv: Multiverse) -> Table:
    """Contested decisions and bifurcation against the decision noise floor."""
    mt = mv.metrics
    nf = mt.noise_floor
    rows = [
        ("contested", f"{mt.contested:,} of {mt.decisions:,} decisions ({mt.contested_share:.1%}) with consensus "
                      f"< {mt.threshold:.3g}"),
        ("contested at the last decision time", ", ".join(mt.contested_assets_last) or "none"),
        ("bifurcation index (mean)", f"{nf.bifurcation:.3f}"),
        ("decision noise floor", f"flip rate {nf.flip_rate:.3f} of {nf.copies} re-seeded copies at σ = 0"),
        ("above the floor", f"{nf.above_floor:+.3f}"),
    ]
    return table(("decisions", "value"), rows, "Only bifurcation above the noise floor is caused by the perturbation.",
                 left=2, wrap=1)


def comparison_table(mv: Multiverse) -> Table:
    """The deterministic, filtered and consensus-sized policies on the same bars and costs."""
    return performance_table(
        mv.metrics.comparison, order=POLICIES, label="policy",
        title="the seeds' claim: deterministic vs multiverse-filtered vs consensus-sized, same bars and costs",
        caption="deterministic: the agent's own backtest (universe 0). filtered: walked from its own positions, no "
                "trade while the latest multiverse reading is contested (the position is held). sized: walked from "
                "its own positions, each decision scaled by the latest reading's consensus. A reading stands until "
                "the next decision time. All three on every bar of the period, at the same costs. " + BACKTEST_NOTE)


def _ordered(verdicts: tuple[Verdict, ...]) -> list[Verdict]:
    """By ascending cost, then in the order of `GATED`."""
    return sorted(verdicts, key=lambda v: (v.cost_bps, GATED.index(v.policy) if v.policy in GATED else len(GATED)))


def conclusion(mv: Multiverse) -> str:
    """What the verdicts show, claiming only what an interval excluding 0 shows."""
    parts = []
    if mv.metrics.contested == 0:
        parts.append("No decision was contested, so the filtered policy is the deterministic policy: the comparison "
                     "cannot show an effect of filtering here.")
    shown = [f"{v.policy} at {v.cost_bps:g} bps ({'better' if v.difference.sharpe_lo > 0 else 'worse'})"
             for v in _ordered(mv.metrics.verdict) if v.shown]
    parts.append("A difference is shown where its Sharpe interval excludes 0: " + "; ".join(shown) + "." if shown else
                 "No difference is shown: every interval of the Sharpe difference contains 0, so this run does not "
                 "show that the multiverse filter or sizing helps (or hurts).")
    return " ".join(parts)


def verdict_table(mv: Multiverse) -> Table:
    """Each gated policy minus the deterministic one, per cost level, with its interval."""
    rows = [(v.policy, f"{v.cost_bps:g}", f"{d.sharpe_diff:+.2f} [{d.sharpe_lo:+.2f}, {d.sharpe_hi:+.2f}]",
             f"{d.return_diff:+.1%} [{d.return_lo:+.1%}, {d.return_hi:+.1%}]", f"{d.block:.1f}",
             "shown" if v.shown else "not shown")
            for v in _ordered(mv.metrics.verdict) for d in (v.difference,)]
    level = mv.metrics.verdict[0].difference.level if mv.metrics.verdict else 0.95
    return table(("policy", "cost (bps)", f"Δ Sharpe [{level:.0%} CI]", f"Δ annual return [{level:.0%} CI]", "block",
                  "difference"), rows,
                 "Policy minus deterministic, per bar on the same bars: a paired stationary block bootstrap (Politis & "
                 "Romano; mean block length by Politis & White) of the annualised Sharpe difference and of the "
                 "annualised mean return difference. " + conclusion(mv), title="verdicts")


def tables(mv: Multiverse | artifacts.Manifest) -> list[Table]:
    m = _typed(mv)
    return [distribution_table(m), decisions_table(m), comparison_table(m), verdict_table(m)]


def futures_distribution_table(fo: FuturesOnly) -> Table:
    """The distribution of each reading of the futures alone, titled with what was crossed."""
    mt = fo.metrics
    p = mt.period
    return table(("reading", *STATS), [(name.replace("_", " "), *(_value(d.stat(s)) for s in STATS))
                                       for name, d in mt.distribution.items()],
                 "Distribution of the futures' readings over every asset and decision time (no agent, no "
                 "decisions). " + readings_text(mt),
                 title=f"{p.name} {span_text(p.span)}: {mt.assets} assets, up to {mt.decision_times} decision times "
                       f"each, evenly spaced, {mt.decisions:,} in all; {mt.universes} universes + 1 at "
                       f"σ={mt.sigma:g} rad, {mt.futures} futures each")


def per_asset_table(fo: FuturesOnly) -> Table:
    """Each asset's (or system's) mean readings."""
    rows = [(name, f"{r.bars:,}", f"{r.decisions:,}", _value(r.lyapunov_per_bar), f"{r.lyapunov_per_time:.3g}",
             _value(r.sensitivity), _value(r.modes)) for name, r in sorted(fo.metrics.per_asset.items())]
    return table(("asset", "bars", "decision times", "λ per bar", "λ per second", "sensitivity", "modes"), rows,
                 f"Means over each asset's decision times; bars: its bars in the period. Futures of "
                 f"{fo.summary.cfm} ({fo.summary.method}, {fo.summary.nfe} evaluations).", title="per asset")


def futures_tables(fo: FuturesOnly | artifacts.Manifest) -> list[Table]:
    f = FuturesOnly.of(fo)
    return [futures_distribution_table(f), per_asset_table(f)]
