"""`chaos multiverse --futures-only` (or `--cfm`): Multiverse Crossing of a cfm's futures
alone, with no agent and no decisions: what non-market series need.

1. The period is the fold's test period (the cfm's evaluation period), refused if any
   upstream artifact was fitted or selected on it (`artifacts.check_disjoint`).
2. Decision times, per asset: its bars in the period with a full scale window behind them
   (`cfm.scale`), or `max_bars` of them evenly spaced over the period (0: all).
3. At each, M geodesic perturbations of the JEPA state (`crossing.perturb`; the scale
   features stay), and N futures per universe drawn by the cfm's flows with its own ODE
   method and evaluations, every universe integrating universe 0's noise (common random
   numbers; with K ensemble members the N futures are split evenly across them).
4. The readings (`crossing`): the Lyapunov proxy per bar (pathwise divergence on the
   sphere of the future JEPA states) and per second of the bar interval, the perturbation
   sensitivity at the last step, and the modes of universe 0's futures.

Random streams: decision (asset a, time t) perturbs with `fold_in(fold_in(k_perturb, a), t)`
and draws noise from `fold_in(fold_in(k_noise, a), t)` (both split from `config.seed`), so
a reading does not depend on how the work is batched. Nothing here reads OHLC bars or an
agent: a series dataset crosses the same way.

Artifact `multiverse-futures` (parents: cfm, jepa, tokens, dataset): `readings.parquet`
(per asset and decision time) and the typed `FuturesMetrics` / `FuturesSummary` of
`artifact.py`.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.errors import InvalidInput
from strates.core.progress import Reporter
from strates.core.workspace import Workspace
from strates.multiverse import artifact
from strates.multiverse.artifact import (
    READINGS,
    AssetReadings,
    Crossed,
    Distribution,
    FuturesDistributions,
    FuturesMetrics,
    FuturesSummary,
)
from strates.multiverse.config import DEFAULT_PRESET, PRESETS, Config

CHUNK_FLOATS = 8e6  # futures held at once (decisions x universes x futures x future dims)


def path_readings(x, *, state_dim: int, horizon: int, sigma: float):
    """From the universes' raw futures `x [B, U, N, H * (D + 1)]` (the cfm's layout: H
    future JEPA states scaled by sqrt(D), then H returns): the Lyapunov proxy per bar `[B]`
    (geodesic pathwise divergence of the future states, d(0) = σ) and the perturbation
    sensitivity `[B]` of the future states at the last step, on the sphere. Numpy or jax."""
    from strates.multiverse import crossing

    states = crossing.unit(x[..., : horizon * state_dim].reshape(*x.shape[:-1], horizon, state_dim))
    return crossing.lyapunov(states, d0=sigma), crossing.sensitivity(states[..., -1, :])


def evenly(index: np.ndarray, budget: int) -> np.ndarray:
    """`budget` of the sorted indices `index`, evenly spaced from the first to the last
    (all of them when there are no more, or `budget` is 0)."""
    if not budget or len(index) <= budget:
        return index
    return index[np.unique(np.round(np.linspace(0, len(index) - 1, budget)).astype(int))]


class Sampler:
    """A cfm's flows (`cfm.artifact.load_flows`) drawing N futures per condition: with K
    members, futures k·n .. (k + 1)·n - 1 (n = ceil(N / K)) come from member k, every member
    integrating its share of one state's noise; `nfe` evaluations of the ODE `method`
    (`cfm.sample`). The flows enter compiled code as arguments (`graphs` static, `states`
    traced), so flows of the same architecture share one compilation."""

    def __init__(self, flows: list, *, futures: int, nfe: int, method: str):
        from flax import nnx

        split = [nnx.split(f) for f in flows]
        self.graphs = tuple(g for g, _ in split)
        self.states = tuple(s for _, s in split)
        self.n_per_member = -(-futures // len(flows))
        self.futures = self.n_per_member * len(flows)
        self.x_dim = int(flows[0].x_dim)
        self.nfe, self.method = nfe, str(method)


@dataclasses.dataclass(frozen=True)
class _Static:
    """What a chunk of the crossing is compiled for."""

    graphs: tuple
    n_per_member: int
    nfe: int
    method: str
    universes: int
    state_dim: int
    horizon: int


def _chunk(states, obs, assets, times, sigma, k_perturb, k_noise, *, static: _Static):
    """One chunk of decisions: `obs [c, D + k + 1]`, `assets [c]`, `times [c]` -> λ per bar
    `[c]`, sensitivity `[c]` and universe 0's raw futures `[c, N, x_dim]`."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from strates.cfm.model import source
    from strates.cfm.sample import sample_from
    from strates.multiverse import crossing

    m, u, d, n = static.universes, static.universes + 1, static.state_dim, static.n_per_member
    flows = [nnx.merge(g, s) for g, s in zip(static.graphs, states, strict=True)]

    def key(base, a, t):
        return jax.random.fold_in(jax.random.fold_in(base, a), t)

    uu = jax.vmap(lambda h, a, t: crossing.perturb(h, key=key(k_perturb, a, t), m=m, sigma=sigma))(
        obs[:, :d], assets, times)  # [c, U, D]: only the JEPA state moves; the scale features stay
    cond = jnp.concatenate([uu, jnp.broadcast_to(obs[:, None, d:-1], (*uu.shape[:2], obs.shape[-1] - 1 - d))], -1)
    cond = cond.reshape(-1, cond.shape[-1])  # [c * U, D + k]
    shape = (n * len(flows), flows[0].x_dim)
    noise = jax.vmap(lambda a, t: source(key(k_noise, a, t), shape, flows[0]))(assets, times)  # universe 0's
    noise = jnp.repeat(noise, u, axis=0)  # shared by every universe of a decision
    x = jnp.concatenate([sample_from(f, noise[:, k * n:(k + 1) * n], cond, nfe=static.nfe, method=static.method)
                         for k, f in enumerate(flows)], axis=1).reshape(obs.shape[0], u, n * len(flows), -1)
    lyap, sens = path_readings(x, state_dim=d, horizon=static.horizon, sigma=sigma)
    return lyap, sens, x[:, 0]


