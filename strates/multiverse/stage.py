"""`chaos multiverse`: Multiverse Crossing over the agent's evaluation period.

1. Universe 0 is the agent's own walk through the test period: read from the agent
   artifact (`walk-test.npz`, with its planning inputs), or replayed with the random streams
   of its backtest for an older agent. The manifest records the largest difference from the
   agent's positions file (0), and, at the decision times, from universe 0 recomputed in the
   batch with the same streams (float rounding of a wider batch).
2. Decision times: every bar of the test period, or, when that would not fit the budget
   (`max_bars`), that many bars evenly spaced over the whole period.
3. At each decision time, per asset: M geodesic perturbations of the JEPA state
   (`crossing.perturb`), N futures per universe drawn with universe 0's noise (common
   random numbers), and a decision per universe planned from the position and warm plan
   the agent held, with the agent's planner random numbers at that bar. Consensus,
   bifurcation index, effective number of future modes and the Lyapunov proxy follow
   (`crossing`). The decision noise floor: M re-seeded copies of universe 0 (σ = 0, fresh
   futures noise and planner numbers); their flip rate is what bifurcation must exceed.
4. The claim is tested on every bar of the period: the deterministic policy (the agent)
   against a filtered one (no trade while the latest reading says contested: the position
   is held) and a consensus-sized one (position x the latest reading's consensus). Both are
   walked from their own positions and plans (costs consistent), not overlaid on the
   agent's. A reading stands until the next decision time. Verdict: a paired stationary
   block bootstrap of the per-bar return difference (`agent.bootstrap`) at each cost; the
   filter is "shown" to help only when the 95% interval of the Sharpe difference excludes 0.

Artifact `multiverse` (parents: agent, cfm, jepa, tokens, dataset): `decisions.parquet`
(per asset and decision time), `fans.parquet` (quantiles of the unperturbed universe's
cumulative returns against the realised path), `equity.parquet` (every bar); the
distribution of each metric, the noise floor, the contested count, the comparison and the
verdicts in the manifest.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from strates.core import artifacts
from strates.core.errors import ArtifactNotFound
from strates.core.config import to_dict
from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace
from strates.multiverse.config import Config

STAGE = "multiverse"
METRICS = ("consensus", "bifurcation", "effective_modes", "lyapunov")
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclasses.dataclass(frozen=True)
class Result:
    manifest: artifacts.Manifest
    reused: bool


def load_decider(ws: Workspace, agent: artifacts.Manifest):
    """The agent artifact's trained agent with its cfm's flows, as a `Decider`."""
    import jax

    from strates.agent import model
    from strates.agent.config import Config as AgentConfig
    from strates.agent.policy import Decider
    from strates.cfm.stage import load_flows
    from strates.core.checkpoints import restore_params
    from strates.core.config import from_dict

    config = from_dict(AgentConfig, agent.config)
    cfm = artifacts.resolve(ws, agent.parents["cfm"], stage="cfm")
    flows, scales = load_flows(ws, cfm)
    abstract = jax.eval_shape(lambda: model.init(jax.random.key(0), config.model, state_dim=int(scales["state_dim"])))
    rel = f"{agent.stage}/{agent.id}/checkpoints"
    params = restore_params(ws.local_path(rel) or ws.uri(rel), abstract)
    return Decider(config, params, flows, ret_scale=float(scales["ret_scale"]), cfm_horizon=int(scales["horizon"]),
                   state_dim=int(scales["state_dim"]))


def _summaries(decider, x, universes, *, hc: int):
    """Per state, from raw futures `x [B, U, N, F]` and the universes' states
    `universes [B, U, D]`: effective modes [B], Lyapunov proxy [B], and quantiles of the
    unperturbed universe's cumulative returns [B, H_cfm, 5]."""
    import jax.numpy as jnp

    from strates.multiverse import crossing

    d = decider.state_dim
    states = x[..., : hc * d].reshape(*x.shape[:-1], hc, d)
    states = states / jnp.maximum(jnp.linalg.norm(states, axis=-1, keepdims=True), 1e-12)
    modes = crossing.effective_modes(x.mean(2))
    mean_states = states.mean(2)  # the extrinsic mean on the sphere: averaged, then projected back onto it
    mean_states = mean_states / jnp.maximum(jnp.linalg.norm(mean_states, axis=-1, keepdims=True), 1e-12)
    lyap = crossing.lyapunov(universes, mean_states)
    cum = jnp.cumsum(x[:, 0, :, hc * d:] * decider.ret_scale, axis=-1)  # [B, N, H_cfm]
    fans = jnp.moveaxis(jnp.quantile(cum, jnp.array(QUANTILES), axis=1), 0, -1)
    return modes, lyap, fans


