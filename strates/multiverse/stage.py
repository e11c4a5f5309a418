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
   bifurcation index and the futures' readings follow (`crossing`; `futures.path_readings`):
   the Lyapunov proxy per bar (and per second of the bar interval), the perturbation
   sensitivity and the modes of universe 0's futures. The decision noise floor: M re-seeded
   copies of universe 0 (σ = 0, fresh futures noise and planner numbers); their flip rate is
   what bifurcation must exceed.
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

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from strates.agent import artifact as agent_artifact
from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.errors import ArtifactNotFound, ConfigError
from strates.core.progress import Reporter
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.multiverse import artifact
from strates.multiverse.artifact import (
    GATED,
    METRICS,
    READINGS,
    Crossed,
    DecisionTimes,
    Distribution,
    Distributions,
    Metrics,
    NoiseFloor,
    Replay,
    Summary,
    Verdict,
)
from strates.multiverse.config import DEFAULT_PRESET, PRESETS, Config
from strates.multiverse.futures import path_readings

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def _summaries(decider, x, obs, *, hc: int, sigma: float):
    """Per state, from raw futures `x [B, U, N, F]` and the unperturbed observation
    `obs [B, D + k + 1]`: the Lyapunov proxy per bar [B] and the sensitivity [B]
    (`futures.path_readings`), and quantiles of the unperturbed universe's cumulative
    returns [B, H_cfm, 5]."""
    import jax.numpy as jnp

    lyap, sens = path_readings(x, state_dim=decider.state_dim, horizon=hc, sigma=sigma)
    cum = jnp.cumsum(decider.returns_of(x[:, 0], obs), axis=-1)  # [B, N, H_cfm]
    fans = jnp.moveaxis(jnp.quantile(cum, jnp.array(QUANTILES), axis=1), 0, -1)
    return lyap, sens, fans


def decision_bars(valid: np.ndarray, budget: int) -> np.ndarray:
    """Clock indices of the decision times: every bar with a valid asset, or `budget` of
    them evenly spaced over the whole period when there are more (`budget` 0: all)."""
    live = np.nonzero(valid.any(1))[0]
    if not budget or len(live) <= budget:
        return live
    return live[np.unique(np.round(np.linspace(0, len(live) - 1, budget)).astype(int))]


