"""`chaos train-agent`: train the TD-MPC2-style agent offline, then backtest it walking
forward through every evaluation period, against baselines, at several costs.

Artifact `agent` (parents: cfm, jepa, tokens, dataset): `checkpoints/` (Orbax),
`positions.parquet` (period, ts, asset, strategy, position, next_return) and
`equity.parquet` (period, ts, strategy, cost_bps, pnl: the portfolio's simple return,
equity: wealth from 1; `strates.core.accounting`), `walk-test.npz` (the agent's walk
through the test period with its planning inputs, for Multiverse Crossing). The manifest
(typed in `artifact.py`) holds each period's backtest rows, the trials counted for the
deflated Sharpe ratio, the measured periods per year, and the time ranges every upstream
artifact was fitted and selected on; evaluation on a period that overlaps any of them, or
the agent's own training period, is refused (`LeakageError`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import NamedTuple, Protocol

import numpy as np

from strates.agent import artifact
from strates.agent.artifact import Backtest, Metrics, Skipped, Summary
from strates.agent.config import DEFAULT_PRESET, PRESETS, Config
from strates.core import accounting, artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.errors import ConfigError
from strates.core.progress import Reporter, training_log
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.data.split import Fold, Period

SMALL_TRADER = "positions do not move prices; fills at the next bar's return, costs per side on |Δposition|"
ACCOUNTING = ("simple returns: a·(e^r − 1) − cost·|Δa| per asset; equal weight over the assets with a bar; "
              "wealth grows by log1p(R)")


class Evaluation(NamedTuple):
    """A period to backtest: `test`, `test:<fold>` or `custom`, and its span."""

    name: str
    span: Period


def parse_period(text: str) -> Period:
    """"START,END" (ISO dates or times, UTC unless an offset is given) -> a Period."""
    fix = "use e.g. --period 2024-10-01,2024-12-31 (UTC, end exclusive)"
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise ConfigError(f"backtest.period {text!r} must be START,END", field="backtest.period", fix=fix)
    try:
        start, end = (dt.datetime.fromisoformat(p) for p in parts)
    except ValueError:
        raise ConfigError(f"cannot read backtest.period {text!r} as two ISO dates", field="backtest.period",
                          fix=fix) from None
    start, end = (d if d.tzinfo else d.replace(tzinfo=dt.UTC) for d in (start, end))
    if not start < end:
        raise ConfigError(f"backtest.period {text!r}: start must be before end", field="backtest.period", fix=fix)
    return Period(start, end)


class _Period(Protocol):
    @property
    def period(self) -> str: ...


class Backtested(Protocol):
    """A config with a `backtest.period` ("" or "START,END"): the agent's, the World Models'."""

    @property
    def backtest(self) -> _Period: ...


def evaluation_periods(config: Backtested, folds: Sequence[Fold], fold: Fold, upstream: list[artifacts.Manifest], *,
                       own: Mapping[str, Period] | None = None, ref: str = "this agent"
                       ) -> tuple[list[Evaluation], list[Skipped]]:
    """The periods to backtest, and the folds skipped.

    `upstream`: every artifact upstream of the agent, `own`: the ranges the agent itself
    (`ref`, not yet written) is fitted on; the ranges each was fitted on *and* selected on
    (checkpoint choice on validation) count. An explicit `backtest.period` must not overlap
    any of them (else LeakageError). By default: the test period of the models' `fold`,
    then the test period of every later fold (one starting at or after the models' own test
    start) that overlaps none of them. Earlier folds are skipped even where no model was
    fitted on them: in walk-forward, fold k validates on fold k-1's test block, so that
    block chose the models and is not out of sample."""
    mine = {name: p.to_dict() for name, p in (own or {}).items()}

    def check(span: Period, period: str) -> None:
        artifacts.check_disjoint(upstream, span.start, span.end, period=period, own=mine, ref=ref)

    if config.backtest.period:
        span = parse_period(config.backtest.period)
        check(span, "requested backtest")
        return [Evaluation("custom", span)], []
    check(fold.test, "test")
    periods, skipped = [Evaluation("test", fold.test)], []
    for f in folds:
        if f.name == fold.name:
            continue
        if f.test.start < fold.test.start:
            skipped.append(Skipped(f.name, (
                f"its test period starts {f.test.start.isoformat()}, before the models' own test period "
                f"({fold.name}, from {fold.test.start.isoformat()}): the models were fitted or selected on it or "
                "on data around it")))
            continue
        hits = artifacts.overlapping(upstream, f.test.start, f.test.end)
        if hits:
            skipped.append(Skipped(f.name, f"{hits[0].describe()}, inside its test period"))
            continue
        periods.append(Evaluation(f"test:{f.name}", f.test))
    return periods, skipped


def transitions(states, index, *, ret_scale: float, config: Config):
    """The training period's transitions (see `train.Transitions`)."""
    from strates.agent.env import trailing_vol
    from strates.agent.train import Transitions

    h, h_next, ret, scale = [], [], [], []
    for s, t in zip(states, index, strict=True):
        h.append(s.h[t])
        h_next.append(s.h[t + 1])
        ret.append(accounting.simple(s.r[t + 1]) / ret_scale)  # simple returns, in units of the return std
        if config.env.vol_scaled:
            vol = trailing_vol(s.r, window=config.env.vol_window, floor=0.1 * ret_scale)
            scale.append(vol[t] / ret_scale)
        else:
            scale.append(np.ones(len(t)))
    cat = lambda xs: np.concatenate(xs).astype(np.float32)  # noqa: E731
    return Transitions(cat(h), cat(h_next), cat(ret), cat(scale))


