"""`chaos train-cfm`: conditional flow matching of futures given the JEPA state.

Artifact `cfm` (parents: jepa, tokens, dataset): `checkpoints/<coupling>-m<k>/` (Orbax, one
per ensemble member and per compared coupling), `scales.json`; its typed summary and
metrics are in `strates.cfm.artifact`. Evaluation runs on the validation and test periods
only, against two baselines on the same dates.

The stage selects nothing: every flow trains a fixed number of steps and keeps its last
parameters, the main coupling is the configured one, and all ensemble members are used,
so its manifest records no `selected` range. Its validation scores (and the coupling x NFE
table) are reports, not choices; they are measured only on the part of validation that no
upstream artifact was fitted or selected on (after the JEPA's checkpoint-selection part),
and the test period is checked against every upstream fitted and selected range.
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


def example_sampler(states: list[States], index: list[np.ndarray], config: Config, *, kind: Coupling, seed: int,
                    ret_scale: float) -> Callable[..., dict[str, np.ndarray]]:
    """batches(step) -> {x0, x1, h, s}: a minibatch of training futures with their
    conditions, noise paired to them by the coupling `kind`, and flow times."""
    from strates.cfm.ot import coupling

    pool = [(a, t) for a, ts in enumerate(index) for t in ts]
    assets = np.array([a for a, _ in pool])
    times = np.array([t for _, t in pool])
    horizon, batch = config.future.horizon, config.train.batch_size

    def batches(step: int, with_perm: bool = False) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([seed, step])
        pick = rng.integers(0, len(pool), size=batch)
        x1 = np.empty((batch, horizon * states[0].h.shape[1] + horizon), np.float32)
        h = np.empty((batch, states[0].h.shape[1]), np.float32)
        for a in np.unique(assets[pick]):
            rows = np.nonzero(assets[pick] == a)[0]
            x1[rows] = futures(states[a], times[pick][rows], horizon, ret_scale)
            h[rows] = states[a].h[times[pick][rows]]
        x0 = rng.standard_normal(x1.shape).astype(np.float32)
        perm = coupling(x0, x1, cond0=h, cond1=h, kind=kind, cond_weight=cond_weight(config, x1.shape[1]))
        out = {"x0": x0, "x1": x1[perm], "h": h[perm], "s": rng.uniform(size=batch).astype(np.float32)}
        if with_perm:
            out.update(perm=perm, h_orig=h)
        return out

    return batches


def _train_member(config, states, train_index, *, kind, member, ckpt, ret_scale, on_log=None):
    import jax
    from flax import nnx

    from strates.cfm.model import build_model, cfm_loss
    from strates.core.train import train

    seed = config.train.seed + 1000 * member
    d = states[0].h.shape[1]
    model = build_model(config, x_dim=config.future.horizon * (d + 1), cond_dim=d, seed=seed)
    graphdef, params = nnx.split(model, nnx.Param)

    def loss_fn(params, batch, key):
        del key
        return cfm_loss(nnx.merge(graphdef, params), batch["x0"], batch["x1"], batch["h"], batch["s"])

    batches = example_sampler(states, train_index, config, kind=kind, seed=seed, ret_scale=ret_scale)
    result = train(loss_fn=loss_fn, params=params, batches=batches, config=dataclasses.replace(config.train, seed=seed),
                   checkpoint_dir=ckpt, key=jax.random.key(seed), on_log=on_log)
    return nnx.merge(graphdef, result.params), result


def build(job: Job[Config]) -> Output:
    """Train the flows (each compared coupling, the main one's ensemble) on the training
    period, then score futures on the validation and test periods."""
    from strates.jepa.artifact import embed

    config, rep = job.config, job.reporter
    with rep.task("embedding every bar with the JEPA"):
        states, fold, _ = embed(job.ws, job.parent("jepa"))
    scored = scored_periods(fold, job.upstream())  # refuses a leaking test period
    horizon = config.future.horizon
    train_index = period_index(states, fold.train.start, fold.train.end, horizon)
    train_r = np.concatenate([s.r[t] for s, t in zip(states, train_index, strict=True)])
    scales = Scales(ret_scale=float(train_r.std()), horizon=horizon, state_dim=int(states[0].h.shape[1]))
    kinds = config.coupling.trained
    models: dict[Coupling, list] = {}
    histories = []
    for kind in kinds:
        members = config.ensemble if kind == config.coupling.kind else 1
        for m in range(members):
            steps = config.train.steps
            with rep.task(f"training {kind} flow, member {m + 1}/{members} ({steps} steps)", total=steps) as update:
                model, result = _train_member(config, states, train_index, kind=kind, member=m,
                                              ckpt=job.folder(f"checkpoints/{kind}-m{m}"), ret_scale=scales.ret_scale,
                                              on_log=training_log(update))
            models.setdefault(kind, []).append(model)
            histories.append(artifact.MemberHistory(kind, m, tuple(result.history)))
    with rep.task("scoring futures on the validation and test periods"):
        periods, nfe = evaluate(config, models, states, scored, ret_scale=scales.ret_scale)
        couplings = coupling_diagnostics(
            [example_sampler(states, train_index, config, kind=k, seed=config.train.seed, ret_scale=scales.ret_scale)
             for k in kinds], kinds)
    job.writer.write_bytes("scales.json", scales.to_json())
    metrics = artifact.Metrics(couplings=couplings, coupling_nfe=nfe, validation=periods.get("validation"),
                               test=periods.get("test"))
    summary = artifact.Summary(couplings=kinds, main=config.coupling.kind, ensemble=config.ensemble, fold=fold.name,
                               history=tuple(histories))
    return Output(metrics=to_dict(metrics), summary=to_dict(summary), fitted={"train": fold.train.to_dict()})


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


def evaluate(config: Config, models: dict[Coupling, list], states: list[States], scored: dict[str, Period], *,
             ret_scale: float) -> tuple[dict[str, artifact.PeriodScores], artifact.NfeTable | None]:
    """Scores per period of `scored` (see `scored_periods`; a state's realised future lies
    inside the same period), and on validation the coupling x NFE table."""
    import jax

    from strates.cfm import baselines
    from strates.cfm import metrics as score
    from strates.cfm.sample import disagreement, ensemble_sample

    horizon, d = config.future.horizon, states[0].h.shape[1]
    n = config.sample.futures
    main = models[config.coupling.kind]
    out: dict[str, artifact.PeriodScores] = {}
    nfe_table = None
    for period, span in scored.items():
        index = period_index(states, span.start, span.end, horizon)
        pairs = _scored_states(index, config.eval.max_states)
        if not pairs:
            continue
        h = np.stack([states[a].h[t] for a, t in pairs])
        realised = np.stack([states[a].r[t + 1 : t + 1 + horizon] for a, t in pairs])
        key = jax.random.key(config.train.seed + 7)
        per_member = max(1, n // len(main))
        draws = np.asarray(ensemble_sample(main, h, key=key, n=per_member, nfe=config.sample.nfe,
                                           method=config.sample.method))  # [K, S, n, x]
        spread = np.asarray(disagreement(draws))
        samples = draws.transpose(1, 0, 2, 3).reshape(len(pairs), -1, draws.shape[-1])
        future_states, paths = split_future(samples, horizon=horizon, dim=d, ret_scale=ret_scale)
        boot = np.stack([baselines.bootstrap_for_states(states[a].r, np.array([t]), n=samples.shape[1],
                                                        horizon=horizon, seed=i)[0] for i, (a, t) in enumerate(pairs)])
        walk = np.stack([baselines.gaussian_rw_paths(states[a].r, np.array([t]), n=samples.shape[1], horizon=horizon,
                                                     vol_window=config.eval.vol_window, seed=i)[0]
                         for i, (a, t) in enumerate(pairs)])
        horizons = tuple(sorted({1, max(1, horizon // 2), horizon}))
        shown = paths[:100]
        out[period] = artifact.PeriodScores(
            start=span.start, end=span.end, states=len(pairs), futures_per_state=int(samples.shape[1]),
            cfm=score.path_scores(paths, realised, horizons=horizons),
            bootstrap=score.path_scores(boot, realised, horizons=horizons),
            gaussian_rw=score.path_scores(walk, realised, horizons=horizons),
            diversity=artifact.Diversity(vendi=float(np.mean([score.vendi_score(p) for p in shown])),
                                         effective_modes=float(np.mean([score.effective_modes(p) for p in shown]))),
            sphere_norm_max_error=float(np.abs(np.linalg.norm(future_states, axis=-1) - 1).max()),
            ensemble_disagreement=float(spread.mean()),
        )
        if period == "validation":
            rows = []
            for kind, members in models.items():
                cells = []
                for nfe in NFE_TABLE:
                    x = np.asarray(ensemble_sample(members[:1], h, key=key, n=n, nfe=nfe, method=Method.EULER))[0]
                    _, p = split_future(x, horizon=horizon, dim=d, ret_scale=ret_scale)
                    cells.append(artifact.NfeScore(nfe, float(score.crps_ensemble(p.sum(-1), realised.sum(-1)).mean()),
                                                   float(score.energy_score(p, realised).mean())))
                rows.append(artifact.CouplingNfe(kind, tuple(cells)))
            nfe_table = artifact.NfeTable(method=Method.EULER, horizon=horizon, rows=tuple(rows))
    return out, nfe_table
