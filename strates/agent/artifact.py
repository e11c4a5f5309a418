"""The `agent` artifact, typed: what `chaos train-agent` records and Multiverse Crossing and
the report read.

`read(manifest)` types a manifest already held; `load(ws, ref)` resolves and types one.
What the next stage loads from it: `load_decider` (the trained agent with its cfm's flows)
and `load_walk` (its walk through the test period with the planning inputs, written by
`save_walk`). `tables(agent)` are the tables the CLI and the report both show;
`performance_table` is the one backtest table (strategy x cost level), also used for the
multiverse comparison.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from strates.agent.config import Config, PlannerKind
from strates.core import artifacts
from strates.core.errors import ConfigError
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.core.workspace import Workspace
from strates.data.split import Period

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from strates.agent.policy import Decider, Walk

KIND = "agent"
COMMAND = "train-agent"
WALK = "walk-test.npz"
STRATEGIES = ("agent", "buy_and_hold", "momentum", "random")

BACKTEST_NOTE = ("Sharpe and Sortino are annualised; max drawdown is the largest peak-to-trough loss of wealth; "
                 "annual return is the compound annual growth of wealth; all figures are on the equal-weight "
                 "portfolio's simple returns (a·(e^r − 1) − cost·|Δa| per asset), annualised with the dataset's "
                 "measured periods per year; turnover is the mean one-way |Δposition| per asset per bar; hit rate "
                 "is the share of active bars with a positive PnL; DSR is the deflated Sharpe ratio, the "
                 "probability that the true Sharpe exceeds the best of the trials expected by chance.")


@dataclasses.dataclass(frozen=True)
class Performance:
    """One strategy charged at one cost level (`cost_bps` per side) on one period's bars
    (`strates.agent.metrics.summary`): total return (W_T − 1), CAGR, annualised volatility,
    Sharpe, Sortino, max drawdown (a fraction), turnover (mean |Δposition| per asset and
    bar), hit rate (over active bars), deflated Sharpe ratio, the Sharpe the DSR must clear
    (`sr0_annual`), and the bars."""

    strategy: str
    cost_bps: float
    total_return: float
    annual_return: float
    annual_vol: float
    sharpe: float
    sortino: float
    max_drawdown: float
    turnover: float
    hit_rate: float
    dsr: float
    sr0_annual: float
    bars: int


def by_strategy(rows: Iterable[Performance], order: Sequence[str] = ()) -> dict[str, tuple[Performance, ...]]:
    """Rows grouped by strategy (those in `order` first, then the others as they come),
    each strategy's rows by ascending cost."""
    groups: dict[str, list[Performance]] = {}
    for r in rows:
        groups.setdefault(r.strategy, []).append(r)
    names = [s for s in order if s in groups] + [s for s in groups if s not in order]
    return {s: tuple(sorted(groups[s], key=lambda r: r.cost_bps)) for s in names}


def find(rows: Iterable[Performance], strategy: str, cost_bps: float) -> Performance:
    """The row of `strategy` at `cost_bps`; a clear error lists what there is."""
    rows = tuple(rows)
    for r in rows:
        if r.strategy == strategy and r.cost_bps == float(cost_bps):
            return r
    have = ", ".join(f"{r.strategy}@{r.cost_bps:g}" for r in rows)
    raise KeyError(f"no row for {strategy} at {cost_bps:g} bps (have: {have})")


@dataclasses.dataclass(frozen=True)
class Backtest:
    """One evaluation period: its `name` (`test`, `test:<fold>` for a later walk-forward
    fold, `custom` for `--period`), `span` [start, end), the `bars` of its clock, the
    `assets` with a bar in it and those `absent` (left out of the portfolio), the `seed` of
    the agent's random streams on it (Multiverse Crossing replays them), and the figures
    of every strategy at every cost level (`rows`)."""

    name: str
    span: Period
    bars: int
    assets: int
    seed: int
    rows: tuple[Performance, ...]
    absent: tuple[str, ...] = ()

    def row(self, strategy: str, cost_bps: float) -> Performance:
        return find(self.rows, strategy, cost_bps)

    def strategy(self, name: str) -> tuple[Performance, ...]:
        """`name`'s rows, by ascending cost."""
        return by_strategy(self.rows).get(name, ())


