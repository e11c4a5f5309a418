"""`chaos train-agent`: train the TD-MPC2-style agent offline, then backtest it walking
forward through every evaluation period, against baselines, at several costs.

Artifact `agent` (parents: cfm, jepa, tokens, dataset): `checkpoints/` (Orbax),
`positions.parquet` (period, ts, asset, strategy, position, next_return) and
`equity.parquet` (period, ts, strategy, cost_bps, pnl: the portfolio's simple return,
equity: wealth from 1; `strates.core.accounting`), `walk-test.npz` (the agent's walk through
the test period with its planning inputs, for Multiverse Crossing). The manifest holds the backtest tables,
the trials counted for the deflated Sharpe ratio, the measured periods per year, and the
time ranges every upstream artifact was fitted and selected on; evaluation on a period that
overlaps any of them is refused (`LeakageError`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import numpy as np

from strates.agent.config import Config
from strates.core import accounting, artifacts
from strates.core.config import to_dict
from strates.core.errors import ConfigError
from strates.core.progress import NullReporter, Reporter, training_log
from strates.core.workspace import Workspace

STAGE = "agent"


@dataclasses.dataclass(frozen=True)
class Result:
    manifest: artifacts.Manifest
    reused: bool


@dataclasses.dataclass(frozen=True)
class Period:
    name: str
    start: dt.datetime
    end: dt.datetime


def parse_period(text: str) -> tuple[dt.datetime, dt.datetime]:
    """"START,END" (ISO dates or times, UTC unless an offset is given) -> datetimes."""
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
    return start, end


def evaluation_periods(config: Config, dataset: artifacts.Manifest, fold: dict, fitted: list[artifacts.Manifest]
                       ) -> tuple[list[Period], list[dict]]:
    """The periods to backtest, and the folds skipped ({fold, reason}).

    `fitted`: the agent and every artifact upstream of it; the ranges each was fitted on
    *and* selected on (checkpoint choice on validation) count. An explicit
    `backtest.period` must not overlap any of them (else LeakageError). By default: the
    test period of the models' fold, then the test period of every later fold (one starting
    at or after the models' own test start) that overlaps none of them. Earlier folds are
    skipped even where no model was fitted on them: in walk-forward, fold k validates on
    fold k-1's test block, so that block chose the models and is not out of sample."""
    if config.backtest.period:
        start, end = parse_period(config.backtest.period)
        artifacts.check_disjoint(fitted, start, end, period="requested backtest")
        return [Period("custom", start, end)], []
    own_start = fold["test"]["start"]
    artifacts.check_disjoint(fitted, own_start, fold["test"]["end"], period="test")
    periods, skipped = [Period("test", own_start, fold["test"]["end"])], []
    for f in dataset.summary["split"]["folds"]:
        if f["name"] == fold["name"]:
            continue
        start, end = f["test"]["start"], f["test"]["end"]
        if start < own_start:
            skipped.append({"fold": f["name"], "reason": (
                f"its test period starts {start.isoformat()}, before the models' own test period "
                f"({fold['name']}, from {own_start.isoformat()}): the models were fitted or selected on it or "
                "on data around it")})
            continue
        hits = artifacts.overlapping(fitted, start, end)
        if hits:
            skipped.append({"fold": f["name"], "reason": f"{hits[0].describe()}, inside its test period"})
            continue
        periods.append(Period(f"test:{f['name']}", start, end))
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


def clock(states, period: Period, max_bars: int):
    """The common clock of a period: `ts [T]` (bars t of any asset with t and t+1 inside
    the period), `h [T, A, D]`, `valid [T, A]`, `r_next [T, A]`, `r_now [T, A]`."""
    a = np.datetime64(period.start.replace(tzinfo=None), "us")
    b = np.datetime64(period.end.replace(tzinfo=None), "us")
    rows = []
    for s in states:
        t = np.arange(len(s.ts) - 1)
        rows.append(t[(s.ts[t] >= a) & (s.ts[t + 1] < b)])
    ts = np.unique(np.concatenate([s.ts[t] for s, t in zip(states, rows, strict=True)]))
    if max_bars:
        ts = ts[:max_bars]
    d = states[0].h.shape[1]
    h = np.zeros((len(ts), len(states), d), np.float32)
    valid = np.zeros((len(ts), len(states)), bool)
    r_next = np.zeros((len(ts), len(states)))
    r_now = np.zeros((len(ts), len(states)))
    for j, (s, t) in enumerate(zip(states, rows, strict=True)):
        pos = np.searchsorted(ts, s.ts[t])
        keep = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == s.ts[t])
        pos, t = pos[keep], t[keep]
        h[pos, j], valid[pos, j], r_next[pos, j], r_now[pos, j] = s.h[t], True, s.r[t + 1], s.r[t]
    return ts, h, valid, r_next, r_now