def decision_bars(valid: np.ndarray, budget: int) -> np.ndarray:
    """Clock indices of the decision times: every bar with a valid asset, or `budget` of
    them evenly spaced over the whole period when there are more (`budget` 0: all)."""
    live = np.nonzero(valid.any(1))[0]
    if not budget or len(live) <= budget:
        return live
    return live[np.unique(np.round(np.linspace(0, len(live) - 1, budget)).astype(int))]


def cross(decider, h: np.ndarray, config: Config, *, walk_key, deterministic, bars: np.ndarray
          ) -> dict[str, np.ndarray]:
    """Multiverse Crossing at the decision times `bars [C]` of `h [T, A, D]`, around the
    agent's walk `deterministic` (a `Walk` drawn with `walk_key`). Returns per (decision
    time, asset): actions `[C, A, U]`, directions, majority, consensus, bifurcation, flip
    (the noise floor's flip rate), effective_modes, lyapunov `[C, A]`, fan quantiles
    `[C, A, H_cfm, 5]` and `universe0 [C, A]` (universe 0 recomputed in the batch, to check
    the replay)."""
    import jax
    import jax.numpy as jnp

    from strates.multiverse import crossing

    a_len, d = h.shape[1], h.shape[2]
    m, u = config.universes, config.universes + 1
    pc = decider.config.planner
    n, f, hp = decider.futures_per_state, decider.x_dim, pc.horizon
    chunk = max(1, int(24e6 // (a_len * (u + m) * n * f)))
    summarise = jax.jit(lambda x, uu: _summaries(decider, x, uu, hc=decider.cfm_horizon))
    perturb = jax.jit(jax.vmap(lambda hb, k: crossing.perturb(hb, key=k, m=m, sigma=config.sigma)))
    k_perturb, k_floor = jax.random.split(jax.random.key(config.seed))
    c_len = len(bars)
    actions = np.zeros((c_len, a_len, u), np.float32)
    flips = np.zeros((c_len, a_len), np.float32)
    modes = np.ones((c_len, a_len), np.float32)
    lyap = np.zeros((c_len, a_len), np.float32)
    fans = np.zeros((c_len, a_len, decider.cfm_horizon, len(QUANTILES)), np.float32)
    for s in range(0, c_len, chunk):
        real = min(chunk, c_len - s)
        c = chunk if c_len > chunk else real  # one shape for every chunk: the last is padded, compiled once
        bc = np.concatenate([bars[s:s + real], np.full(c - real, bars[s + real - 1])])
        keys = jax.vmap(lambda t: jax.random.fold_in(k_perturb, t))(jnp.asarray(bc))
        uu = perturb(jnp.asarray(h[bc], jnp.float32), keys)  # [c, A, U, D]
        noise = decider.bar_noise(walk_key, bc, a_len)  # universe 0's noise, shared by every universe
        hf = np.repeat(h[bc], m, axis=1)  # the noise floor: M copies of universe 0 per asset [c, A*M, D]
        # one draw for the universes [c*A*U] and the floor copies [c*A*M] (fresh noise)
        x_all = decider.draw(jnp.concatenate([uu.reshape(-1, d), jnp.asarray(hf.reshape(-1, d))]),
                             jnp.concatenate([jnp.repeat(noise, u, axis=0), decider.bar_noise(k_floor, bc, a_len * m)]))
        r_all, end_all = decider.planning_inputs(x_all)
        v_all = decider.values(end_all)
        k = c * a_len * u
        x, r, v, rf, vf = x_all[:k], r_all[:k], v_all[:k], r_all[k:], v_all[k:]
        before = np.repeat(deterministic.before[bc], u, axis=1)  # [c, A*U]: asset-major, universes inner
        warm = np.repeat(deterministic.warm[bc], u, axis=1)
        act = decider.decide_at(uu.reshape(c, a_len * u, d), before, warm, r.reshape(c, a_len * u, n, hp),
                                v.reshape(c, a_len * u, n, -1), key=walk_key, bars=bc, shared=u)
        actions[s:s + real] = act.reshape(c, a_len, u)[:real]
        # the floor copies decide with fresh planner numbers too
        copies = decider.decide_at(hf, np.repeat(deterministic.before[bc], m, axis=1),
                                   np.repeat(deterministic.warm[bc], m, axis=1), rf.reshape(c, a_len * m, n, hp),
                                   vf.reshape(c, a_len * m, n, -1), key=jax.random.fold_in(k_floor, 1), bars=bc,
                                   shared=1).reshape(c, a_len, m)
        d0 = crossing.directions(jnp.asarray(deterministic.actions[bc]), band=config.band)
        flips[s:s + real] = np.asarray(crossing.bifurcation(jnp.concatenate(
            [d0[..., None], crossing.directions(jnp.asarray(copies), band=config.band)], axis=-1)))[:real]
        m_, l_, f_ = summarise(x.reshape(c * a_len, u, n, f), uu.reshape(c * a_len, u, d))
        modes[s:s + real] = np.asarray(m_).reshape(c, a_len)[:real]
        lyap[s:s + real] = np.asarray(l_).reshape(c, a_len)[:real]
        fans[s:s + real] = np.asarray(f_).reshape(c, a_len, *f_.shape[1:])[:real]
    universe0 = actions[:, :, 0].copy()
    actions[:, :, 0] = deterministic.actions[bars]  # universe 0 is the agent's own decision, exactly
    dirs = crossing.directions(jnp.asarray(actions), band=config.band)
    majority, consensus = crossing.vote(dirs)
    return {"actions": actions, "directions": np.asarray(dirs), "majority": np.asarray(majority),
            "consensus": np.asarray(consensus), "bifurcation": np.asarray(crossing.bifurcation(dirs)),
            "flip": flips, "effective_modes": modes, "lyapunov": lyap, "fans": fans, "universe0": universe0}


def latest_reading(bars: np.ndarray, t_len: int) -> np.ndarray:
    """For each bar of the clock, the index into `bars` of the latest decision time at or
    before it, or -1 before the first: `[T]`."""
    return np.searchsorted(bars, np.arange(t_len), side="right") - 1


def distribution(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "p05": float(q[0]), "p25": float(q[1]), "p50": float(q[2]), "p75": float(q[3]), "p95": float(q[4]),
            "max": float(values.max())}


def run(config: Config, ws: Workspace, *, agent: str = "latest", force: bool = False,
        reporter: Reporter | None = None) -> Result:
    import jax

    from strates.agent import backtest
    from strates.agent.bootstrap import paired_difference
    from strates.agent.config import Config as AgentConfig
    from strates.agent.stage import WALK, Period, clock, equity_frame, load_walk, periods_per_year, walk_seed
    from strates.agent.trials import census
    from strates.cfm.data import load_states
    from strates.core.config import from_dict

    rep = reporter or NullReporter()
    am = artifacts.resolve(ws, agent, stage="agent")
    parents = {"agent": am.id, **{k: am.parents[k] for k in ("cfm", "jepa", "tokens", "dataset")}}
    resolved = to_dict(config)
    aid, existing = artifacts.lookup(ws, STAGE, resolved, parents, force=force)
    if existing is not None:
        return Result(existing, True)
    name = "test" if "test" in am.metrics["backtest"] else next(iter(am.metrics["backtest"]))
    span = am.metrics["backtest"][name]
    period = Period(name, span["start"], span["end"])
    artifacts.check_disjoint([am, *artifacts.ancestors(ws, am)], period.start, period.end, period=name)
    t0 = time.perf_counter()
    jm = artifacts.resolve(ws, am.parents["jepa"], stage="jepa")
    with rep.task("embedding every bar with the JEPA"):
        states, _, dataset = load_states(ws, jm)
    decider = load_decider(ws, am)
    agent_config = from_dict(AgentConfig, am.config)
    ts, h, valid, r_next, _ = clock(states, period, agent_config.backtest.max_bars)  # the backtest's own clock
    walk_key = jax.random.key(int(span.get("seed", walk_seed(agent_config, 0))))
    if WALK in am.files:  # the agent's own walk through the test period, as its backtest took it
        det, returns, values = load_walk(ws, am)
        if det.positions.shape != valid.shape:
            raise ArtifactNotFound(f"{am.ref}/{WALK} holds {det.positions.shape} bars x assets, the test clock "
                                   f"{valid.shape}", fix=f"re-run `chaos train-agent --force` for {am.ref}")
    else:  # an agent built before walks were saved: replay it with its backtest's random streams
        with rep.task(f"replaying the agent's walk: {len(ts)} bars x {len(states)} assets"):
            returns, values = decider.inputs(h, key=walk_key)
            det = decider.walk(h, valid, returns, values, key=walk_key)
    bars = decision_bars(valid, config.max_bars)
    u = config.universes + 1
    with rep.task(f"crossing {len(bars)} of {len(ts)} bars x {len(states)} assets x {u} universes "
                  f"(+ {config.universes} noise-floor copies) x {decider.futures_per_state} futures"):
        out = cross(decider, h, config, walk_key=walk_key, deterministic=det, bars=bars)
    ok = valid[bars]
    contested = (out["consensus"] < config.threshold) & ok
    reading = latest_reading(bars, len(ts))
    seen = reading >= 0
    held = np.where(seen[:, None], contested[np.maximum(reading, 0)], False) & valid
    sized_by = np.where(seen[:, None], out["consensus"][np.maximum(reading, 0)], 1.0)
    with rep.task("walking the filtered and consensus-sized policies from their own positions"):
        # two independent scans of small batches: each keeps about one core busy, so they run
        # side by side (measured 7.7 s instead of 16.5 s on 2 cores); results are unchanged
        with ThreadPoolExecutor(2) as pool:
            jobs = [pool.submit(decider.walk, h, valid, returns, values, key=walk_key, hold=held),
                    pool.submit(decider.walk, h, valid, returns, values, key=walk_key, scale=sized_by)]
            filtered, sized = (j.result() for j in jobs)
    strategies = {"deterministic": det.positions, "filtered": filtered.positions, "sized": sized.positions}
    ppy = periods_per_year(dataset)
    tried = census(ws, parents["dataset"], candidate=aid, chain=parents, extra=("filtered", "sized"))
    trials = max(int(am.summary.get("n_trials", 1)), tried.n_trials)
    table, pnls = backtest.evaluate(strategies, r_next, valid, cost_levels=config.cost_levels, periods_per_year=ppy,
                                    n_trials={"deterministic": trials, "filtered": trials, "sized": trials},
                                    trial_sharpes=tried.sharpes)
    verdicts = {key: {policy: paired_difference(pnls[policy][key], pnls["deterministic"][key], periods_per_year=ppy,
                                                replicates=config.bootstrap, seed=config.seed).to_dict()
                      for policy in ("filtered", "sized")}
                for key in pnls["deterministic"]}
    writer = artifacts.begin(ws, STAGE, aid)
    try:
        writer.write_parquet("decisions.parquet", _decisions_frame(name, ts[bars], states, ok, out, contested,
                                                                    r_next[bars]))
        writer.write_parquet("fans.parquet", _fans_frame(ts[bars], states, ok, out["fans"]))
        writer.write_parquet("equity.parquet", equity_frame(name, ts, pnls))
        last = np.nonzero(ok.any(1))[0]
        replay = _replay_gap(ws, am, name, ts, states, valid, det.positions)
        metrics: dict[str, Any] = {
            "universes": config.universes, "sigma": config.sigma, "futures": decider.futures_per_state,
            "threshold": config.threshold,
            "period": {"name": name, "start": period.start, "end": period.end, "bars": len(ts)},
            "decision_times": {"count": len(bars), "of_bars": len(ts), "every": bool(len(bars) == int(valid.any(1).sum())),
                               "first": _utc(ts[bars[0]]) if len(bars) else period.start,
                               "last": _utc(ts[bars[-1]]) if len(bars) else period.start},
            "decisions": int(ok.sum()), "contested": int(contested.sum()),
            "contested_share": float(contested[ok].mean()) if ok.any() else 0.0,
            "contested_assets_last": [states[a].asset for a in np.nonzero(contested[last[-1]])[0]] if len(last) else [],
            "distribution": {m: distribution(out[m][ok]) for m in METRICS},
            "noise_floor": {"copies": config.universes, "flip_rate": float(out["flip"][ok].mean()) if ok.any() else 0.0,
                            "bifurcation": float(out["bifurcation"][ok].mean()) if ok.any() else 0.0,
                            "above_floor": float(out["bifurcation"][ok].mean() - out["flip"][ok].mean())
                            if ok.any() else 0.0},
            "replay": {"max_abs_diff_backtest": replay,
                       "universe0_batch_max_abs_diff": float(np.abs(out["universe0"] - det.actions[bars])[ok].max())
                       if ok.any() else 0.0},
            "comparison": table, "verdict": verdicts, "seconds": round(time.perf_counter() - t0, 2),
        }
        summary = {"agent": am.ref, "planner": decider.config.planner.kind, "band": config.band,
                   "periods_per_year": ppy, "n_trials": trials, "trials": tried.to_dict(),
                   "absent": [s.asset for s, p in zip(states, valid.any(0), strict=True) if not p],
                   "definitions": "DESIGN.md, Canonical definitions; strates/multiverse/crossing.py"}
        manifest = writer.commit(config=resolved, parents=parents, metrics=metrics, summary=summary)
    except BaseException:
        writer.abort()
        raise
    return Result(manifest, False)


def _utc(t: np.datetime64):
    import datetime as dt

    return t.astype("datetime64[us]").item().replace(tzinfo=dt.UTC)


def _replay_gap(ws: Workspace, am: artifacts.Manifest, period: str, ts, states, valid, positions) -> float | None:
    """Largest |difference| between the replayed walk and the agent's positions file on the
    period (None when the file lacks the period)."""
    import io

    import polars as pl

    frame = pl.read_parquet(io.BytesIO(ws.read_bytes(f"{am.stage}/{am.id}/positions.parquet")))
    frame = frame.filter((pl.col("period") == period) & (pl.col("strategy") == "agent"))
    if not frame.height:
        return None
    t, a = np.nonzero(valid)
    mine = pl.DataFrame({"ts": ts[t], "asset": [states[j].asset for j in a], "mine": positions[t, a].astype(np.float64)},
                        schema_overrides={"asset": pl.String})
    joined = mine.join(frame.select("ts", "asset", "position"), on=["ts", "asset"], how="left")
    if joined["position"].null_count():
        return None
    return float((joined["mine"] - joined["position"]).abs().max())


def _decisions_frame(period, ts, states, ok, out, contested, r_next):
    import polars as pl

    t, a = np.nonzero(ok)
    return pl.DataFrame({
        "period": [period] * len(t), "ts": ts[t], "asset": [states[j].asset for j in a],
        "position": out["actions"][t, a, 0].astype(np.float64),
        **{m: out[m][t, a].astype(np.float64) for m in METRICS}, "flip": out["flip"][t, a].astype(np.float64),
        "contested": contested[t, a], "direction": out["directions"][t, a, 0].astype(np.int8),
        "majority": out["majority"][t, a].astype(np.int8), "next_return": r_next[t, a],
    }, schema_overrides={"period": pl.String, "asset": pl.String})


def _fans_frame(ts, states, ok, fans):
    import polars as pl

    hc = fans.shape[2]
    rows = []
    for j, s in enumerate(states):
        t = np.nonzero(ok[:, j])[0]
        idx = np.searchsorted(s.ts, ts[t])
        steps = idx[:, None] + np.arange(1, hc + 1)
        inside = steps < len(s.r)
        realised = np.where(inside, s.r[np.minimum(steps, len(s.r) - 1)], np.nan).cumsum(1)
        for k in range(hc):
            rows.append(pl.DataFrame({
                "ts": ts[t], "asset": [s.asset] * len(t), "step": np.full(len(t), k + 1, np.int32),
                **{f"q{int(q * 100):02d}": fans[t, j, k, i].astype(np.float64) for i, q in enumerate(QUANTILES)},
                "realized": realised[:, k],
            }, schema_overrides={"asset": pl.String}))
    return pl.concat(rows).sort("asset", "ts", "step")
