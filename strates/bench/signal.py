"""`chaos bench signal`: plant an edge of known strength and measure what each stage recovers.

For each strength kappa of the grid (`Config.kappas`):
1. the embedded market with the edge planted (`chaos ingest --signal kappa`: the next bar's
   log return gets kappa sigma_t g(s_t), `strates.data.embedded`, "Planted edge"), and the
   oracle that knows g (in the dataset's manifest);
2. the whole pipeline on it (`strates.pipeline.run`, the chain preset and overrides of the
   config): tokenize, train-jepa, train-cfm, train-agent, multiverse. Every artifact is an
   ordinary artifact of the workspace, reused when the market and the chain are unchanged;
3. what each stage recovered (`measure`):
   - JEPA: linear probes of the planted drift from h_t (and, for reference, from the raw
     features), fitted on the training period and scored on the bars that chose nothing
     (the diagnostic part of validation and the test period), and of the next bar's sign;
   - CFM: the CRPS skill of the return futures against the random walk and the bootstrap
     (the cfm artifact's test period, with its intervals), and the correlation of the
     futures' mean next-bar return (the agent's planning inputs on the test period) with the
     planted drift;
   - agent: Sharpe after costs, DSR, and capture = agent Sharpe / oracle Sharpe on the same
     test bars, with intervals from a paired stationary block bootstrap;
   - multiverse: the contested share, the bifurcation above its noise floor, and the
     filtered - deterministic Sharpe difference with its interval.
The `bench-signal` artifact (no parents: it makes its own datasets) holds `kappas.parquet`
and, in the manifest, each kappa's row and the trends over the grid.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from strates.bench import signal_artifact as artifact
from strates.bench.signal_artifact import CostRow, KappaResult, SignalBench
from strates.bench.signal_config import DEFAULT_PRESET, PRESETS, Config
from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.errors import InvalidInput
from strates.core.progress import Reporter
from strates.core.workspace import Workspace


def chain(kappa: float, config: Config, ws: Workspace, *, reporter: Reporter) -> dict[str, artifacts.Manifest]:
    """The market of strength `kappa` through ingest -> ... -> multiverse with the config's
    chain; returns {stage kind: manifest}."""
    from strates import pipeline
    from strates.data.config import Config as IngestConfig
    from strates.data.embedded import EmbeddedSpec

    market = EmbeddedSpec(signal=kappa, assets=config.assets, bars=config.bars)
    runs = pipeline.run(ws, presets=[config.chain], ingest_config=IngestConfig(embedded=market),
                        overrides=config.overrides(), until="multiverse", reporter=reporter)
    return {r.stage: artifacts.resolve(ws, r.ref, stage=r.stage) for r in runs}


# -- the test clock ---------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Clock:
    """The agent's test period on a common clock: bar times `ts [T]`, assets `[A]` (the
    agent's order), `valid [T, A]`, the agent's positions and the next bar's log returns
    `[T, A]`, and the planted g at each (bar, asset) (0 where nothing is planted)."""

    ts: np.ndarray
    assets: tuple[str, ...]
    valid: np.ndarray
    positions: np.ndarray
    r_next: np.ndarray
    g: np.ndarray


def _wide(frame, ts: np.ndarray, assets: tuple[str, ...], column: str) -> np.ndarray:
    out = np.zeros((len(ts), len(assets)))
    t = np.searchsorted(ts, frame["ts"].to_numpy())
    a = np.array([assets.index(x) for x in frame["asset"].to_list()], dtype=np.int64)
    out[t, a] = frame[column].to_numpy()
    return out


def walk_clock(ws: Workspace, agent: artifacts.Manifest, signal, assets: tuple[str, ...]) -> Clock:
    """The agent's test walk (`positions.parquet`, strategy agent) on its clock, assets in
    the agent's order `assets` (its JEPA's: the order of its saved walk), joined with the
    planted edge (`signal`: `asset, ts, g, drift`, or None for an unplanted market)."""
    import polars as pl

    from strates.agent.artifact import load_positions

    rows = load_positions(ws, agent, period="test")
    if rows.is_empty():
        raise InvalidInput(f"{agent.ref} has no backtest of the test period", rule="missing-period",
                           fix="rebuild the agent with the test period among its backtests")
    ts = np.unique(rows["ts"].to_numpy())
    if signal is not None:
        rows = rows.join(signal.select("asset", "ts", "g"), on=["asset", "ts"], how="left")
    else:
        rows = rows.with_columns(pl.lit(0.0).alias("g"))
    rows = rows.with_columns(pl.col("g").fill_null(0.0))
    valid = _wide(rows.with_columns(pl.lit(1.0).alias("one")), ts, assets, "one") > 0
    return Clock(ts, assets, valid, _wide(rows, ts, assets, "position"), _wide(rows, ts, assets, "next_return"),
                 _wide(rows, ts, assets, "g"))


# -- the stages' readings ---------------------------------------------------------------------
def _spearman(x, y) -> float:
    """Spearman's rank correlation over the pairs where both are finite (heavy tails and
    volatility clusters do not dominate it); NaN with fewer than 3 pairs or no variation."""
    from scipy.stats import spearmanr

    a, b = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan
    return float(spearmanr(a[ok], b[ok]).statistic)  # pyright: ignore[reportAttributeAccessIssue]


def jepa_probes(ws: Workspace, jepa: artifacts.Manifest, states, signal) -> tuple[dict[str, float], dict[str, dict]]:
    """Linear probes from h_t and from the raw features at t of the planted drift in units
    of sigma_t, kappa g(s_t) (the drift itself, kappa sigma_t g, moves mostly with the
    volatility level, which is not the edge): ridge R² and the correlation of its
    predictions with the truth, the logistic accuracy of its sign (beside the majority
    rate), and the sign of the next bar's log return from h_t. Fitted on the JEPA's training
    period, scored on the bars that chose nothing: the diagnostic part of validation and
    the test period (g moves slowly, half-lives of 96 and 192 bars: the diagnostic part
    alone holds a handful of its swings per asset). The first `loss.ctx_min` bars of an
    asset and its last bar are left out. The drift probes are NaN without a planted edge.

    `states`: the JEPA's states of every bar (`jepa.artifact.embed`), in its asset order.
    Returns (the readings, the ridge's prediction of g at every bar: {"h" | "raw": {asset:
    (ts, prediction)}}, empty without a planted edge) for `probe_policies`."""
    import polars as pl

    from strates.jepa import artifact as jepa_artifact
    from strates.jepa.data import load_sequences
    from strates.jepa.probe import logistic_accuracy, period_rows, ridge_predict

    j = jepa_artifact.read(jepa)
    tokens = artifacts.resolve(ws, jepa.parents["tokens"], stage="tokens")
    sequences, _, dataset = load_sequences(ws, tokens)  # the raw features beside the states
    hs = [st.h for st in states]
    fold = dataset.fold(j.summary.fold)
    spans = {"train": (fold.train,), "scored": (j.summary.diagnostic, fold.test)}
    parts: dict[str, dict[str, list[np.ndarray]]] = {p: {k: [] for k in ("h", "raw", "g", "up")} for p in spans}
    inputs = []
    for s, h in zip(sequences, hs, strict=True):
        inputs.append((s.asset, s.ts, {"h": np.asarray(h), "raw": np.asarray(s.features)}))
        g = np.zeros(len(s.ts))
        if signal is not None:
            mine = signal.filter(pl.col("asset") == s.asset).select("ts", "g")
            pos = np.searchsorted(s.ts, mine["ts"].to_numpy())
            ok = (pos < len(s.ts)) & (s.ts[np.minimum(pos, len(s.ts) - 1)] == mine["ts"].to_numpy())
            g[pos[ok]] = mine["g"].to_numpy()[ok]
        up = np.append(s.log_returns[1:] > 0, False).astype(np.float64)  # the sign of bar t+1's return
        for name, periods in spans.items():
            mask = np.zeros(len(s.ts), bool)
            for span in periods:
                mask |= period_rows(s.ts, span.start, span.end, horizon=1, skip=j.config.loss.ctx_min)
            for key, values in (("h", h), ("raw", s.features), ("g", g), ("up", up)):
                parts[name][key].append(np.asarray(values)[mask])
    cat = {p: {k: np.concatenate(v) for k, v in d.items()} for p, d in parts.items()}
    tr, te = cat["train"], cat["scored"]
    out = {"jepa_sign_accuracy": logistic_accuracy(tr["h"], tr["up"], te["h"], te["up"]),
           "drift_majority_rate": math.nan}
    planted = signal is not None and np.ptp(tr["g"]) > 0 and np.ptp(te["g"]) > 0
    if planted:
        out["drift_majority_rate"] = float(max((te["g"] > 0).mean(), (te["g"] <= 0).mean()))
    predictions: dict[str, dict] = {}
    for name in ("h", "raw"):
        label = "jepa" if name == "h" else "raw"
        r2 = corr = sign = math.nan
        if planted:
            predictions[name] = {asset: (ts, ridge_predict(tr[name], tr["g"], x[name])) for asset, ts, x in inputs}
            pred = ridge_predict(tr[name], tr["g"], te[name])
            r2 = float(1.0 - ((te["g"] - pred) ** 2).sum() / ((te["g"] - te["g"].mean()) ** 2).sum())
            corr = float(np.corrcoef(pred, te["g"])[0, 1]) if np.ptp(pred) > 0 else math.nan
            sign = logistic_accuracy(tr[name], (tr["g"] > 0).astype(np.float64), te[name],
                                     (te["g"] > 0).astype(np.float64))
        out.update({f"{label}_drift_r2": r2, f"{label}_drift_corr": corr, f"{label}_drift_sign_accuracy": sign})
    return out, predictions


def probe_policies(clock: Clock, predictions: dict[str, dict], *, cost_bps: float, periods_per_year: float
                   ) -> dict[str, float]:
    """The Sharpe after `cost_bps` on the agent's test bars of the oracle's policy run on a
    probe's prediction of g instead of g (`clip(prediction / SIGNAL_SCALE, -1, 1)`): what a
    linear read of h_t (`jepa_probe_sharpe`), or of the raw features
    (`raw_probe_sharpe`), would earn. A ceiling of what the representation offers the
    stages after it, below the oracle's: NaN without a planted edge."""
    from strates.agent.backtest import portfolio_returns
    from strates.core.accounting import sharpe
    from strates.data.embedded import SIGNAL_SCALE

    out = {"jepa_probe_sharpe": math.nan, "raw_probe_sharpe": math.nan}
    for name, label in (("h", "jepa"), ("raw", "raw")):
        if name not in predictions:
            continue
        wide = np.zeros(clock.valid.shape)
        for j, asset in enumerate(clock.assets):
            ts, pred = predictions[name][asset]
            pos = np.searchsorted(ts, clock.ts)
            ok = (pos < len(ts)) & (ts[np.minimum(pos, len(ts) - 1)] == clock.ts)
            wide[ok, j] = pred[pos[ok]]
        held = np.clip(wide / SIGNAL_SCALE, -1.0, 1.0)
        out[f"{label}_probe_sharpe"] = sharpe(portfolio_returns(held, clock.r_next, clock.valid, cost_bps=cost_bps),
                                              periods_per_year=periods_per_year)
    return out


