"""`chaos train-jepa`: fit the Mamba-2 JEPA on a tokens artifact's training period.

Artifact `jepa` (parents: tokens, dataset): `checkpoints/` (Orbax: params of the context
encoder, predictor and EMA target encoder, plus optimizer state), `macro_scaler.json`.
Selection and diagnostics split the validation period in time (`validation_split`): the
first `select.share` of it (default half) chooses the checkpoint with the lowest JEPA loss,
and only that part is recorded as `selected` in the manifest; the rest (the diagnostic
part) chose nothing, and the results are measured there. Downstream stages evaluate only
after both (the leakage guard refuses an evaluated period overlapping either range).

Metrics: the loss terms at the end of training, the representation's effective rank
(RankMe) and per-dimension spread on the diagnostic part, and linear probes from h_t to
next-horizon realised volatility and return sign (fitted on training-period states, scored
on diagnostic-part states; a target never reaches past the end of the period it belongs to)
beside the same probes on raw features.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import time
from typing import Any

import numpy as np

from strates.core import artifacts
from strates.core.config import to_dict
from strates.core.errors import ConfigError, InvalidInput
from strates.core.progress import NullReporter, Reporter, training_log
from strates.core.workspace import Workspace
from strates.jepa.config import Config

STAGE = "jepa"


@dataclasses.dataclass(frozen=True)
class Result:
    manifest: artifacts.Manifest
    reused: bool


def tau_schedule(config: Config):
    """tau(step): cosine from ema.tau_start (step 0) to ema.tau_end (last step)."""
    import jax.numpy as jnp

    start, end, steps = config.ema.tau_start, config.ema.tau_end, max(1, config.train.steps - 1)

    def tau(step):
        frac = jnp.clip(step.astype(jnp.float32) / steps, 0.0, 1.0)
        return end - (end - start) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))

    return tau


def make_loss(graphdef, config: Config, *, interval_s: float):
    import jax.numpy as jnp
    from flax import nnx

    from strates.jepa.jepa_loss import jepa_loss

    loss = config.loss

    def loss_fn(params, batch, key):
        model = nnx.merge(graphdef, params)
        interval = jnp.full(batch["tokens"].shape[:1], interval_s, jnp.float32)
        return jepa_loss(
            model, batch["tokens"], batch["assets"], batch["macro"], key=key, n_spans=loss.n_spans,
            ctx_min=loss.ctx_min, pred_weight=loss.pred_weight, var_weight=loss.var_weight,
            cov_weight=loss.cov_weight, distance=loss.distance, interval_s=interval,
        )

    return loss_fn


def place(params, mesh):
    """Shard params over `mesh` by their logical axes."""
    import jax

    from strates.jepa.model import param_shardings

    return jax.device_put(params, param_shardings(params, mesh))


def batch_placer(mesh, batch_size: int):
    """batch dict -> arrays sharded along the batch axis over (data, fsdp)."""
    import jax
    from jax.sharding import NamedSharding, PartitionSpec

    split = mesh.shape.get("data", 1) * mesh.shape.get("fsdp", 1)
    if batch_size % split:
        raise ConfigError(
            f"train.batch_size {batch_size} is not divisible by the data x fsdp mesh size {split}",
            fix=f"use --set train.batch_size={max(split, batch_size // split * split)} or another --mesh",
            field="train.batch_size",
        )
    sharding = NamedSharding(mesh, PartitionSpec(("data", "fsdp")))
    return lambda batch: {k: jax.device_put(v, sharding) for k, v in batch.items()}


def fit(config: Config, *, graphdef, params, batches, mesh, checkpoint_dir: str, interval_s: float, on_log=None):
    """Train (resuming from `checkpoint_dir`) on `mesh`; returns the core TrainResult."""
    import jax

    from strates.core.train import train
    from strates.jepa.jepa_loss import ema_target, target_mask

    tau = tau_schedule(config)

    put = batch_placer(mesh, config.train.batch_size)
    with jax.set_mesh(mesh):
        return train(
            loss_fn=make_loss(graphdef, config, interval_s=interval_s), params=place(params, mesh),
            batches=lambda s: put(batches(s)), config=config.train, checkpoint_dir=checkpoint_dir,
            key=jax.random.key(config.train.seed), on_log=on_log,
            frozen=target_mask(params), post_update=lambda p, step: ema_target(p, tau(step)),
        )


def run(
    config: Config,
    ws: Workspace,
    *,
    tokens: str = "latest",
    topology: str = "cpu",
    mesh: str | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
) -> Result:
    """Train a JEPA on tokens `tokens` over the mesh of `topology`."""
    import jax

    from strates.core import topology as topo
    from strates.jepa.data import MacroScaler, load_sequences, window_sampler

    rep = reporter or NullReporter()
    plan = topo.plan(topology, mesh=mesh)
    device_mesh = topo.build_mesh(plan)  # a topology that does not match the devices fails first
    tok = artifacts.resolve(ws, tokens, stage="tokens")
    parents = {"tokens": tok.id, "dataset": tok.parents["dataset"]}
    resolved = to_dict(config)
    aid, existing = artifacts.lookup(ws, STAGE, resolved, parents, force=force)
    if existing is not None:
        return Result(existing, True)
    t0 = time.perf_counter()
    with rep.task("loading tokens and macro series"):
        sequences, macro_names, dataset = load_sequences(ws, tok)
    fold = next(f for f in dataset.summary["split"]["folds"] if f["name"] == tok.summary["fold"])
    train_start, train_end = fold["train"]["start"], fold["train"]["end"]
    scaler = MacroScaler.fit(sequences, macro_names, end=train_end)
    interval_s = float(dataset.summary["interval_seconds"])
    vocab = int(tok.summary["codebook_size"])
    # the checkpoint is chosen on the first part of validation, the diagnostics measured on the rest
    chosen, diagnostic = validation_split(fold, share=config.select.share, interval=dt.timedelta(seconds=interval_s))
    window = selection_window(config, sequences, chosen)  # too little data fails before training

    from flax import nnx

    from strates.jepa.model import build_model

    model = build_model(config, n_assets=len(sequences), n_macro=len(macro_names), vocab=vocab,
                        seed=config.train.seed)
    graphdef, params = nnx.split(model, nnx.Param)
    batches = window_sampler(sequences, scaler, window=config.data.window, batch_size=config.train.batch_size,
                             seed=config.train.seed, end=train_end)
    writer = artifacts.begin(ws, STAGE, aid, resume=True)
    ckpt = ws.local_path(writer.rel("checkpoints")) or ws.uri(writer.rel("checkpoints"))
    steps = config.train.steps
    with rep.task(f"training JEPA on {plan.topology.name} mesh {plan.mesh_str()} ({steps} steps)", total=steps) as update:
        result = fit(config, graphdef=graphdef, params=params, batches=batches, mesh=device_mesh,
                     checkpoint_dir=ckpt, interval_s=interval_s, on_log=training_log(update, "loss", "pred", "std"))
    if result.restored_from is not None:
        rep.info(f"resumed from the checkpoint at step {result.restored_from}")
    with rep.task("selecting the checkpoint with the lowest loss on the selection part of validation"):
        val_batches = window_sampler(sequences, scaler, window=window, batch_size=config.train.batch_size,
                                     seed=config.train.seed + 1, start=chosen["start"], end=chosen["end"])
        selection = select_checkpoint(config, graphdef, params, ckpt, val_batches, interval_s=interval_s)
    with rep.task("measuring the representation (RankMe, probes) on the diagnostic part of validation"):
        trained = nnx.merge(graphdef, selection.pop("params"))
        metrics = evaluate(config, trained, sequences, scaler, train=fold["train"], scored=diagnostic,
                           interval_s=interval_s)
    metrics["selection"] = {**selection, "window": window}
    last_log = result.history[-1] if result.history else {}
    metrics["final"] = {k: last_log[k] for k in ("loss", "pred", "variance", "covariance", "cos", "std") if k in last_log}
    metrics["steps"] = result.step
    metrics["params"] = int(sum(np.prod(x.shape) for x in jax.tree.leaves(nnx.state(trained.context, nnx.Param))))
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    writer.write_bytes("macro_scaler.json", scaler.to_json())
    writer.add_existing("checkpoints")
    summary = {
        "topology": plan.topology.name, "mesh": plan.mesh_str(), "assets": [s.asset for s in sequences],
        "macro_series": list(macro_names), "codebook_size": vocab, "interval_seconds": interval_s,
        "fold": fold["name"], "restored_from_step": result.restored_from, "history": result.history,
        "selected_step": metrics["selection"]["step"], "diagnostic": diagnostic,
    }
    manifest = writer.commit(config=resolved, parents=parents, metrics=metrics, summary=summary,
                             fitted={"train": {"start": train_start, "end": train_end}},
                             selected={"validation": chosen})
    return Result(manifest, False)


VALIDATION_BATCHES = 4


def validation_split(fold: dict, *, share: float, interval: dt.timedelta) -> tuple[dict, dict]:
    """(selection, diagnostic) {start, end} spans (end exclusive): the fold's validation
    period cut at the first bar at or after `share` of its length (each part keeps at least
    one bar). The checkpoint is chosen on the first; the reported diagnostics use the second."""
    start, end = fold["validation"]["start"], fold["validation"]["end"]
    bars = round((end - start) / interval)
    if bars < 2:
        raise InvalidInput(
            f"fold {fold['name']}'s validation period {start.isoformat()} .. {end.isoformat()} holds {bars} bar(s); "
            "choosing a checkpoint and measuring diagnostics on separate data needs at least 2",
            rule="too-few-bars", fix="re-ingest with a longer validation period (--split) or fewer walk-forward folds",
        )
    cut = start + min(max(math.ceil(bars * share - 1e-9), 1), bars - 1) * interval
    return {"start": start, "end": cut}, {"start": cut, "end": end}


def selection_window(config: Config, sequences, span: dict) -> int:
    """Bars per selection window: `data.window`, or fewer when no asset has that many bars
    inside `span` (the selection part of validation); windows never leave the span."""
    a = np.datetime64(span["start"].replace(tzinfo=None), "us")
    b = np.datetime64(span["end"].replace(tzinfo=None), "us")
    longest = max(int(np.searchsorted(s.ts, b) - np.searchsorted(s.ts, a)) for s in sequences)
    window = min(config.data.window, longest)
    need = config.loss.ctx_min + config.model.horizon + 1
    if window < need:
        raise InvalidInput(
            f"the selection part of validation {span['start'].isoformat()} .. {span['end'].isoformat()} holds at most "
            f"{longest} bars per asset; a selection window needs loss.ctx_min + model.horizon + 1 = {need}",
            rule="too-few-bars",
            fix="raise --set select.share, lower loss.ctx_min or model.horizon, or re-ingest with a longer "
                "validation period (--split)",
        )
    return window


def select_checkpoint(config: Config, graphdef, abstract_params, checkpoint_dir: str, val_batches, *,
                      interval_s: float) -> dict[str, Any]:
    """Of the checkpoints kept, the one with the lowest JEPA loss on `val_batches` (windows
    inside the selection part of validation; the same windows and span draws for each).
    Returns {step, validation_loss, losses, params}."""
    import jax

    from strates.core.checkpoints import all_steps, restore_params

    loss_fn = jax.jit(make_loss(graphdef, config, interval_s=interval_s))
    key = jax.random.key(config.train.seed + 1)
    batches = [val_batches(i) for i in range(VALIDATION_BATCHES)]
    losses, best = [], None
    for step in all_steps(checkpoint_dir):
        params = restore_params(checkpoint_dir, abstract_params, step=step)
        value = float(np.mean([loss_fn(params, b, jax.random.fold_in(key, i))[0] for i, b in enumerate(batches)]))
        losses.append({"step": step, "loss": value})
        if best is None or value < best[1]:
            best = (step, value, params)
    return {"step": best[0], "validation_loss": best[1], "losses": losses, "params": best[2]}


def evaluate(config: Config, model, sequences, scaler, *, train: dict, scored: dict, interval_s: float
             ) -> dict[str, Any]:
    """RankMe and per-dimension std of h_t on `scored` ({start, end}: the diagnostic part of
    validation, which chose nothing); linear probes fitted on `train` states, scored on
    `scored` states, vs raw features. A row's target (bars t+1..t+horizon) lies inside its
    own period, so no training target reaches into validation and no scored target past
    the end of `scored`."""
    from strates.jepa.model import embed_sequences
    from strates.jepa.probe import forward_targets, period_rows, probe_report, rankme, trailing_window

    states = embed_sequences(model, sequences, scaler, interval_s=interval_s)
    periods = {"train": train, "scored": scored}
    parts: dict[str, dict[str, list]] = {p: {"h": [], "raw": [], "raw_window": [], "vol": [], "sign": []}
                                         for p in periods}
    for s, h in zip(sequences, states, strict=True):
        vol, sign = forward_targets(s.log_returns, config.probe.horizon)
        raw_win = trailing_window(s.features, config.probe.raw_window)
        for name, span in periods.items():
            # the first bars have too little history to judge
            mask = period_rows(s.ts, span["start"], span["end"], horizon=config.probe.horizon,
                               skip=config.loss.ctx_min)
            for key, values in (("h", h), ("raw", s.features), ("raw_window", raw_win), ("vol", vol), ("sign", sign)):
                parts[name][key].append(values[mask])
    cat = {p: {k: np.concatenate(v) for k, v in d.items()} for p, d in parts.items()}
    if not len(cat["train"]["vol"]) or not len(cat["scored"]["vol"]):
        raise InvalidInput(
            f"no bar of the training or diagnostic period ({scored['start'].isoformat()} .. "
            f"{scored['end'].isoformat()}) has a {config.probe.horizon}-bar probe target inside it",
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
        "per_dim_std": {"mean": float(std.mean()), "min": float(std.min()), "max": float(std.max()),
                        "isotropic": float(1.0 / np.sqrt(val_h.shape[1]))},
        "probe": report,
    }