@functools.cache
def _compiled():
    """`_chunk`, jitted once per process (compilations are cached by `_Static` and shapes)."""
    import jax

    return jax.jit(_chunk, static_argnames=("static",))


def chunk_size(decisions: int, floats_per_decision: int) -> int:
    """Decisions per compiled chunk: a power of two (few distinct shapes, few compilations),
    no more than `decisions` rounded up, nor than `CHUNK_FLOATS` allow."""
    cap = max(1, int(CHUNK_FLOATS // max(floats_per_decision, 1)))
    return min(1 << (cap.bit_length() - 1), 1 << max(decisions - 1, 0).bit_length())


def cross(sampler: Sampler, obs: np.ndarray, assets: np.ndarray, times: np.ndarray, config: Config, *,
          state_dim: int, horizon: int) -> dict[str, np.ndarray]:
    """The readings at R decisions: observations `obs [R, D + k + 1]` (`cfm.scale`: the
    JEPA state, the scale features, the log unit), their asset `assets [R]` and bar index
    `times [R]` (the random streams' coordinates) -> `lyapunov_per_bar`, `sensitivity`,
    `modes`, each `[R]`. Raises FloatingPointError if the flows draw non-finite futures."""
    import jax
    import jax.numpy as jnp

    from strates.multiverse import crossing

    static = _Static(sampler.graphs, sampler.n_per_member, sampler.nfe, sampler.method, config.universes,
                     state_dim, horizon)
    k_perturb, k_noise = jax.random.split(jax.random.key(config.seed))
    r_len = len(obs)
    chunk = chunk_size(r_len, (config.universes + 1) * sampler.futures * sampler.x_dim)
    out = {name: np.zeros(r_len, np.float64) for name in READINGS}
    run = _compiled()
    for s in range(0, r_len, chunk):
        real = min(chunk, r_len - s)
        pick = np.concatenate([np.arange(s, s + real), np.full(chunk - real, s + real - 1)])  # one shape: one compile
        lyap, sens, x0 = run(sampler.states, jnp.asarray(obs[pick], jnp.float32), jnp.asarray(assets[pick]),
                             jnp.asarray(times[pick]), jnp.float32(config.sigma), k_perturb, k_noise, static=static)
        x0 = np.asarray(x0)[:real]
        if not np.isfinite(x0).all():
            raise FloatingPointError(f"the flows drew non-finite futures at {int((~np.isfinite(x0)).any((1, 2)).sum())}"
                                     f" of {real} decisions")
        out["lyapunov_per_bar"][s:s + real] = np.asarray(lyap)[:real]
        out["sensitivity"][s:s + real] = np.asarray(sens)[:real]
        out["modes"][s:s + real] = crossing.modes(x0)
    return out


def build(job: template.Job[Config]) -> template.Output:
    """Cross the cfm's futures over the test period (see the module docstring)."""
    from strates.cfm import artifact as cfm_artifact
    from strates.cfm.data import period_index
    from strates.jepa.artifact import embed
    from strates.multiverse import crossing

    config, ws, rep = job.config, job.ws, job.reporter
    cfm = cfm_artifact.read(job.parent("cfm"))
    with rep.task("embedding every bar with the JEPA"):
        states, fold, dataset = embed(ws, job.parent("jepa"))
    test = fold.test
    artifacts.check_disjoint(job.upstream(), test.start, test.end, period="test")
    flows, scales = cfm_artifact.load_flows(ws, cfm)
    sampler = Sampler(flows, futures=config.futures or cfm.config.sample.futures, nfe=cfm.config.sample.nfe,
                      method=cfm.config.sample.method)
    observed = scales.observe(states)
    in_period = period_index(states, test.start, test.end, 0, history=scales.scale.unit_window)
    picked = [evenly(ix, config.max_bars) for ix in in_period]
    assets = np.concatenate([np.full(len(ix), a, np.int64) for a, ix in enumerate(picked)])
    times = np.concatenate(picked).astype(np.int64)
    if not len(times):
        raise InvalidInput(f"no asset of {dataset.ref} has a bar in the test period {test.start.isoformat()} .. "
                           f"{test.end.isoformat()} with {scales.scale.unit_window} bars of history behind it",
                           rule="empty-period", fix="ingest a longer series, or split it with a longer test period")
    obs = np.stack([observed[a].h[t] for a, t in zip(assets, times, strict=True)])
    interval = float(dataset.summary.interval_seconds)
    u = config.universes + 1
    with rep.task(f"crossing {len(times)} decision times x {u} universes x {sampler.futures} futures "
                  f"({len(states)} assets, no agent)"):
        out = cross(sampler, obs, assets, times, config, state_dim=scales.state_dim, horizon=scales.horizon)
    ts = np.array([states[a].ts[t] for a, t in zip(assets, times, strict=True)], "datetime64[us]")
    job.writer.write_parquet("readings.parquet", _readings_frame(fold.name, ts, [states[a].asset for a in assets],
                                                                 out, interval))
    per_asset = {states[a].asset: AssetReadings(
        bars=len(in_period[a]), decisions=int((assets == a).sum()),
        lyapunov_per_bar=float(out["lyapunov_per_bar"][assets == a].mean()),
        lyapunov_per_time=float(out["lyapunov_per_bar"][assets == a].mean() / interval),
        sensitivity=float(out["sensitivity"][assets == a].mean()), modes=float(out["modes"][assets == a].mean()))
        for a in np.unique(assets)}
    lam = float(out["lyapunov_per_bar"].mean())
    all_ts = np.unique(np.concatenate([s.ts[ix] for s, ix in zip(states, in_period, strict=True)]))
    metrics = FuturesMetrics(
        universes=config.universes, sigma=config.sigma, futures=sampler.futures, horizon=scales.horizon,
        period=Crossed("test", test, len(all_ts)), assets=len(per_asset), decision_times=max(map(len, picked)),
        decisions=len(times), first=_utc(ts.min()), last=_utc(ts.max()), interval_seconds=interval,
        lyapunov_per_bar=lam, lyapunov_per_time=lam / interval,
        lyapunov_floor=crossing.lyapunov_floor(config.sigma, scales.horizon),
        sensitivity=float(out["sensitivity"].mean()), modes=float(out["modes"].mean()),
        distribution=FuturesDistributions(**{name: Distribution.of(out[name]) for name in READINGS}),
        per_asset=per_asset)
    summary = FuturesSummary(cfm=cfm.ref, fold=fold.name, method=cfm.config.sample.method, nfe=cfm.config.sample.nfe,
                             ensemble=len(flows), absent=tuple(s.asset for s, ix in zip(states, picked, strict=True)
                                                               if not len(ix)))
    return template.Output(to_dict(metrics), to_dict(summary))


FUTURES_STAGE: template.Stage[Config] = template.Stage(
    kind=artifact.FUTURES_KIND, command=artifact.COMMAND, config=Config, build=build,
    parents=("cfm", "jepa", "tokens", "dataset"), presets=PRESETS, default_preset=DEFAULT_PRESET,
)


def run_futures(config: Config, ws: Workspace, *, cfm: str | artifacts.Manifest = "latest", force: bool = False,
                reporter: Reporter | None = None) -> template.Result:
    """Cross the futures of the cfm artifact `cfm` (a reference or a manifest) alone: no
    agent, no decisions (see the module docstring). Returns the `multiverse-futures`
    artifact; `artifact.read_futures(result.manifest)` types it."""
    return template.run(FUTURES_STAGE, config, ws, parents={"cfm": cfm}, force=force, reporter=reporter)


def agent_cfm(ws: Workspace, agent: str | artifacts.Manifest = "latest") -> artifacts.Manifest:
    """The cfm artifact an agent artifact was trained on."""
    a = agent if isinstance(agent, artifacts.Manifest) else artifacts.resolve(ws, agent, stage="agent")
    return artifacts.resolve(ws, f"cfm/{a.parents['cfm']}", stage="cfm")


def _utc(t):
    import datetime as dt

    return np.datetime64(t, "us").item().replace(tzinfo=dt.UTC)


def _readings_frame(period: str, ts: np.ndarray, assets: list[str], out: dict[str, np.ndarray], interval: float):
    import polars as pl

    return pl.DataFrame({
        "period": [period] * len(ts), "ts": ts, "asset": assets,
        "lyapunov_per_bar": out["lyapunov_per_bar"], "lyapunov_per_time": out["lyapunov_per_bar"] / interval,
        "sensitivity": out["sensitivity"], "modes": out["modes"].astype(np.int64),
    }, schema_overrides={"period": pl.String, "asset": pl.String, "ts": pl.Datetime("us")})