def cfm_readings(ws: Workspace, cfm: artifacts.Manifest, agent: artifacts.Manifest, clock: Clock) -> dict:
    """The cfm's CRPS skill on the test period at its longest horizon (against the random
    walk and the bootstrap, with intervals), and the correlation over the test (bar, asset)
    of the futures' mean next-bar log return (the agent's saved planning inputs) with the
    planted drift, beside that of the realised next return."""
    from strates.agent.artifact import load_walk
    from strates.cfm import artifact as cfm_artifact

    c = cfm_artifact.read(cfm)
    test = c.metrics.period("test")
    out: dict = {"cfm_horizon": 0}
    for b in ("random_walk", "bootstrap"):
        out.update({f"cfm_skill_{b}": math.nan, f"cfm_skill_{b}_lo": math.nan, f"cfm_skill_{b}_hi": math.nan})
    if test is not None and test.skill:
        key = max(test.skill, key=lambda k: int(k.lstrip("h")))
        out["cfm_horizon"] = int(key.lstrip("h"))
        for b in ("random_walk", "bootstrap"):
            s = test.skill[key].get(b)
            if s is not None:
                out.update({f"cfm_skill_{b}": s.value, f"cfm_skill_{b}_lo": s.lo, f"cfm_skill_{b}_hi": s.hi})
    walk = load_walk(ws, agent)
    if walk.returns.shape[:2] != clock.valid.shape:
        raise InvalidInput(f"{agent.ref}'s saved walk has {walk.returns.shape[:2]} (bars, assets) where its test "
                           f"positions have {clock.valid.shape}", rule="walk-mismatch",
                           fix=f"rebuild the agent: chaos train-agent --force ({agent.ref})")
    first = walk.returns[..., 0]  # [T, A, N]: the futures' next-bar log returns
    edge = first.mean(axis=2) / np.maximum(first.std(axis=2), 1e-12)  # their expected return per unit of spread
    v = clock.valid
    out["cfm_drift_corr"] = _spearman(edge[v], clock.g[v])  # NaN without a planted edge: g does not vary
    out["realized_drift_corr"] = _spearman(clock.r_next[v], clock.g[v])
    return out