def walk_seed(config: Config, index: int) -> int:
    """The seed of the random streams of the backtest of the `index`-th evaluation period
    (`Decider.walk`); recorded per period so that Multiverse Crossing replays them."""
    return config.train.seed + 100 + index


def _train_agent(config: Config, data, *, cost: float, ckpt, on_log):
    import jax

    from strates.agent import model
    from strates.agent.train import make_loss, sampler
    from strates.core.train import train

    params = model.init(jax.random.key(config.train.seed), config.model, state_dim=data.h.shape[1])
    tau = config.loss.tau
    return train(loss_fn=make_loss(config, cost=cost), params=params,
                 batches=sampler(data, config, seed=config.train.seed), config=config.train, checkpoint_dir=ckpt,
                 key=jax.random.key(config.train.seed + 1), on_log=on_log, frozen=model.frozen(params),
                 post_update=lambda p, step: model.ema_target(p, tau))


def _prepare(config: Config, parents: Mapping[str, artifacts.Manifest]) -> Config:
    """Fail before any work: on a series dataset (no prices to trade: exit 2), or a bad period."""
    data_artifact.read(parents["dataset"]).require_bars(artifact.COMMAND)
    if config.backtest.period:
        parse_period(config.backtest.period)  # a bad period fails before any work
    return config


