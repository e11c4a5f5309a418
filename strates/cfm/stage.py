"""`chaos train-cfm`: conditional flow matching of futures given the JEPA state and the scale.

Artifact `cfm` (parents: jepa, tokens, dataset): `checkpoints/<coupling>-m<k>/` (Orbax, one
per ensemble member and per compared coupling), `scales.json` (the scale features' windows
and training statistics, the spread factor); its typed summary and metrics are in
`strates.cfm.artifact`.

Futures are scale-free (`strates.cfm.scale`): returns in units of each asset's causal
trailing volatility sigma_t, the flow conditioned on [h_t, scale features], and rescaled
by sigma_t when sampled. Evaluation runs on the validation and test periods only, against
three baselines on the same dates (Gaussian random walk with trailing volatility, bootstrap
of the past, GARCH(1,1)-t refitted causally), and against the flow itself given a shuffled
condition (if it is no better, the flow ignores its condition). Per horizon: CRPS, energy
score, coverage at 50/80/90/95%, PIT histograms and the CRPS skill against each baseline
with a block-bootstrap interval over dates.

Fitting and selection: every flow trains a fixed number of steps and keeps its last
parameters. With `eval.recalibrate` the stage fits one spread factor on the scored part of
validation (`calibration.fit_spread`): that is a choice made on validation, so the manifest
records it as a `selected` range; downstream consumers apply the factor to sampled returns
(`Scales.spread`), and both the raw and the recalibrated futures are reported. Validation
scores are measured only on the part of validation that no upstream artifact was fitted or
selected on (after the JEPA's checkpoint-selection part), and the test period is checked
against every upstream fitted and selected range.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from strates.cfm import artifact
from strates.cfm.artifact import Scales
from strates.cfm.config import DEFAULT_PRESET, PRESETS, Config, Coupling, Method
from strates.cfm.data import futures, period_index, split_future
from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.progress import Reporter, training_log
from strates.core.stage import Job, Output, Stage
from strates.core.workspace import Workspace
from strates.data.split import Fold, Period
from strates.jepa.artifact import States

NFE_TABLE = (1, 2, 4, 8)


def cond_weight(config: Config, x_dim: int) -> float:
    """The C²OT condition weight in cost units. Pairing costs ||x0 - x1||^2 are about
    2 * x_dim and differ between pairings by O(sqrt(x_dim)); unit-norm conditions differ by
    at most 4. Scaling by sqrt(x_dim) makes `coupling.cond_weight = 1` trade the two evenly
    (a weight of x_dim or more makes the coupling the identity, i.e. I-CFM)."""
    return config.coupling.cond_weight * float(np.sqrt(x_dim))


def coupling_diagnostics(batches, kinds: tuple[Coupling, ...], *, steps: int = 4) -> tuple[artifact.CouplingStats, ...]:
    """Per coupling, over a few training batches: mean squared noise-to-future distance of
    the pairs, mean squared distance between the condition a noise row stood for and the
    condition it was paired with, and the share of rows left on their own condition."""
    out = []
    for kind, sampler in zip(kinds, batches, strict=True):
        cost, cond, same = [], [], []
        for step in range(steps):
            b = sampler(step, with_perm=True)
            cost.append(float(((b["x0"] - b["x1"]) ** 2).sum(-1).mean()))
            cond.append(float(((b["h_orig"] - b["h"]) ** 2).sum(-1).mean()))
            same.append(float((b["perm"] == np.arange(len(b["perm"]))).mean()))
        out.append(artifact.CouplingStats(kind, float(np.mean(cost)), float(np.mean(cond)), float(np.mean(same))))
    return tuple(out)


def example_sampler(states: list[States], index: list[np.ndarray], obs: list[np.ndarray], units: list[np.ndarray],
                    config: Config, *, kind: Coupling, seed: int) -> Callable[..., dict[str, np.ndarray]]:
    """batches(step) -> {x0, x1, h, s}: a minibatch of training futures (returns in units
    of each state's sigma_t, `units`) with their conditions (the first D + k columns of the
    observations `obs`: `scale.observation`), noise paired to them by the coupling `kind`,
    and flow times."""
    from strates.cfm.model import source_numpy
    from strates.cfm.ot import coupling

    pool = [(a, t) for a, ts in enumerate(index) for t in ts]
    assets = np.array([a for a, _ in pool])
    times = np.array([t for _, t in pool])
    horizon, batch = config.future.horizon, config.train.batch_size
    c_dim = obs[0].shape[1] - 1

    def batches(step: int, with_perm: bool = False) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, step])
        pick = rng.integers(0, len(pool), size=batch)
        x1 = np.empty((batch, horizon * states[0].h.shape[1] + horizon), np.float32)
        h = np.empty((batch, c_dim), np.float32)
        for a in np.unique(assets[pick]):
            rows = np.nonzero(assets[pick] == a)[0]
            x1[rows] = futures(states[a], times[pick][rows], horizon, units[a])
            h[rows] = obs[a][times[pick][rows], :c_dim]
        x0 = source_numpy(rng, x1.shape, tail_dims=horizon, tail_df=config.future.tail_df)
        perm = coupling(x0, x1, cond0=h, cond1=h, kind=kind, cond_weight=cond_weight(config, x1.shape[1]))
        out = {"x0": x0, "x1": x1[perm], "h": h[perm], "s": rng.uniform(size=batch).astype(np.float32)}
        if with_perm:
            out.update(perm=perm, h_orig=h)
        return out

    return batches


def _train_member(config, batches, *, x_dim: int, cond_dim: int, weights, member, ckpt, on_log=None):
    import jax
    from flax import nnx

    from strates.cfm.model import build_model, cfm_loss
    from strates.core.train import train

    seed = config.train.seed + 1000 * member
    model = build_model(config, x_dim=x_dim, cond_dim=cond_dim, seed=seed)
    graphdef, params = nnx.split(model, nnx.Param)

    def loss_fn(params, batch, key):
        del key
        return cfm_loss(nnx.merge(graphdef, params), batch["x0"], batch["x1"], batch["h"], batch["s"], weights)

    result = train(loss_fn=loss_fn, params=params, batches=batches(seed),
                   config=dataclasses.replace(config.train, seed=seed), checkpoint_dir=ckpt, key=jax.random.key(seed),
                   on_log=on_log)
    return nnx.merge(graphdef, result.params), result


def observe(states: list[States], config: Config, train_index: list[np.ndarray], horizon: int) -> Scales:
    """The scale features' statistics fitted on the training states: the `Scales` of the
    artifact (spread 1 until recalibrated)."""
    from strates.cfm.scale import Conditioner, raw_features

    feats = [raw_features(s.r, s.log_range, config.scale)[1][t] for s, t in zip(states, train_index, strict=True)]
    return Scales(horizon=horizon, state_dim=int(states[0].h.shape[1]), scale=config.scale,
                  conditioner=Conditioner.fit(np.concatenate(feats), config.scale))


def build(job: Job[Config]) -> Output:
    """Train the flows (each compared coupling, the main one's ensemble) on the training
    period, then score futures on the validation and test periods against the baselines."""
    from strates.cfm.model import loss_weights
    from strates.cfm.scale import unit
    from strates.jepa.artifact import embed

    config, rep = job.config, job.reporter
    with rep.task("embedding every bar with the JEPA"):
        states, fold, _ = embed(job.ws, job.parent("jepa"))
    scored = scored_periods(fold, job.upstream())  # refuses a leaking test period
    horizon, d = config.future.horizon, int(states[0].h.shape[1])
    train_index = period_index(states, fold.train.start, fold.train.end, horizon, history=config.scale.unit_window)
    scales = observe(states, config, train_index, horizon)
    obs = [o.h for o in scales.observe(states)]
    units = [unit(s.r, config.scale) for s in states]
    weights = loss_weights(horizon=horizon, state_dim=d, return_share=config.future.return_share)
    kinds = config.coupling.trained
    models: dict[Coupling, list] = {}
    histories = []
    for kind in kinds:
        members = config.ensemble if kind == config.coupling.kind else 1
        for m in range(members):
            steps = config.train.steps
            with rep.task(f"training {kind} flow, member {m + 1}/{members} ({steps} steps)", total=steps) as update:
                model, result = _train_member(
                    config, lambda seed, kind=kind: example_sampler(states, train_index, obs, units, config, kind=kind,
                                                                    seed=seed),
                    x_dim=horizon * (d + 1), cond_dim=scales.cond_dim, weights=weights, member=m,
                    ckpt=job.folder(f"checkpoints/{kind}-m{m}"), on_log=training_log(update))
            models.setdefault(kind, []).append(model)
            histories.append(artifact.MemberHistory(kind, m, tuple(result.history)))
    with rep.task("scoring futures against the random walk, the bootstrap and GARCH-t on validation and test"):
        scoring = evaluate(config, models, states, obs, units, scored)
        couplings = coupling_diagnostics(
            [example_sampler(states, train_index, obs, units, config, kind=k, seed=config.train.seed) for k in kinds],
            kinds)
    scales = dataclasses.replace(scales, spread=scoring.spread)
    job.writer.write_bytes("scales.json", scales.to_json())
    metrics = artifact.Metrics(couplings=couplings, coupling_nfe=scoring.nfe, spread=scoring.spread,
                               validation=scoring.periods.get("validation"), test=scoring.periods.get("test"),
                               condition_used=scoring.condition_used)
    summary = artifact.Summary(couplings=kinds, main=config.coupling.kind, ensemble=config.ensemble, fold=fold.name,
                               history=tuple(histories))
    selected = {"spread": scored["validation"].to_dict()} if scoring.spread != 1.0 else {}
    return Output(metrics=to_dict(metrics), summary=to_dict(summary), fitted={"train": fold.train.to_dict()},
                  selected=selected)


STAGE = Stage(kind=artifact.KIND, command=artifact.COMMAND, config=Config, build=build,
              parents=("jepa", "tokens", "dataset"), presets=PRESETS, default_preset=DEFAULT_PRESET, resume=True)


def run(config: Config, ws: Workspace, *, jepa: str | artifacts.Manifest = "latest", force: bool = False,
        reporter: Reporter | None = None) -> template.Result:
    """Train the flows on the JEPA artifact `jepa` (a reference or a manifest)."""
    return template.run(STAGE, config, ws, parents={"jepa": jepa}, force=force, reporter=reporter)


def _scored_states(index, max_states):
    """Evenly spaced (asset, t) pairs, at most `max_states` in all."""
    pairs = [(a, t) for a, ts in enumerate(index) for t in ts]
    if len(pairs) > max_states:
        pairs = [pairs[i] for i in np.linspace(0, len(pairs) - 1, max_states).round().astype(int)]
    return pairs


def scored_periods(fold: Fold, upstream: list[artifacts.Manifest]) -> dict[str, Period]:
    """{validation, test}: where the futures are scored. Validation starts after every
    upstream fitted or selected range inside it (the JEPA chose its checkpoint on the first
    part); the test period must overlap none (else LeakageError)."""
    val, test = fold.validation, fold.test
    artifacts.check_disjoint(upstream, test.start, test.end, period="test")
    return {"validation": Period(artifacts.first_unused(upstream, val.start, val.end), val.end), "test": test}


@dataclasses.dataclass(frozen=True)
class Scoring:
    """What `evaluate` measured: scores per period, the coupling x NFE table, the spread
    factor fitted on validation (1: none) and whether the flow uses its condition."""

    periods: dict[str, artifact.PeriodScores]
    nfe: artifact.NfeTable | None
    spread: float
    condition_used: bool | None


def _by_asset(pairs, fn) -> np.ndarray:
    """`fn(a, times) -> [S_a, ...]` for each asset's scored times, reassembled in `pairs` order."""
    assets = np.array([a for a, _ in pairs])
    times = np.array([t for _, t in pairs])
    out = None
    for a in np.unique(assets):
        rows = np.nonzero(assets == a)[0]
        part = fn(int(a), times[rows])
        if out is None:
            out = np.empty((len(pairs), *part.shape[1:]), part.dtype)
        out[rows] = part
    assert out is not None
    return out


def baseline_paths(config: Config, states: list[States], pairs, *, n: int, horizon: int) -> dict[str, np.ndarray]:
    """The baselines' return paths `[S, n, H]` for the scored `pairs` (asset, t), each from
    the asset's returns up to t only: Gaussian random walk with trailing volatility, i.i.d.
    bootstrap of the past, GARCH(1,1)-t refitted every `eval.garch_refit` bars."""
    from strates.cfm import baselines, garch

    seed, ev = config.train.seed, config.eval
    return {
        "random_walk": _by_asset(pairs, lambda a, t: baselines.gaussian_rw_paths(
            states[a].r, t, n=n, horizon=horizon, vol_window=ev.vol_window, seed=[seed, a, 1])),
        "bootstrap": _by_asset(pairs, lambda a, t: baselines.bootstrap_for_states(
            states[a].r, t, n=n, horizon=horizon, seed=[seed, a, 2])),
        "garch_t": _by_asset(pairs, lambda a, t: garch.garch_t_paths(
            states[a].r, t, n=n, horizon=horizon, refit_every=ev.garch_refit, window=ev.garch_window or None,
            seed=np.random.default_rng([seed, a, 3]))),
    }


def draw_paths(members: list, cond: np.ndarray, sigma: np.ndarray, *, key, n: int, nfe: int, method: str,
               horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n` futures per member for each condition `cond [S, D + k]` (common noise from `key`):
    (raw draws `[K, S, n, x]`, future states `[S, K * n, H, D]` on the sphere, return paths
    `[S, K * n, H]` rescaled by each state's unit `sigma [S]`)."""
    from strates.cfm.sample import ensemble_sample

    draws = np.asarray(ensemble_sample(members, cond, key=key, n=n, nfe=nfe, method=method))
    x = draws.transpose(1, 0, 2, 3).reshape(len(cond), -1, draws.shape[-1])
    d = (x.shape[-1] - horizon) // horizon
    states, paths = split_future(x, horizon=horizon, dim=d, sigma=sigma)
    return draws, states, paths


def evaluate(config: Config, models: dict[Coupling, list], states: list[States], obs: list[np.ndarray],
             units: list[np.ndarray], scored: dict[str, Period]) -> Scoring:
    """Score the futures on each period of `scored` (see `scored_periods`; a state's
    realised future lies inside the same period) against the baselines and against the
    flow given a shuffled condition; fit the spread on validation (`eval.recalibrate`);
    on validation, the coupling x NFE table."""
    import jax

    from strates.cfm import calibration
    from strates.cfm import metrics as score
    from strates.cfm.sample import disagreement

    horizon = config.future.horizon
    c_dim = obs[0].shape[1] - 1
    n = config.sample.futures
    main = models[config.coupling.kind]
    horizons = tuple(sorted({1, max(1, horizon // 2), horizon}))
    drawn: dict[str, dict] = {}
    nfe_table = None
    for period, span in scored.items():
        index = period_index(states, span.start, span.end, horizon, history=config.scale.unit_window)
        pairs = _scored_states(index, config.eval.max_states)
        if not pairs:
            continue
        cond = np.stack([obs[a][t, :c_dim] for a, t in pairs])
        sigma = np.array([units[a][t] for a, t in pairs])
        realised = np.stack([states[a].r[t + 1 : t + 1 + horizon] for a, t in pairs])
        key = jax.random.key(config.train.seed + 7)
        per_member = max(1, n // len(main))
        sample = config.sample
        draws, future_states, paths = draw_paths(main, cond, sigma, key=key, n=per_member, nfe=sample.nfe,
                                                 method=sample.method, horizon=horizon)
        # the same noise and units, each state given another state's condition
        shuffle = np.random.default_rng([config.train.seed, 11]).permutation(len(pairs))
        shuffled = draw_paths(main, cond[shuffle], sigma, key=key, n=per_member, nfe=sample.nfe, method=sample.method,
                              horizon=horizon)[2]
        forecasts = {"cfm": paths, "cfm_shuffled": shuffled,
                     **baseline_paths(config, states, pairs, n=paths.shape[1], horizon=horizon)}
        drawn[period] = {"span": span, "dates": np.array([states[a].ts[t] for a, t in pairs]), "realised": realised,
                         "forecasts": forecasts, "states": future_states,
                         "spread": float(np.asarray(disagreement(draws)).mean())}
        if period == "validation":
            rows = []
            for kind, members in models.items():
                cells = []
                for nfe in NFE_TABLE:
                    p = draw_paths(members[:1], cond, sigma, key=key, n=n, nfe=nfe, method=Method.EULER,
                                   horizon=horizon)[2]
                    cells.append(artifact.NfeScore(nfe, float(score.crps_ensemble(p.sum(-1), realised.sum(-1)).mean()),
                                                   float(score.energy_score(p, realised).mean())))
                rows.append(artifact.CouplingNfe(kind, tuple(cells)))
            nfe_table = artifact.NfeTable(method=Method.EULER, horizon=horizon, rows=tuple(rows))
    spread = 1.0
    if config.eval.recalibrate and "validation" in drawn:
        v = drawn["validation"]
        spread = float(calibration.fit_spread(np.cumsum(v["forecasts"]["cfm"], -1), np.cumsum(v["realised"], -1)))
        for p in drawn.values():
            p["forecasts"]["cfm_recalibrated"] = calibration.widen(p["forecasts"]["cfm"], spread)
    periods = {name: _period_scores(config, p, horizons) for name, p in drawn.items()}
    val = periods.get("validation")
    used = None if val is None else all(row[artifact.SHUFFLED].value > 0 for row in val.skill.values())
    return Scoring(periods, nfe_table, spread, used)


def _period_scores(config: Config, p: dict, horizons: tuple[int, ...]) -> artifact.PeriodScores:
    """Scores, calibration and skill of one period's drawn futures (see `evaluate`)."""
    from strates.cfm import calibration
    from strates.cfm import metrics as score

    realised, forecasts, dates = p["realised"], p["forecasts"], p["dates"]
    rng = np.random.default_rng([config.train.seed, 13])
    cum_y = np.cumsum(realised, -1)
    crps: dict[str, dict[int, np.ndarray]] = {}
    cals: dict[str, tuple[calibration.Calibration, ...]] = {}
    for name, x in forecasts.items():
        cum_x = np.cumsum(x, -1)
        crps[name] = {h: score.crps_ensemble(cum_x[:, :, h - 1], cum_y[:, h - 1]) for h in horizons}
        cals[name] = tuple(calibration.calibration(cum_x[:, :, h - 1], cum_y[:, h - 1], horizon=h, rng=rng)
                           for h in horizons)

    def skills(flow: str) -> dict[str, dict[str, calibration.Skill]]:
        against = {**{b: b for b in artifact.BASELINES}, artifact.SHUFFLED: "cfm_shuffled"}
        return {f"h{h}": {b: calibration.skill(crps[flow][h], crps[key][h], dates=dates,
                                               replicates=config.eval.bootstrap_replicates, seed=config.train.seed)
                          for b, key in against.items()}
                for h in horizons}

    shown = forecasts["cfm"][:100]
    span = p["span"]
    return artifact.PeriodScores(
        start=span.start, end=span.end, states=len(realised), futures_per_state=int(forecasts["cfm"].shape[1]),
        forecasts={name: score.path_scores(x, realised, horizons=horizons) for name, x in forecasts.items()},
        calibration=cals, skill=skills("cfm"),
        skill_recalibrated=skills("cfm_recalibrated") if "cfm_recalibrated" in forecasts else {},
        diversity=artifact.Diversity(vendi=float(np.mean([score.vendi_score(x) for x in shown])),
                                     effective_modes=float(np.mean([score.effective_modes(x) for x in shown]))),
        sphere_norm_max_error=float(np.abs(np.linalg.norm(p["states"], axis=-1) - 1).max()),
        ensemble_disagreement=p["spread"],
    )