def named(backtests: Iterable[Backtest], name: str, ref: str) -> Backtest:
    """The backtest of period `name` among an artifact's (`ref`); a clear error lists the others."""
    backtests = tuple(backtests)
    for b in backtests:
        if b.name == name:
            return b
    raise ConfigError(f"{ref} has no backtest of period {name!r}",
                      fix=f"choose one of: {', '.join(b.name for b in backtests) or '(none)'}")


@dataclasses.dataclass(frozen=True)
class Skipped:
    """A fold whose test period was not backtested, and why."""

    fold: str
    reason: str


@dataclasses.dataclass(frozen=True)
class Trials:
    """The trial census behind the deflated Sharpe ratio (`strates.agent.trials`): the
    count, and the ids counted per stage (the candidate's own under `candidate`)."""

    n_trials: int
    counted: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Summary:
    """What the agent was and how it was judged: the fold, planner, the cost it planned with
    (bps per side), the CVaR level, the trials the DSR counts, the measured periods per year,
    the training transitions, futures per state, `ret_scale` (the training-period std of
    log returns: the unit of the agent's rewards and values), the folds skipped, the
    training log, and the ranges every upstream artifact was fitted and selected on
    ({ref: {name: span}})."""

    fold: str
    planner: PlannerKind
    cost_bps: float
    cvar_alpha: float
    n_trials: int
    trials: Trials
    periods_per_year: float
    transitions: int
    futures_per_state: int
    ret_scale: float
    small_trader: str
    accounting: str
    skipped: tuple[Skipped, ...] = ()
    history: tuple[dict[str, float], ...] = ()
    upstream_fitted: dict[str, dict[str, Period]] = dataclasses.field(default_factory=dict)
    upstream_selected: dict[str, dict[str, Period]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Metrics:
    """The backtest of every evaluation period (the models' own test period first), the
    training log's last entry, and the seconds the stage took."""

    backtest: tuple[Backtest, ...]
    training: dict[str, float] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Agent(Typed[Config, Summary, Metrics]):
    """An agent artifact: its `manifest`, resolved `config`, typed `summary` and `metrics`."""

    KIND = KIND
    COMMAND = COMMAND

    @property
    def periods(self) -> tuple[Backtest, ...]:
        return self.metrics.backtest

    def backtest(self, name: str = "test") -> Backtest:
        """The backtest of period `name`; a clear error lists the others."""
        return named(self.metrics.backtest, name, self.ref)

    @property
    def has_walk(self) -> bool:
        """Whether its test-period walk was saved (`load_walk`); older agents are replayed."""
        return WALK in self.manifest.files


read = Agent.read
load = Agent.load
_typed = Agent.of


# -- what the next stage loads ------------------------------------------------------------
class SavedWalk(NamedTuple):
    """The agent's walk through its test period (`Walk`: positions, actions, before
    `[T, A]`, warm `[T, A, H]`) and its planning inputs: log returns `[T, A, N, H]` and
    terminal values `[T, A, N, G]` of the N futures per state."""

    walk: Walk
    returns: np.ndarray
    values: np.ndarray


def save_walk(walk: Walk, returns: np.ndarray, values: np.ndarray) -> bytes:
    """`SavedWalk`'s arrays as compressed npz bytes (the file `WALK`)."""
    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, positions=walk.positions, actions=walk.actions, before=walk.before, warm=walk.warm,
                        returns=returns, values=values)
    return buf.getvalue()


def load_walk(ws: Workspace, agent: Agent | artifacts.Manifest) -> SavedWalk:
    """The test-period walk an agent artifact saved (see `has_walk`)."""
    import numpy as np

    from strates.agent.policy import Walk

    m = agent.manifest if isinstance(agent, Agent) else agent
    with np.load(io.BytesIO(ws.read_bytes(f"{m.stage}/{m.id}/{WALK}"))) as z:
        return SavedWalk(Walk(z["positions"], z["actions"], z["before"], z["warm"]), z["returns"], z["values"])