def _slope(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """OLS slope of y on x with its normal 95% interval (NaN when x does not vary). Noise in
    y (a sampled mean, a realised return) widens the interval but does not bias the slope."""
    if len(x) < 3 or np.ptp(x) == 0:
        return math.nan, math.nan, math.nan
    xc = x - x.mean()
    b = float(xc @ (y - y.mean()) / (xc @ xc))
    resid = y - y.mean() - b * xc
    se = math.sqrt(float(resid @ resid) / (len(x) - 2) / float(xc @ xc))
    return b, b - 1.96 * se, b + 1.96 * se


def flow_drift(ws: Workspace, cfm: artifacts.Manifest, states, clock: Clock, *, kappa: float,
               config: Config) -> dict[str, float]:
    """How much of the planted drift the flow's futures carry, free of the sampling noise of
    the agent's few futures: at up to `flow_states` (bar, asset) of the test clock, evenly
    spaced, `flow_futures` futures each from the main flow (the agent's inputs: h_t and the
    scale features); the slope of their mean next-bar return (in units of sigma_t, the
    flow's own unit) on the planted drift in the same unit, kappa g_t. 1: the flow's mean
    moves with the drift one for one; 0: not at all. Beside it the same slope of the
    realised next return (about 1 by construction: the drift is in the returns, measured
    with the noise of the test period). `states`: the JEPA's (`jepa.artifact.embed`). NaN
    without a planted edge."""
    out: dict[str, float] = dict.fromkeys(("cfm_drift_slope", "cfm_drift_slope_lo", "cfm_drift_slope_hi",
                                           "realized_drift_slope", "realized_drift_slope_lo",
                                           "realized_drift_slope_hi"), math.nan)
    if kappa <= 0:
        return out
    import jax

    from strates.cfm import artifact as cfm_artifact
    from strates.cfm.sample import sample_jit

    c = cfm_artifact.read(cfm)
    flows, scales = cfm_artifact.load_flows(ws, c)
    observed = {s.asset: s for s in scales.observe(states)}
    obs = np.zeros((*clock.valid.shape, scales.cond_dim + 1), np.float32)
    for j, asset in enumerate(clock.assets):
        s = observed[asset]
        pos = np.searchsorted(s.ts, clock.ts)
        ok = (pos < len(s.ts)) & (s.ts[np.minimum(pos, len(s.ts) - 1)] == clock.ts)
        obs[ok, j] = s.h[pos[ok]]
    t_idx, a_idx = np.nonzero(clock.valid)
    sigma = np.exp(obs[t_idx, a_idx, -1].astype(np.float64))
    y = kappa * clock.g[t_idx, a_idx]
    out.update(zip(("realized_drift_slope", "realized_drift_slope_lo", "realized_drift_slope_hi"),
                   _slope(y, clock.r_next[t_idx, a_idx] / sigma), strict=True))
    pick = np.unique(np.linspace(0, len(t_idx) - 1, min(config.flow_states, len(t_idx))).round().astype(np.int64))
    cond = obs[t_idx[pick], a_idx[pick], :scales.cond_dim]
    first = scales.horizon * scales.state_dim  # x = [H states of D dims, H returns in units of sigma_t]
    means = []
    chunk = 64
    for i in range(0, len(pick), chunk):
        x = sample_jit(flows[0], cond[i:i + chunk], key=jax.random.key(config.seed + i), n=config.flow_futures,
                       nfe=c.config.sample.nfe, method=str(c.config.sample.method))
        means.append(np.asarray(x[..., first]).mean(axis=1))
    out.update(zip(("cfm_drift_slope", "cfm_drift_slope_lo", "cfm_drift_slope_hi"),
                   _slope(y[pick], np.concatenate(means)), strict=True))
    return out


def capture(agent: np.ndarray, oracle: np.ndarray, *, periods_per_year: float, replicates: int, level: float,
            seed: int) -> dict[str, float]:
    """The agent's and the oracle's annualised Sharpe with their intervals, and the capture =
    agent Sharpe / oracle Sharpe with its interval, from the per-bar returns of both on the same bars: a
    paired stationary block bootstrap (both resampled on the same bars; mean block length by
    Politis & White on the agent's returns), percentile intervals at `level`. The capture
    is NaN when the oracle's Sharpe is not above 0 (nothing to capture); its interval is
    unbounded when more replicates than the interval's tail have no oracle Sharpe above 0."""
    from strates.agent.bootstrap import _sharpe_rows, optimal_block_length, stationary_indices
    from strates.core.accounting import sharpe

    agent, oracle = np.asarray(agent, np.float64), np.asarray(oracle, np.float64)
    root = math.sqrt(periods_per_year)
    a_s, o_s = sharpe(agent, periods_per_year=periods_per_year), sharpe(oracle, periods_per_year=periods_per_year)
    q = [(1 - level) / 2, (1 + level) / 2]
    idx = stationary_indices(len(agent), block=optimal_block_length(agent), replicates=replicates,
                             rng=np.random.default_rng(seed))
    sa, so = _sharpe_rows(agent[idx]) * root, _sharpe_rows(oracle[idx]) * root
    a_lo, a_hi = (float(x) for x in np.quantile(sa, q))
    o_lo, o_hi = (float(x) for x in np.quantile(so, q))
    c = c_lo = c_hi = math.nan
    if o_s > 0:
        c = a_s / o_s
        ratio = np.where(so > 0, sa / np.where(so > 0, so, 1.0), np.nan)
        if np.isnan(ratio).mean() <= (1 - level) / 2:
            c_lo, c_hi = (float(x) for x in np.nanquantile(ratio, q))
        else:
            c_lo, c_hi = -math.inf, math.inf
    return {"agent_sharpe": a_s, "agent_sharpe_lo": a_lo, "agent_sharpe_hi": a_hi, "oracle_sharpe_lo": o_lo,
            "oracle_sharpe_hi": o_hi, "capture": c, "capture_lo": c_lo, "capture_hi": c_hi}


def agent_readings(clock: Clock, agent: artifacts.Manifest, *, kappa: float, periods_per_year: float,
                   config: Config) -> tuple[dict, dict[float, tuple[float, float, float]]]:
    """The agent's and the oracle's Sharpe after costs on the same test bars, the agent's DSR
    (its artifact's), and the capture with intervals at the headline cost. Returns (the
    headline fields, {cost: (agent Sharpe, DSR, oracle Sharpe)})."""
    from strates.agent import artifact as agent_artifact
    from strates.agent.backtest import portfolio_returns
    from strates.core import accounting
    from strates.data.embedded import oracle_positions

    a = agent_artifact.read(agent)
    test = next((b for b in a.metrics.backtest if b.name == "test"), None)
    if test is None:
        raise InvalidInput(f"{agent.ref} has no backtest of the test period", rule="missing-period",
                           fix="rebuild the agent with the test period among its backtests")
    levels = sorted({r.cost_bps for r in test.rows})
    if config.cost_bps not in levels:
        raise InvalidInput(f"the headline cost {config.cost_bps:g} bps is not one of {agent.ref}'s cost levels "
                           f"({', '.join(f'{c:g}' for c in levels)})", rule="cost-level",
                           fix="give cost_bps one of them (--set cost_bps=5), or the agent that cost level")
    oracle = oracle_positions(clock.g, kappa)
    per_cost: dict[float, tuple[float, float, float]] = {}
    pnl: dict[str, np.ndarray] = {}
    for c in levels:
        mine = portfolio_returns(clock.positions, clock.r_next, clock.valid, cost_bps=c)
        known = portfolio_returns(oracle, clock.r_next, clock.valid, cost_bps=c)
        row = agent_artifact.find(test.rows, "agent", c)
        per_cost[c] = (accounting.sharpe(mine, periods_per_year=periods_per_year), row.dsr,
                       accounting.sharpe(known, periods_per_year=periods_per_year))
        if c == config.cost_bps:
            pnl = {"agent": mine, "oracle": known}
    _, dsr, oracle_s = per_cost[config.cost_bps]
    n = len(pnl["agent"])
    got = capture(pnl["agent"], pnl["oracle"], periods_per_year=periods_per_year, replicates=config.replicates,
                  level=config.level, seed=config.seed)
    return {"oracle_sharpe": oracle_s, "dsr": dsr, "test_bars": n, **got}, per_cost


def multiverse_readings(multiverse: artifacts.Manifest, cost_bps: float) -> tuple[dict, dict[float, tuple]]:
    """The contested share, the bifurcation above its noise floor, and the filtered -
    deterministic verdict at the headline cost; and {cost: verdict difference}."""
    from strates.multiverse import artifact as mv_artifact

    mv = mv_artifact.read(multiverse)
    per_cost = {v.cost_bps: (v.difference.sharpe_diff, v.difference.sharpe_lo, v.difference.sharpe_hi,
                             v.difference.sharpe_lo > 0)
                for v in mv.metrics.verdict if v.policy == "filtered"}
    head = per_cost.get(float(cost_bps), (math.nan, math.nan, math.nan, False))
    return ({"contested_share": mv.metrics.contested_share,
             "bifurcation_above_floor": mv.metrics.noise_floor.above_floor,
             "filter_delta_sharpe": head[0], "filter_delta_lo": head[1], "filter_delta_hi": head[2],
             "filter_helps": head[3]}, per_cost)


def measure(ws: Workspace, kappa: float, runs: dict[str, artifacts.Manifest], config: Config, *,
            seconds: float = 0.0) -> KappaResult:
    """What each stage of the chain `runs` ({kind: manifest}) recovered of the edge of
    strength `kappa`."""
    from strates.data import artifact as data_artifact
    from strates.data.ingest import load_signal
    from strates.jepa import artifact as jepa_artifact

    dataset = data_artifact.read(runs["dataset"])
    signal = load_signal(ws, runs["dataset"]) if kappa > 0 else None
    if signal is not None:  # the agent's and the JEPA's bar times are naive UTC
        import polars as pl

        signal = signal.with_columns(pl.col("ts").dt.replace_time_zone(None))
    planted = dataset.summary.signal
    clock = walk_clock(ws, runs["agent"], signal, jepa_artifact.read(runs["jepa"]).summary.assets)
    head, per_cost = agent_readings(clock, runs["agent"], kappa=kappa,
                                    periods_per_year=dataset.summary.periods_per_year, config=config)
    mv_head, mv_cost = multiverse_readings(runs["multiverse"], config.cost_bps)
    states = jepa_artifact.embed(ws, runs["jepa"]).states  # once: the probes and the flow read them
    probes, predictions = jepa_probes(ws, runs["jepa"], states, signal)
    probes.update(probe_policies(clock, predictions, cost_bps=config.cost_bps,
                                 periods_per_year=dataset.summary.periods_per_year))
    probes.update(flow_drift(ws, runs["cfm"], states, clock, kappa=kappa, config=config))
    none = (math.nan, math.nan, math.nan, False)
    ppy = dataset.summary.periods_per_year
    costs = tuple(CostRow(cost_bps=c, agent_sharpe=s, dsr=d, oracle_sharpe=o,
                          **probe_policies(clock, predictions, cost_bps=c, periods_per_year=ppy),
                          filter_delta_sharpe=mv_cost.get(c, none)[0], filter_delta_lo=mv_cost.get(c, none)[1],
                          filter_delta_hi=mv_cost.get(c, none)[2], filter_helps=bool(mv_cost.get(c, none)[3]))
                  for c, (s, d, o) in per_cost.items())
    discovery = any(r.dsr >= artifact.DSR_BAR for r in costs)
    return KappaResult(
        kappa=float(kappa),
        oracle_sharpe_dataset=planted.oracle_sharpe("test", config.cost_bps) if planted is not None else 0.0,
        **probes,
        **cfm_readings(ws, runs["cfm"], runs["agent"], clock),
        **head, **mv_head,
        discovery=discovery, costs=costs,
        dataset=runs["dataset"].ref, agent=runs["agent"].ref, multiverse=runs["multiverse"].ref,
        seconds=round(seconds, 2))


def build(job: template.Job[Config]) -> template.Output:
    from strates.data.embedded import SIGNAL_DEFINITION
    from strates.data.summary import ORACLE_POLICY

    config, ws, rep = job.config, job.ws, job.reporter
    rows: list[KappaResult] = []
    for i, kappa in enumerate(config.kappas):
        rep.info(f"[{i + 1}/{len(config.kappas)}] κ = {kappa:g}: the planted market through the pipeline "
                 f"({config.chain} chain)")
        t0 = time.perf_counter()
        runs = chain(kappa, config, ws, reporter=rep)
        with rep.task(f"κ = {kappa:g}: measuring what each stage recovered"):
            rows.append(measure(ws, kappa, runs, config, seconds=time.perf_counter() - t0))
        k = rows[-1]
        rep.info(f"κ = {kappa:g}: oracle Sharpe {k.oracle_sharpe:.2f}, agent {k.agent_sharpe:.2f} (DSR {k.dsr:.2f}), "
                 f"capture {k.capture:.2f}, contested share {k.contested_share:.2f} ({k.seconds:.0f} s)")
    null = next((k for k in rows if k.kappa == 0), None)
    metrics = artifact.Metrics(
        kappas=tuple(rows),
        null_false_discovery=None if null is None else bool(null.discovery or any(c.filter_helps for c in null.costs)),
        capture_trend=_spearman([k.kappa for k in rows], [k.capture for k in rows]),
        contested_trend=_spearman([k.kappa for k in rows], [k.contested_share for k in rows]))
    job.writer.write_parquet(artifact.KAPPAS_FILE, _frame(rows))
    summary = artifact.Summary(edge=SIGNAL_DEFINITION, oracle_policy=ORACLE_POLICY, chain=config.chain,
                               sets=config.sets, cost_bps=config.cost_bps, replicates=config.replicates,
                               level=config.level)
    return template.Output(to_dict(metrics), to_dict(summary))


def _frame(rows: list[KappaResult]):
    import polars as pl

    return pl.DataFrame([{k: v for k, v in dataclasses.asdict(r).items() if k != "costs"} for r in rows])


STAGE: template.Stage[Config] = template.Stage(
    kind=artifact.KIND, command=artifact.COMMAND, config=Config, build=build, parents=(), presets=PRESETS,
    default_preset=DEFAULT_PRESET)


def run(config: Config, ws: Workspace, *, force: bool = False, reporter: Reporter | None = None) -> template.Result:
    """Run the benchmark (module docstring) with the compilation cache on; `force` rebuilds
    the bench artifact (each kappa's chain is reused when unchanged)."""
    from strates.bench.lyapunov import compilation_cache

    compilation_cache()
    return template.run(STAGE, config, ws, parents={}, force=force, reporter=reporter)


def read(manifest: artifacts.Manifest) -> SignalBench:
    return SignalBench.read(manifest)
