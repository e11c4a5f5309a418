"""`chaos multiverse`: Multiverse Crossing over the agent's evaluation period.

For each asset and decision time: the unperturbed JEPA state and M geodesic perturbations
of it (`crossing.perturb`), N futures per universe from Strate III with the same noise in
every universe, a decision per universe from Strate IV (`Decider.walk`: every universe
plans from the position the deterministic policy holds, with the same MPPI random numbers),
then consensus, bifurcation index, effective number of future modes and the Lyapunov proxy
(`crossing`). The seeds' claim is then tested: the deterministic policy (universe 0) is
backtested against a multiverse-filtered one (no trade while contested: the position is
held) and a consensus-sized one (position x consensus) on the same bars and costs.

Artifact `multiverse` (parents: agent, cfm, jepa, tokens, dataset): `decisions.parquet`
(per asset and time), `fans.parquet` (quantiles of the unperturbed universe's cumulative
returns against the realised path), `equity.parquet`; the distribution of each metric,
the contested count and the comparison in the manifest.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from strates.core import artifacts
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


def load_decider(ws: Workspace, agent: artifacts.Manifest, *, futures: int = 0):
    """The agent artifact's trained agent with its cfm's flows, as a `Decider`
    (`futures > 0` overrides the agent's N futures per state)."""
    import jax

    from strates.agent import model
    from strates.agent.config import Config as AgentConfig
    from strates.agent.policy import Decider
    from strates.cfm.stage import load_flows
    from strates.core.checkpoints import restore_params
    from strates.core.config import from_dict

    config = from_dict(AgentConfig, agent.config)
    if futures:
        config = dataclasses.replace(config, planner=dataclasses.replace(config.planner, futures=futures))
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


def cross(decider, h: np.ndarray, valid: np.ndarray, config: Config, *, key, reporter: Reporter | None = None
          ) -> dict[str, np.ndarray]:
    """Multiverse Crossing of `h [T, A, D]` (valid `[T, A]`) -> per (t, asset): actions
    `[T, A, U]`, directions, majority, consensus, bifurcation, effective_modes, lyapunov
    `[T, A]`, and fan quantiles `[T, A, H_cfm, 5]`. Consumes `key`."""
    import jax
    import jax.numpy as jnp

    from strates.multiverse import crossing

    t_len, a_len, d = h.shape
    u = config.universes + 1
    pc = decider.config.planner
    n, f = decider.futures_per_state, decider.x_dim
    per_step = a_len * u * n * f
    chunk = max(1, int(24e6 // per_step))
    summarise = jax.jit(lambda x, uu: _summaries(decider, x, uu, hc=decider.cfm_horizon))
    universes = np.zeros((t_len, a_len, u, d), np.float32)
    returns = np.zeros((t_len, a_len, u, n, pc.horizon), np.float32)
    values = np.zeros((t_len, a_len, u, n, pc.value_grid), np.float32)
    modes = np.ones((t_len, a_len), np.float32)
    lyap = np.zeros((t_len, a_len), np.float32)
    fans = np.zeros((t_len, a_len, decider.cfm_horizon, len(QUANTILES)), np.float32)
    k_perturb, k_noise, k_walk = jax.random.split(key, 3)
    for s in range(0, t_len, chunk):
        c = min(chunk, t_len - s)
        uu = crossing.perturb(jnp.asarray(h[s:s + c]), key=jax.random.fold_in(k_perturb, s), m=config.universes,
                              sigma=config.sigma)  # [c, A, U, D]
        noise = decider.noise(jax.random.fold_in(k_noise, s), c * a_len)  # shared across universes
        x = decider.draw(uu.reshape(-1, d), jnp.repeat(noise, u, axis=0))  # [c*A*U, N, F]
        r, end = decider.planning_inputs(x)
        universes[s:s + c] = np.asarray(uu)
        returns[s:s + c] = np.asarray(r).reshape(c, a_len, u, n, pc.horizon)
        values[s:s + c] = np.asarray(decider.values(end)).reshape(c, a_len, u, n, pc.value_grid)
        m_, l_, f_ = summarise(x.reshape(c * a_len, u, n, f), uu.reshape(c * a_len, u, d))
        modes[s:s + c], lyap[s:s + c] = np.asarray(m_).reshape(c, a_len), np.asarray(l_).reshape(c, a_len)
        fans[s:s + c] = np.asarray(f_).reshape(c, a_len, *f_.shape[1:])
    actions = decider.walk(universes, valid, returns, values, key=k_walk)  # [T, A, U]
    dirs = crossing.directions(jnp.asarray(actions), band=config.band)
    majority, consensus = crossing.vote(dirs)
    return {"actions": actions, "directions": np.asarray(dirs), "majority": np.asarray(majority),
            "consensus": np.asarray(consensus), "bifurcation": np.asarray(crossing.bifurcation(dirs)),
            "effective_modes": modes, "lyapunov": lyap, "fans": fans}


def filtered_positions(deterministic: np.ndarray, contested: np.ndarray) -> np.ndarray:
    """Trade only where not contested: `[T, A]` -> `[T, A]`; while contested the position
    held before is kept (no trade), starting flat."""
    out = np.zeros_like(deterministic)
    prev = np.zeros(deterministic.shape[1])
    for t in range(len(deterministic)):
        prev = np.where(contested[t], prev, deterministic[t])
        out[t] = prev
    return out


def distribution(values: np.ndarray) -> dict[str, float]:
    q = np.quantile(values, [0.05, 0.25, 0.5, 0.75, 0.95])
    return {"mean": float(values.mean()), "std": float(values.std()), "min": float(values.min()),
            "p05": float(q[0]), "p25": float(q[1]), "p50": float(q[2]), "p75": float(q[3]), "p95": float(q[4]),
            "max": float(values.max())}


def run(config: Config, ws: Workspace, *, agent: str = "latest", force: bool = False,
        reporter: Reporter | None = None) -> Result:
    import jax

    from strates.agent import backtest
    from strates.agent import metrics as perf
    from strates.agent.stage import Period, clock, equity_frame
    from strates.cfm.data import load_states

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
    decider = load_decider(ws, am, futures=config.futures)
    ts, h, valid, r_next, _ = clock(states, period, config.max_bars)
    u = config.universes + 1
    with rep.task(f"crossing {len(ts)} bars x {len(states)} assets x {u} universes x "
                  f"{decider.futures_per_state} futures"):
        out = cross(decider, h, valid, config, key=jax.random.key(config.seed))
    deterministic = out["actions"][:, :, 0]
    contested = out["consensus"] < config.threshold
    strategies = {"deterministic": deterministic, "filtered": filtered_positions(deterministic, contested),
                  "sized": deterministic * out["consensus"]}
    ppy = perf.annual_factor(float(dataset.summary["interval_seconds"]))
    trials = int(am.summary.get("n_trials", 1))
    table, pnls = backtest.evaluate(strategies, r_next, valid, cost_levels=config.cost_levels, periods_per_year=ppy,
                                    n_trials={"deterministic": trials, "filtered": trials + 2, "sized": trials + 2})
    writer = artifacts.begin(ws, STAGE, aid)
    try:
        writer.write_parquet("decisions.parquet", _decisions_frame(name, ts, states, valid, out, strategies, r_next,
                                                                    contested))
        writer.write_parquet("fans.parquet", _fans_frame(ts, states, valid, out["fans"]))
        writer.write_parquet("equity.parquet", equity_frame(name, ts, pnls))
        ok = valid.astype(bool)
        last = np.nonzero(ok.any(1))[0]
        metrics: dict[str, Any] = {
            "universes": config.universes, "sigma": config.sigma, "futures": decider.futures_per_state,
            "threshold": config.threshold, "period": {"name": name, "start": period.start, "end": period.end,
                                                      "bars": len(ts)},
            "decisions": int(ok.sum()), "contested": int(contested[ok].sum()),
            "contested_share": float(contested[ok].mean()) if ok.any() else 0.0,
            "contested_assets_last": [states[a].asset for a in np.nonzero(contested[last[-1]] & ok[last[-1]])[0]]
            if len(last) else [],
            "distribution": {m: distribution(out[m][ok]) for m in METRICS},
            "comparison": table, "seconds": round(time.perf_counter() - t0, 2),
        }
        summary = {"agent": am.ref, "planner": decider.config.planner.kind, "band": config.band,
                   "definitions": "DESIGN.md, Canonical definitions; strates/multiverse/crossing.py"}
        manifest = writer.commit(config=resolved, parents=parents, metrics=metrics, summary=summary)
    except BaseException:
        writer.abort()
        raise
    return Result(manifest, False)


def _decisions_frame(period, ts, states, valid, out, strategies, r_next, contested):
    import polars as pl

    t, a = np.nonzero(valid)
    return pl.DataFrame({
        "period": [period] * len(t), "ts": ts[t], "asset": [states[j].asset for j in a],
        "position": strategies["deterministic"][t, a].astype(np.float64),
        **{m: out[m][t, a].astype(np.float64) for m in METRICS},
        "contested": contested[t, a], "direction": out["directions"][t, a, 0].astype(np.int8),
        "majority": out["majority"][t, a].astype(np.int8),
        "position_filtered": strategies["filtered"][t, a].astype(np.float64),
        "position_sized": strategies["sized"][t, a].astype(np.float64), "next_return": r_next[t, a],
    })


def _fans_frame(ts, states, valid, fans):
    import polars as pl

    hc = fans.shape[2]
    rows = []
    for j, s in enumerate(states):
        t = np.nonzero(valid[:, j])[0]
        idx = np.searchsorted(s.ts, ts[t])
        steps = idx[:, None] + np.arange(1, hc + 1)
        inside = steps < len(s.r)
        realised = np.where(inside, s.r[np.minimum(steps, len(s.r) - 1)], np.nan).cumsum(1)
        for k in range(hc):
            rows.append(pl.DataFrame({
                "ts": ts[t], "asset": [s.asset] * len(t), "step": np.full(len(t), k + 1, np.int32),
                **{f"q{int(q * 100):02d}": fans[t, j, k, i].astype(np.float64) for i, q in enumerate(QUANTILES)},
                "realized": realised[:, k],
            }))
    return pl.concat(rows).sort("asset", "ts", "step")