def load_positions(ws: Workspace, agent: Agent | artifacts.Manifest, *, period: str, strategy: str = "agent"):
    """`strategy`'s positions over backtest period `period` (`positions.parquet` rows:
    period, ts, asset, strategy, position, next_return), as a polars DataFrame."""
    import polars as pl

    m = agent.manifest if isinstance(agent, Agent) else agent
    frame = pl.read_parquet(io.BytesIO(ws.read_bytes(f"{m.stage}/{m.id}/positions.parquet")))
    return frame.filter((pl.col("period") == period) & (pl.col("strategy") == strategy))


def load_decider(ws: Workspace, agent: Agent | artifacts.Manifest) -> Decider:
    """The trained agent (its last parameters) with its cfm's flows, as a `Decider`."""
    import jax

    from strates.agent import model
    from strates.agent.policy import Decider
    from strates.cfm import artifact as cfm_artifact
    from strates.core.checkpoints import restore_params

    a = _typed(agent)
    flows, scales = cfm_artifact.load_flows(ws, cfm_artifact.load(ws, a.manifest.parents["cfm"]))
    d = scales.state_dim
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), a.config.model, state_dim=d))
    params = restore_params(artifacts.location(ws, a.manifest, "checkpoints"), abstract)
    return Decider(a.config, params, flows, ret_scale=a.summary.ret_scale, cfm_horizon=scales.horizon, state_dim=d,
                   spread=scales.spread)


def observations(ws: Workspace, agent: Agent | artifacts.Manifest, states: list) -> list:
    """The JEPA `states` as the agent's cfm observes them (`Scales.observe`: `h` becomes the
    observation `[N, D + k + 1]` a `Decider` reads)."""
    from strates.cfm import artifact as cfm_artifact

    return cfm_artifact.scales(ws, cfm_artifact.load(ws, _typed(agent).manifest.parents["cfm"])).observe(states)


# -- tables -------------------------------------------------------------------------------
def _day(t) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if (t.hour or t.minute) else t.strftime("%Y-%m-%d")


def span_text(p: Period) -> str:
    """`start .. end` (UTC; the end is exclusive)."""
    return f"{_day(p.start)} .. {_day(p.end)}"


def performance_table(rows: Iterable[Performance], *, order: Sequence[str] = STRATEGIES, title: str = "",
                      caption: str = BACKTEST_NOTE, label: str = "strategy") -> Table:
    """The backtest table: one row per strategy and cost level (ascending), the strategies
    in `order` first, under the heading `label`."""
    out = [(strategy.replace("_", " "), f"{r.cost_bps:g}", f"{r.sharpe:.2f}", f"{r.sortino:.2f}",
            f"{r.max_drawdown:.1%}", f"{r.annual_return:.1%}", f"{r.turnover:.3f}", f"{r.hit_rate:.0%}", f"{r.dsr:.2f}")
           for strategy, group in by_strategy(rows, order).items() for r in group]
    return table((label, "cost (bps)", "Sharpe", "Sortino", "max drawdown", "annual return", "turnover",
                  "hit rate", "DSR"), out, caption, title=title)


def backtest_table(agent: Agent, b: Backtest) -> Table:
    """One evaluation period's backtest, titled with its span, bars, assets and the agent's
    setting; the caption names the assets left out."""
    s = agent.summary
    absent = (f"Left out of this period's equal-weight portfolio (no bars inside it): {', '.join(b.absent)}. "
              if b.absent else "")
    return performance_table(
        b.rows, title=f"{b.name} {span_text(b.span)}: {b.bars:,} bars x {b.assets} assets (planned at "
                      f"{s.cost_bps:g} bps, CVaR α={s.cvar_alpha:g}, {s.n_trials} trial(s) for the DSR, "
                      f"{s.periods_per_year:,.0f} periods/year measured)",
        caption=f"{absent}The same positions charged at each cost level. {BACKTEST_NOTE}")


def skipped_table(agent: Agent) -> Table | None:
    """The folds not backtested and why (None when every fold was)."""
    if not agent.summary.skipped:
        return None
    return table(("fold", "why it was not backtested"), [(s.fold, s.reason) for s in agent.summary.skipped],
                 left=2, wrap=1, title="skipped folds")


def tables(agent: Agent | artifacts.Manifest) -> list[Table]:
    """Every period's backtest table, then the skipped folds."""
    a = _typed(agent)
    out = [backtest_table(a, b) for b in a.metrics.backtest]
    skipped = skipped_table(a)
    return [*out, skipped] if skipped is not None else out