def build(job: template.Job[Config]) -> template.Output:
    """Train the agent on its fold's training period, then backtest it on every evaluation
    period against the baselines at every cost level."""
    import jax

    from strates.agent import backtest
    from strates.agent.policy import Decider, check_horizon
    from strates.agent.trials import census
    from strates.cfm import artifact as cfm_artifact
    from strates.cfm.data import period_index
    from strates.jepa.artifact import embed

    config, ws, rep = job.config, job.ws, job.reporter
    cfm = cfm_artifact.read(job.parent("cfm"))
    dataset = data_artifact.read(job.parent("dataset"))
    fold = dataset.fold(cfm.summary.fold)
    upstream = job.upstream()
    # the agent's own fitted range joins the upstream ones in the leakage check; it selects
    # nothing (fixed steps, the last parameters), so it records no selected range
    periods, skipped = evaluation_periods(config, dataset.folds, fold, upstream, own={"train": fold.train},
                                          ref=f"{artifact.KIND}/{job.id}")
    flows, scales = cfm_artifact.load_flows(ws, cfm)
    check_horizon(config, scales.horizon)
    with rep.task("embedding every bar with the JEPA"):
        states = embed(ws, job.parent("jepa")).states
    train_index = period_index(states, fold.train.start, fold.train.end, 1)
    ret_scale = float(np.concatenate([s.r[t] for s, t in zip(states, train_index, strict=True)]).std())
    data = transitions(states, train_index, ret_scale=ret_scale, config=config)
    observed = scales.observe(states)  # what the flows read: h_t, the scale features, the unit
    steps = config.train.steps
    with rep.task(f"training the agent offline on {len(data.ret)} transitions ({steps} steps)", total=steps) as update:
        result = _train_agent(config, data, cost=config.env.cost_bps * 1e-4 / ret_scale,
                              ckpt=job.folder("checkpoints"), on_log=training_log(update, "value", "cql"))
    decider = Decider(config, result.params, flows, ret_scale=ret_scale, cfm_horizon=scales.horizon,
                      state_dim=scales.state_dim, spread=scales.spread)
    ppy = dataset.summary.periods_per_year
    tried = census(ws, dataset.id, candidate=job.id, chain={kind: m.id for kind, m in job.parents.items()})
    n_trials = max(config.backtest.trials, tried.n_trials)
    done: list[Backtest] = []
    pos_frames, eq_frames = [], []
    for i, period in enumerate(periods):
        ts, h, valid, r_next, r_now = backtest.clock(observed, period.span, config.backtest.max_bars)
        if not len(ts):
            skipped.append(Skipped(period.name, "no bars inside the period"))
            continue
        seed = walk_seed(config, i)
        with rep.task(f"backtesting {period.name}: {len(ts)} bars x {len(states)} assets ({config.planner.kind})"):
            key = jax.random.key(seed)
            returns, values = decider.inputs(h, key=key)
            walk = decider.walk(h, valid, returns, values, key=key)
            if period.name == "test":  # Multiverse Crossing starts from exactly this walk
                job.writer.write_bytes(artifact.WALK, artifact.save_walk(walk, returns, values))
        strategies = {"agent": walk.positions, **backtest.baseline_positions(
            r_now, valid, window=config.backtest.momentum_window, seed=config.backtest.random_seed + i)}
        rows, pnls = backtest.evaluate(strategies, r_next, valid, cost_levels=config.backtest.cost_levels,
                                       periods_per_year=ppy, n_trials={"agent": n_trials}, trial_sharpes=tried.sharpes)
        present = valid.any(0)
        done.append(Backtest(period.name, period.span, bars=len(ts), assets=int(present.sum()), seed=seed, rows=rows,
                             absent=tuple(s.asset for s, p in zip(states, present, strict=True) if not p)))
        pos_frames.append(positions_frame(period.name, ts, states, strategies, r_next, valid))
        eq_frames.append(backtest.equity_frame(period.name, ts, pnls))
    import polars as pl

    job.writer.write_parquet("positions.parquet", pl.concat(pos_frames))
    job.writer.write_parquet("equity.parquet", pl.concat(eq_frames))
    metrics = Metrics(backtest=tuple(done), training=result.history[-1] if result.history else {})
    summary = Summary(
        fold=fold.name, planner=config.planner.kind, cost_bps=config.env.cost_bps, cvar_alpha=config.planner.cvar_alpha,
        n_trials=n_trials, trials=tried.trials(), periods_per_year=ppy, transitions=len(data.ret),
        futures_per_state=decider.futures_per_state, ret_scale=ret_scale, small_trader=SMALL_TRADER,
        accounting=ACCOUNTING,
        skipped=tuple(skipped), history=tuple(result.history),
        upstream_fitted={m.ref: _spans(m.fitted) for m in upstream if m.fitted},
        upstream_selected={m.ref: _spans(m.selected) for m in upstream if m.selected},
    )
    return template.Output(to_dict(metrics), to_dict(summary), fitted={"train": fold.train.to_dict()})


def _spans(ranges: Mapping[str, Mapping[str, dt.datetime]]) -> dict[str, Period]:
    return {name: Period(r["start"], r["end"]) for name, r in ranges.items()}


def positions_frame(period, ts, states, strategies, r_next, valid):
    import polars as pl

    t_idx, a_idx = np.nonzero(valid)
    frames = []
    for name, pos in strategies.items():
        frames.append(pl.DataFrame({
            "period": [period] * len(t_idx), "ts": ts[t_idx], "asset": [states[a].asset for a in a_idx],
            "strategy": [name] * len(t_idx), "position": pos[t_idx, a_idx].astype(np.float64),
            "next_return": r_next[t_idx, a_idx],
        }, schema_overrides={"period": pl.String, "asset": pl.String, "strategy": pl.String}))
    return pl.concat(frames)


STAGE: template.Stage[Config] = template.Stage(
    kind=artifact.KIND, command=artifact.COMMAND, config=Config, build=build,
    parents=("cfm", "jepa", "tokens", "dataset"), presets=PRESETS, default_preset=DEFAULT_PRESET, prepare=_prepare,
    resume=True,
)


def run(config: Config, ws: Workspace, *, cfm: str | artifacts.Manifest = "latest", force: bool = False,
        reporter: Reporter | None = None) -> template.Result:
    """Train and backtest an agent on the cfm artifact `cfm` (a reference or a manifest)."""
    return template.run(STAGE, config, ws, parents={"cfm": cfm}, force=force, reporter=reporter)