def cross(decider, h: np.ndarray, config: Config, *, walk_key, deterministic, bars: np.ndarray
          ) -> dict[str, np.ndarray]:
    """Multiverse Crossing at the decision times `bars [C]` of the observations
    `h [T, A, D + k + 1]` (`cfm.scale`: the JEPA state, the scale features, the unit), around the
    agent's walk `deterministic` (a `Walk` drawn with `walk_key`). Returns per (decision
    time, asset): actions `[C, A, U]`, directions, majority, consensus, bifurcation, flip
    (the noise floor's flip rate), lyapunov_per_bar, sensitivity, modes `[C, A]`, fan quantiles
    `[C, A, H_cfm, 5]` and `universe0 [C, A]` (universe 0 recomputed in the batch, to check
    the replay)."""
    import jax
    import jax.numpy as jnp

    from strates.multiverse import crossing

    a_len, d, width = h.shape[1], decider.state_dim, h.shape[2]
    m, u = config.universes, config.universes + 1
    pc = decider.config.planner
    n, f, hp = decider.futures_per_state, decider.x_dim, pc.horizon
    chunk = max(1, int(24e6 // (a_len * (u + m) * n * f)))
    summarise = jax.jit(lambda x, o: _summaries(decider, x, o, hc=decider.cfm_horizon, sigma=config.sigma))
    perturb = jax.jit(jax.vmap(lambda hb, k: crossing.perturb(hb, key=k, m=m, sigma=config.sigma)))
    k_perturb, k_floor = jax.random.split(jax.random.key(config.seed))
    c_len = len(bars)
    actions = np.zeros((c_len, a_len, u), np.float32)
    flips = np.zeros((c_len, a_len), np.float32)
    modes = np.ones((c_len, a_len), np.float64)
    lyap = np.zeros((c_len, a_len), np.float64)
    sens = np.zeros((c_len, a_len), np.float64)
    fans = np.zeros((c_len, a_len, decider.cfm_horizon, len(QUANTILES)), np.float32)
    for s in range(0, c_len, chunk):
        real = min(chunk, c_len - s)
        c = chunk if c_len > chunk else real  # one shape for every chunk: the last is padded, compiled once
        bc = np.concatenate([bars[s:s + real], np.full(c - real, bars[s + real - 1])])
        keys = jax.vmap(lambda t: jax.random.fold_in(k_perturb, t))(jnp.asarray(bc))
        hb = jnp.asarray(h[bc], jnp.float32)  # [c, A, D + k + 1]
        uu = perturb(hb[..., :d], keys)  # [c, A, U, D]: only the JEPA state is perturbed; the observed scale stays
        ou = jnp.concatenate([uu, jnp.broadcast_to(hb[:, :, None, d:], (*uu.shape[:3], width - d))], axis=-1)
        noise = decider.bar_noise(walk_key, bc, a_len)  # universe 0's noise, shared by every universe
        hf = np.repeat(h[bc], m, axis=1)  # the noise floor: M copies of universe 0 per asset [c, A*M, D + k + 1]
        # one draw for the universes [c*A*U] and the floor copies [c*A*M] (fresh noise)
        o_all = jnp.concatenate([ou.reshape(-1, width), jnp.asarray(hf.reshape(-1, width))])
        x_all = decider.draw(o_all, jnp.concatenate([jnp.repeat(noise, u, axis=0),
                                                     decider.bar_noise(k_floor, bc, a_len * m)]))
        r_all, end_all = decider.planning_inputs(x_all, o_all)
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
        xu = x.reshape(c * a_len, u, n, f)
        l_, s_, f_ = summarise(xu, hb.reshape(c * a_len, width))
        modes[s:s + real] = crossing.modes(np.asarray(xu[:, 0])).reshape(c, a_len)[:real]
        lyap[s:s + real] = np.asarray(l_).reshape(c, a_len)[:real]
        sens[s:s + real] = np.asarray(s_).reshape(c, a_len)[:real]
        fans[s:s + real] = np.asarray(f_).reshape(c, a_len, *f_.shape[1:])[:real]
    universe0 = actions[:, :, 0].copy()
    actions[:, :, 0] = deterministic.actions[bars]  # universe 0 is the agent's own decision, exactly
    dirs = crossing.directions(jnp.asarray(actions), band=config.band)
    majority, consensus = crossing.vote(dirs)
    return {"actions": actions, "directions": np.asarray(dirs), "majority": np.asarray(majority),
            "consensus": np.asarray(consensus), "bifurcation": np.asarray(crossing.bifurcation(dirs)),
            "flip": flips, "lyapunov_per_bar": lyap, "sensitivity": sens, "modes": modes, "fans": fans,
            "universe0": universe0}


def latest_reading(bars: np.ndarray, t_len: int) -> np.ndarray:
    """For each bar of the clock, the index into `bars` of the latest decision time at or
    before it, or -1 before the first: `[T]`."""
    return np.searchsorted(bars, np.arange(t_len), side="right") - 1


def build(job: template.Job[Config]) -> template.Output:
    """Cross the agent's test period (see the module docstring)."""
    import jax

    from strates.agent import backtest
    from strates.agent.bootstrap import paired_difference
    from strates.agent.trials import census
    from strates.jepa.artifact import embed
    from strates.multiverse import crossing

    config, ws, rep = job.config, job.ws, job.reporter
    am = agent_artifact.read(job.parent("agent"))
    b = am.backtest("test" if any(p.name == "test" for p in am.periods) else am.periods[0].name)
    artifacts.check_disjoint(job.upstream(), b.span.start, b.span.end, period=b.name)
    dataset = data_artifact.read(job.parent("dataset"))
    with rep.task("embedding every bar with the JEPA"):
        states = embed(ws, job.parent("jepa")).states
    decider = agent_artifact.load_decider(ws, am)
    observed = agent_artifact.observations(ws, am, states)  # h_t, the scale features, the unit (what the flows read)
    ts, h, valid, r_next, _ = backtest.clock(observed, b.span, am.config.backtest.max_bars)  # the backtest's own clock
    walk_key = jax.random.key(b.seed)
    if am.has_walk:  # the agent's own walk through the test period, as its backtest took it
        det, returns, values = agent_artifact.load_walk(ws, am)
        if det.positions.shape != valid.shape:
            raise ArtifactNotFound(f"{am.ref}/{agent_artifact.WALK} holds {det.positions.shape} bars x assets, the "
                                   f"test clock {valid.shape}", fix=f"re-run `chaos train-agent --force` for {am.ref}")
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
    # two independent scans of small batches: each keeps about one core busy, so they run
    # side by side (measured 7.7 s instead of 16.5 s on 2 cores); results are unchanged
    with rep.task("walking the filtered and consensus-sized policies from their own positions"), \
            ThreadPoolExecutor(2) as pool:
        jobs = [pool.submit(decider.walk, h, valid, returns, values, key=walk_key, hold=held),
                pool.submit(decider.walk, h, valid, returns, values, key=walk_key, scale=sized_by)]
        filtered, sized = (j.result() for j in jobs)
    strategies = {"deterministic": det.positions, "filtered": filtered.positions, "sized": sized.positions}
    ppy = dataset.summary.periods_per_year
    tried = census(ws, dataset.id, candidate=job.id, chain={kind: m.id for kind, m in job.parents.items()},
                   extra=GATED)
    trials = max(am.summary.n_trials, tried.n_trials)
    rows, pnls = backtest.evaluate(strategies, r_next, valid, cost_levels=config.cost_levels, periods_per_year=ppy,
                                   n_trials=dict.fromkeys(strategies, trials), trial_sharpes=tried.sharpes)
    verdicts = tuple(Verdict(policy, float(cost), paired_difference(
        pnls[policy][cost], pnls["deterministic"][cost], periods_per_year=ppy, replicates=config.bootstrap,
        seed=config.seed)) for cost in pnls["deterministic"] for policy in GATED)
    job.writer.write_parquet("decisions.parquet", _decisions_frame(b.name, ts[bars], states, ok, out, contested,
                                                                    r_next[bars]))
    job.writer.write_parquet("fans.parquet", _fans_frame(ts[bars], states, ok, out["fans"]))
    job.writer.write_parquet("equity.parquet", backtest.equity_frame(b.name, ts, pnls))
    last = np.nonzero(ok.any(1))[0]
    any_ok = bool(ok.any())
    flip = float(out["flip"][ok].mean()) if any_ok else 0.0
    bifurcation = float(out["bifurcation"][ok].mean()) if any_ok else 0.0
    first_t, last_t = (_utc(ts[bars[0]]), _utc(ts[bars[-1]])) if len(bars) else (b.span.start, b.span.start)
    interval = float(dataset.summary.interval_seconds)
    mean = {m: float(out[m][ok].mean()) if any_ok else 0.0 for m in READINGS}
    metrics = Metrics(
        universes=config.universes, sigma=config.sigma, futures=decider.futures_per_state,
        horizon=decider.cfm_horizon, threshold=config.threshold, period=Crossed(b.name, b.span, len(ts)),
        decision_times=DecisionTimes(count=len(bars), of_bars=len(ts), every=bool(len(bars) == int(valid.any(1).sum())),
                                     first=first_t, last=last_t),
        decisions=int(ok.sum()), contested=int(contested.sum()),
        contested_share=float(contested[ok].mean()) if any_ok else 0.0,
        interval_seconds=interval, lyapunov_per_bar=mean["lyapunov_per_bar"],
        lyapunov_per_time=mean["lyapunov_per_bar"] / interval,
        lyapunov_floor=crossing.lyapunov_floor(config.sigma, decider.cfm_horizon),
        sensitivity=mean["sensitivity"], modes=mean["modes"],
        contested_assets_last=tuple(states[a].asset for a in np.nonzero(contested[last[-1]])[0]) if len(last) else (),
        distribution=Distributions(**{m: Distribution.of(out[m][ok]) for m in METRICS}),
        noise_floor=NoiseFloor(copies=config.universes, flip_rate=flip, bifurcation=bifurcation,
                               above_floor=bifurcation - flip if any_ok else 0.0),
        replay=Replay(universe0_batch_max_abs_diff=float(np.abs(out["universe0"] - det.actions[bars])[ok].max())
                      if any_ok else 0.0,
                      max_abs_diff_backtest=_replay_gap(ws, am, b.name, ts, states, valid, det.positions)),
        comparison=rows, verdict=verdicts,
    )
    summary = Summary(agent=am.ref, planner=am.config.planner.kind, band=config.band, periods_per_year=ppy,
                      n_trials=trials, trials=tried.trials(),
                      absent=tuple(s.asset for s, p in zip(states, valid.any(0), strict=True) if not p))
    return template.Output(to_dict(metrics), to_dict(summary))


def _prepare(config: Config, parents) -> Config:
    """The agent draws its own N futures: `futures` is for the futures alone."""
    del parents
    if config.futures:
        raise ConfigError(f"futures={config.futures} sets N for the futures alone; crossing an agent draws the "
                          "agent's own N futures (its planner.futures)", field="futures",
                          fix="drop --set futures (or the bench preset), or cross the futures alone with "
                              "--futures-only / --cfm")
    return config


STAGE: template.Stage[Config] = template.Stage(
    kind=artifact.KIND, command=artifact.COMMAND, config=Config, build=build,
    parents=("agent", "cfm", "jepa", "tokens", "dataset"), presets=PRESETS, default_preset=DEFAULT_PRESET,
    prepare=_prepare,
)


def run(config: Config, ws: Workspace, *, agent: str | artifacts.Manifest = "latest", force: bool = False,
        reporter: Reporter | None = None) -> template.Result:
    """Cross the agent artifact `agent` (a reference or a manifest): decisions and futures.
    For the futures alone (no agent), see `futures.run_futures`."""
    return template.run(STAGE, config, ws, parents={"agent": agent}, force=force, reporter=reporter)


def _utc(t) -> dt.datetime:
    """A numpy datetime64 (naive UTC) as an aware datetime."""
    return t.astype("datetime64[us]").item().replace(tzinfo=dt.UTC)


def _replay_gap(ws: Workspace, am: agent_artifact.Agent, period: str, ts, states, valid, positions
                ) -> float | None:
    """Largest |difference| between the walk and the agent's positions file on the period
    (None when the file lacks the period)."""
    import polars as pl

    frame = agent_artifact.load_positions(ws, am, period=period)
    if not frame.height:
        return None
    t, a = np.nonzero(valid)
    mine = pl.DataFrame({"ts": ts[t], "asset": [states[j].asset for j in a],
                         "mine": positions[t, a].astype(np.float64)}, schema_overrides={"asset": pl.String})
    joined = mine.join(frame.select("ts", "asset", "position"), on=["ts", "asset"], how="left")
    if joined["position"].null_count():
        return None
    return float(np.abs(joined["mine"].to_numpy() - joined["position"].to_numpy()).max())


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
        rows.extend(pl.DataFrame({
            "ts": ts[t], "asset": [s.asset] * len(t), "step": np.full(len(t), k + 1, np.int32),
            **{f"q{int(q * 100):02d}": fans[t, j, k, i].astype(np.float64) for i, q in enumerate(QUANTILES)},
            "realized": realised[:, k],
        }, schema_overrides={"asset": pl.String}) for k in range(hc))
    return pl.concat(rows).sort("asset", "ts", "step")