WALK = "walk-test.npz"


def save_walk(walk, returns: np.ndarray, values: np.ndarray) -> bytes:
    """The test period's walk and its planning inputs as compressed npz bytes: positions,
    actions, before `[T, A]`, warm `[T, A, H]`, returns `[T, A, N, H]`, values `[T, A, N, G]`."""
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, positions=walk.positions, actions=walk.actions, before=walk.before, warm=walk.warm,
                        returns=returns, values=values)
    return buf.getvalue()


def load_walk(ws: Workspace, manifest: artifacts.Manifest):
    """`(Walk, returns, values)` of an agent artifact's test period (see `save_walk`)."""
    import io

    from strates.agent.policy import Walk

    with np.load(io.BytesIO(ws.read_bytes(f"{manifest.stage}/{manifest.id}/{WALK}"))) as z:
        return Walk(z["positions"], z["actions"], z["before"], z["warm"]), z["returns"], z["values"]


def walk_seed(config: Config, index: int) -> int:
    """The seed of the random streams of the backtest of the `index`-th evaluation period
    (`Decider.run`); recorded per period so that Multiverse Crossing replays them."""
    return config.train.seed + 100 + index


def periods_per_year(dataset: artifacts.Manifest) -> float:
    """Bars per year for annualising: the dataset's measured figure (DESIGN.md, Accounting),
    or 365.25 days of bars for a dataset ingested before it was measured."""
    from strates.agent import metrics as perf

    ppy = dataset.summary.get("periods_per_year")
    return float(ppy) if ppy else perf.annual_factor(float(dataset.summary["interval_seconds"]))


def _train_agent(config: Config, data, *, cost: float, ckpt, on_log):
    import jax

    from strates.agent import model
    from strates.agent.train import make_loss, sampler
    from strates.core.train import train

    params = model.init(jax.random.key(config.train.seed), config.model, state_dim=data.h.shape[1])
    tau = config.loss.tau
    return train(loss_fn=make_loss(config, cost=cost), params=params, batches=sampler(data, config, seed=config.train.seed),
                 config=config.train, checkpoint_dir=ckpt, key=jax.random.key(config.train.seed + 1), on_log=on_log,
                 frozen=model.frozen(params), post_update=lambda p, step: model.ema_target(p, tau))


