"""`chaos train-jepa`: fit the Mamba-2 JEPA on a tokens artifact's training period.

Artifact `jepa` (parents: tokens, dataset): `checkpoints/` (Orbax: params of the context
encoder, predictor and EMA target encoder, plus optimizer state), `macro_scaler.json`;
its typed summary and metrics are in `strates.jepa.artifact`.
Selection and diagnostics split the validation period in time (`validation_split`): the
first `select.share` of it (default half) chooses the checkpoint with the lowest JEPA loss,
and only that part is recorded as `selected` in the manifest; the rest (the diagnostic
part) chose nothing, and the results are measured there. Downstream stages evaluate only
after both (the leakage guard refuses an evaluated period overlapping either range).

Metrics: the loss terms at the end of training, the representation's effective rank
(RankMe) and per-dimension spread on the diagnostic part, and linear probes from h_t to
next-horizon realised volatility (relative to its trailing level) and return sign (fitted
on training-period states, scored on diagnostic-part states; a target never reaches past
the end of the period it belongs to) beside the same probes on raw features.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

import numpy as np

from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.errors import InvalidInput
from strates.core.progress import Reporter, training_log
from strates.core.stage import Job, Output, Stage
from strates.core.workspace import Workspace
from strates.data.split import Fold, Period
from strates.jepa import artifact
from strates.jepa.config import DEFAULT_PRESET, PRESETS, Config, identity


def prepare(config: Config, parents: Mapping[str, artifacts.Manifest]) -> Config:
    """A topology that does not match the devices fails first, before any reuse."""
    from strates.core import topology as topo

    topo.build_mesh(topo.plan(config.device.topology, mesh=config.device.mesh))
    return config


def build(job: Job[Config]) -> Output:
    """Train on the training period, choose the checkpoint on the selection part of
    validation, measure the representation on the diagnostic part."""
    import jax
    from flax import nnx

    from strates.core import topology as topo
    from strates.fsq.artifact import read_tokens
    from strates.jepa.data import MacroScaler, load_sequences, window_sampler
    from strates.jepa.model import build_model
    from strates.jepa.train import fit, select_checkpoint

    config, rep = job.config, job.reporter
    plan = topo.plan(config.device.topology, mesh=config.device.mesh)
    mesh = topo.build_mesh(plan)
    tokens = read_tokens(job.parent("tokens"))
    with rep.task("loading tokens and macro series"):
        sequences, macro_names, dataset = load_sequences(job.ws, tokens.manifest)
    fold = dataset.fold(tokens.summary.fold)
    scaler = MacroScaler.fit(sequences, macro_names, end=fold.train.end)
    interval_s = float(dataset.summary.interval_seconds)
    # the checkpoint is chosen on the first part of validation, the diagnostics measured on the rest
    chosen, diagnostic = validation_split(fold, share=config.select.share, interval=dataset.interval)
    window = selection_window(config, sequences, chosen)  # too little data fails before training

    model = build_model(config, n_assets=len(sequences), n_macro=len(macro_names), vocab=tokens.summary.codebook_size,
                        seed=config.train.seed)
    graphdef, params = nnx.split(model, nnx.Param)
    batches = window_sampler(sequences, scaler, window=config.data.window, batch_size=config.train.batch_size,
                             seed=config.train.seed, end=fold.train.end)
    ckpt = job.folder("checkpoints")
    steps = config.train.steps
    title = f"training JEPA on {plan.topology.name} mesh {plan.mesh_str()} ({steps} steps)"
    with rep.task(title, total=steps) as update:
        result = fit(config, graphdef=graphdef, params=params, batches=batches, mesh=mesh,
                     checkpoint_dir=ckpt, interval_s=interval_s, on_log=training_log(update, "loss", "pred", "std"))
    if result.restored_from is not None:
        rep.info(f"resumed from the checkpoint at step {result.restored_from}")
    with rep.task("selecting the checkpoint with the lowest loss on the selection part of validation"):
        val_batches = window_sampler(sequences, scaler, window=window, batch_size=config.train.batch_size,
                                     seed=config.train.seed + 1, start=chosen.start, end=chosen.end)
        selection, best = select_checkpoint(config, graphdef, params, ckpt, val_batches, interval_s=interval_s)
    with rep.task("measuring the representation (RankMe, probes) on the diagnostic part of validation"):
        trained = nnx.merge(graphdef, best)
        measured = evaluate(config, trained, sequences, scaler, train=fold.train, scored=diagnostic,
                            interval_s=interval_s)
    last = result.history[-1] if result.history else None
    metrics = artifact.Metrics(
        **measured, selection=artifact.Selection(
            step=selection["step"], validation_loss=selection["validation_loss"], window=window,
            losses=tuple(artifact.CheckpointLoss(**c) for c in selection["losses"])),
        final=artifact.LossTerms(**{k: last[k] for k in artifact.LOSS_TERMS}) if last else None, steps=result.step,
        params=int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(trained.context, nnx.Param)))),
    )
    job.writer.write_bytes("macro_scaler.json", scaler.to_json())
    summary = artifact.Summary(
        topology=plan.topology.name, mesh=plan.mesh_str(), assets=tuple(s.asset for s in sequences),
        macro_series=macro_names, codebook_size=tokens.summary.codebook_size, interval_seconds=interval_s,
        fold=fold.name, selected_step=selection["step"], diagnostic=diagnostic, history=tuple(result.history),
        restored_from_step=result.restored_from,
    )
    return Output(metrics=to_dict(metrics), summary=to_dict(summary), fitted={"train": fold.train.to_dict()},
                  selected={"validation": chosen.to_dict()})


STAGE = Stage(kind=artifact.KIND, command=artifact.COMMAND, config=Config, build=build, parents=("tokens", "dataset"),
              presets=PRESETS, default_preset=DEFAULT_PRESET, prepare=prepare, identity=identity, resume=True)


def run(config: Config, ws: Workspace, *, tokens: str | artifacts.Manifest = "latest", force: bool = False,
        reporter: Reporter | None = None) -> template.Result:
    """Train a JEPA on tokens `tokens` over the mesh of `config.device`."""
    return template.run(STAGE, config, ws, parents={"tokens": tokens}, force=force, reporter=reporter)


def validation_split(fold: Fold, *, share: float, interval: dt.timedelta) -> tuple[Period, Period]:
    """(selection, diagnostic) periods (end exclusive): the fold's validation period cut at
    the first bar at or after `share` of its length (each part keeps at least one bar). The
    checkpoint is chosen on the first; the reported diagnostics use the second."""
    start, end = fold.validation.start, fold.validation.end
    bars = round((end - start) / interval)
    if bars < 2:
        raise InvalidInput(
            f"fold {fold.name}'s validation period {start.isoformat()} .. {end.isoformat()} holds {bars} bar(s); "
            "choosing a checkpoint and measuring diagnostics on separate data needs at least 2",
            rule="too-few-bars", fix="re-ingest with a longer validation period (--split) or fewer walk-forward folds",
        )
    cut = start + min(max(math.ceil(bars * share - 1e-9), 1), bars - 1) * interval
    return Period(start, cut), Period(cut, end)


def selection_window(config: Config, sequences, span: Period) -> int:
    """Bars per selection window: `data.window`, or fewer when no asset has that many bars
    inside `span` (the selection part of validation); windows never leave the span."""
    a, b = span.bounds64()
    longest = max(int(np.searchsorted(s.ts, b) - np.searchsorted(s.ts, a)) for s in sequences)
    window = min(config.data.window, longest)
    need = config.loss.ctx_min + config.model.horizon + 1
    if window < need:
        raise InvalidInput(
            f"the selection part of validation {span.start.isoformat()} .. {span.end.isoformat()} holds at most "
            f"{longest} bars per asset; a selection window needs loss.ctx_min + model.horizon + 1 = {need}",
            rule="too-few-bars",
            fix="raise --set select.share, lower loss.ctx_min or model.horizon, or re-ingest with a longer "
                "validation period (--split)",
        )
    return window


def evaluate(config: Config, model, sequences, scaler, *, train: Period, scored: Period, interval_s: float) -> dict:
    """RankMe and per-dimension std of h_t on `scored` (the diagnostic part of validation,
    which chose nothing); linear probes fitted on `train` states, scored on `scored` states,
    vs raw features. A row's target (bars t+1..t+horizon) lies inside its own period, so no
    training target reaches into validation and no scored target past the end of `scored`.
    The volatility target is relative to the trailing `probe.vol_window`-bar level at t
    (`probe.forward_targets`), so an asset's first max(loss.ctx_min, probe.vol_window) bars
    are skipped; that level uses returns up to t only, which may precede the period.
    Returns the `rankme`, `embedding_dims`, `per_dim_std` and `probe` fields of
    `artifact.Metrics`."""
    from strates.jepa.model import embed_sequences
    from strates.jepa.probe import forward_targets, period_rows, probe_report, rankme, trailing_window

    states = embed_sequences(model, sequences, scaler, interval_s=interval_s)
    periods = {"train": train, "scored": scored}
    parts: dict[str, dict[str, list]] = {p: {"h": [], "raw": [], "raw_window": [], "vol": [], "sign": []}
                                         for p in periods}
    for s, h in zip(sequences, states, strict=True):
        vol, sign = forward_targets(s.log_returns, config.probe.horizon, window=config.probe.vol_window)
        raw_win = trailing_window(s.features, config.probe.raw_window)
        for name, span in periods.items():
            # the first bars have too little history to judge, or no trailing volatility level
            mask = period_rows(s.ts, span.start, span.end, horizon=config.probe.horizon,
                               skip=max(config.loss.ctx_min, config.probe.vol_window))
            for key, values in (("h", h), ("raw", s.features), ("raw_window", raw_win), ("vol", vol), ("sign", sign)):
                parts[name][key].append(values[mask])
    cat = {p: {k: np.concatenate(v) for k, v in d.items()} for p, d in parts.items()}
    if not len(cat["train"]["vol"]) or not len(cat["scored"]["vol"]):
        raise InvalidInput(
            f"no bar of the training or diagnostic period ({scored.start.isoformat()} .. "
            f"{scored.end.isoformat()}) has a {config.probe.horizon}-bar probe target inside it",
            rule="too-few-bars",
            fix="lower --set probe.horizon, or re-ingest with a longer validation period (--split)",
        )
    val_h = cat["scored"]["h"]
    report = probe_report(
        {name: (cat["train"][name], cat["scored"][name]) for name in ("h", "raw", "raw_window")},
        (cat["train"]["vol"], cat["train"]["sign"]), (cat["scored"]["vol"], cat["scored"]["sign"]),
    )
    std = val_h.std(axis=0)
    return {
        "rankme": rankme(val_h),
        "embedding_dims": int(val_h.shape[1]),
        # unit vectors spread evenly over the sphere have std 1/sqrt(D) per dimension; 0 is collapse
        "per_dim_std": artifact.Spread(mean=float(std.mean()), min=float(std.min()), max=float(std.max()),
                                       isotropic=float(1.0 / np.sqrt(val_h.shape[1]))),
        "probe": artifact.Probes(
            majority_sign_rate=report["majority_sign_rate"], train_rows=report["train_rows"],
            test_rows=report["test_rows"], **{k: artifact.ProbeScore(**report[k]) for k in ("h", "raw", "raw_window")}),
    }