def run(config: Config, ws: Workspace, *, cfm: str = "latest", force: bool = False,
        reporter: Reporter | None = None) -> Result:
    import jax

    from strates.agent import backtest
    from strates.agent.policy import Decider, check_horizon
    from strates.agent.trials import census
    from strates.cfm.data import load_states, period_index
    from strates.cfm.stage import load_flows

    rep = reporter or NullReporter()
    cm = artifacts.resolve(ws, cfm, stage="cfm")
    jm = artifacts.resolve(ws, cm.parents["jepa"], stage="jepa")
    parents = {"cfm": cm.id, "jepa": jm.id, "tokens": cm.parents["tokens"], "dataset": cm.parents["dataset"]}
    upstream = [cm, *artifacts.ancestors(ws, cm)]
    resolved = to_dict(config)
    if config.backtest.period:
        parse_period(config.backtest.period)  # a bad period fails before any work
    aid, existing = artifacts.lookup(ws, STAGE, resolved, parents, force=force)
    if existing is not None:
        return Result(existing, True)
    dataset = artifacts.resolve(ws, parents["dataset"], stage="dataset")
    fold = next(f for f in dataset.summary["split"]["folds"] if f["name"] == cm.summary["fold"])
    train_span = {"start": fold["train"]["start"], "end": fold["train"]["end"]}
    # this agent's own fitted range joins the upstream ones in the leakage check; it selects
    # nothing (fixed steps, the last parameters), so its selected ranges are empty
    own = artifacts.Manifest(schema=0, stage=STAGE, id=aid, created=dt.datetime.now(dt.UTC), config={}, parents={},
                             files={}, metrics={}, summary={}, fitted={"train": train_span}, selected={},
                             version="")
    periods, skipped = evaluation_periods(config, dataset, fold, [*upstream, own])
    t0 = time.perf_counter()
    with rep.task("embedding every bar with the JEPA"):
        states, _, _ = load_states(ws, jm)
    flows, scales = load_flows(ws, cm)
    check_horizon(config, int(scales["horizon"]))
    ret_scale = float(scales["ret_scale"])
    cost = config.env.cost_bps * 1e-4
    data = transitions(states, period_index(states, fold["train"]["start"], fold["train"]["end"], 1),
                       ret_scale=ret_scale, config=config)
    writer = artifacts.begin(ws, STAGE, aid, resume=True)  # an interrupted run resumes from its checkpoints
    rel = writer.rel("checkpoints")
    steps = config.train.steps
    with rep.task(f"training the agent offline on {len(data.ret)} transitions ({steps} steps)", total=steps) as update:
        result = _train_agent(config, data, cost=cost / ret_scale, ckpt=ws.local_path(rel) or ws.uri(rel),
                              on_log=training_log(update, "value", "cql"))
    decider = Decider(config, result.params, flows, ret_scale=ret_scale, cfm_horizon=int(scales["horizon"]),
                      state_dim=int(scales["state_dim"]))
    ppy = periods_per_year(dataset)
    tried = census(ws, dataset.id, candidate=aid, chain=parents)
    n_trials = max(config.backtest.trials, tried.n_trials)
    out: dict[str, Any] = {}
    pos_frames, eq_frames = [], []
    for i, period in enumerate(periods):
        ts, h, valid, r_next, r_now = clock(states, period, config.backtest.max_bars)
        if not len(ts):
            skipped.append({"fold": period.name, "reason": "no bars inside the period"})
            continue
        with rep.task(f"backtesting {period.name}: {len(ts)} bars x {len(states)} assets ({config.planner.kind})"):
            key = jax.random.key(walk_seed(config, i))
            returns, values = decider.inputs(h, key=key)
            walk = decider.walk(h, valid, returns, values, key=key)
            agent_pos = walk.positions
            if period.name == "test":  # Multiverse Crossing starts from exactly this walk
                writer.write_bytes(WALK, save_walk(walk, returns, values))
        strategies = {"agent": agent_pos, **backtest.baseline_positions(
            r_now, valid, window=config.backtest.momentum_window, seed=config.backtest.random_seed + i)}
        table, pnls = backtest.evaluate(strategies, r_next, valid, cost_levels=config.backtest.cost_levels,
                                        periods_per_year=ppy, n_trials={"agent": n_trials},
                                        trial_sharpes=tried.sharpes)
        present = valid.any(0)
        out[period.name] = {"start": period.start, "end": period.end, "bars": len(ts), "assets": int(present.sum()),
                            "seed": walk_seed(config, i),
                            "absent": [s.asset for s, p in zip(states, present, strict=True) if not p],
                            "table": table}
        pos_frames.append(_positions_frame(period.name, ts, states, strategies, r_next, valid))
        eq_frames.append(equity_frame(period.name, ts, pnls))
    import polars as pl

    writer.write_parquet("positions.parquet", pl.concat(pos_frames))
    writer.write_parquet("equity.parquet", pl.concat(eq_frames))
    writer.add_existing("checkpoints")
    metrics = {"backtest": out, "training": result.history[-1] if result.history else {},
               "seconds": round(time.perf_counter() - t0, 2)}
    summary = {
        "fold": fold["name"], "planner": config.planner.kind, "cost_bps": config.env.cost_bps,
        "cvar_alpha": config.planner.cvar_alpha, "n_trials": n_trials, "trials": tried.to_dict(),
        "periods_per_year": ppy, "transitions": int(len(data.ret)),
        "futures_per_state": decider.futures_per_state, "skipped": skipped, "history": result.history,
        "upstream_fitted": {m.ref: m.fitted for m in upstream if m.fitted},
        "upstream_selected": {m.ref: m.selected for m in upstream if m.selected},
        "small_trader": "positions do not move prices; fills at the next bar's return, costs per side on |Δposition|",
        "accounting": "simple returns: a·(e^r − 1) − cost·|Δa| per asset; equal weight over the assets with a bar; "
                      "wealth grows by log1p(R)",
    }
    manifest = writer.commit(config=resolved, parents=parents, metrics=metrics, summary=summary,
                             fitted={"train": train_span})
    return Result(manifest, False)


def _positions_frame(period, ts, states, strategies, r_next, valid):
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


def equity_frame(period: str, ts: np.ndarray, pnls: dict[str, dict[str, np.ndarray]]):
    """Equity curves as a long frame: period, ts, strategy, cost_bps, pnl (the portfolio's
    simple return R_t over the bar after ts), equity (wealth prod(1 + R), from 1), from
    `backtest.evaluate`'s returns `{strategy: {"<c>bps": [T]}}`."""
    import polars as pl

    frames = []
    for name, by_cost in pnls.items():
        for key, pnl in by_cost.items():
            frames.append(pl.DataFrame({"period": [period] * len(ts), "ts": ts, "strategy": [name] * len(ts),
                                        "cost_bps": [float(key.removesuffix("bps"))] * len(ts), "pnl": pnl,
                                        "equity": accounting.wealth(pnl)},
                                       schema_overrides={"period": pl.String, "strategy": pl.String}))
    return pl.concat(frames)
