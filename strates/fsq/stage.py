"""`chaos tokenize`: fit a tokenizer on a dataset fold's training period (or reuse one),
then write every bar's code as a `tokens` artifact.

Artifacts:

| stage | parents | files |
| ----- | ------- | ----- |
| `tokenizer` | dataset | `checkpoints/` (Orbax: params and optimizer state per saved step), `normalizer.json` |
| `tokens` | dataset, tokenizer | `tokens.parquet` (`asset, ts, code`, then the normalised features `f_<name>`), `codebook.parquet` (`code, c0..c{d-1}`: each code's FSQ level vector in [-1, 1]) |

The tokenizer manifest records the time range it was fitted on; reusing a tokenizer on
another dataset fails loudly if that range reaches into the new dataset's test period.
The tokenizer selects nothing on validation: it trains a fixed number of steps and keeps
the last checkpoint, and its validation metrics (code usage, reconstruction) are reports,
not choices, so its manifest records no `selected` range. (The default
`loss.usage_weight` was picked by hand from validation utilization on the embedded
dataset; that is a one-off design choice, not a per-run selection.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import time
from typing import Any

import numpy as np

from strates.core import artifacts
from strates.core.config import from_dict, to_dict
from strates.core.errors import ConfigError
from strates.core.progress import NullReporter, Reporter, training_log
from strates.core.workspace import Workspace
from strates.fsq.config import Config
from strates.fsq.features import FEATURES, Normalizer, raw_features, series_by_asset

TOKENIZER = "tokenizer"
TOKENS = "tokens"


@dataclasses.dataclass(frozen=True)
class Result:
    tokenizer: artifacts.Manifest
    tokens: artifacts.Manifest
    reused_tokenizer: bool
    reused_tokens: bool


def _fold(dataset: artifacts.Manifest, name: str | None) -> dict:
    folds = dataset.summary["split"]["folds"]
    if name is None:
        return folds[0]
    for fold in folds:
        if fold["name"] == name:
            return fold
    raise ConfigError(
        f"dataset {dataset.id} has no fold {name!r}", fix=f"choose one of: {', '.join(f['name'] for f in folds)}",
        field="fold",
    )


def _checkpoint_dir(ws: Workspace, writer_or_manifest) -> str:
    rel = f"{writer_or_manifest.stage}/{writer_or_manifest.id}/checkpoints"
    return ws.local_path(rel) or ws.uri(rel)


def run(
    config: Config,
    ws: Workspace,
    *,
    dataset: str = "latest",
    tokenizer: str | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
) -> Result:
    """Tokenize dataset `dataset` (a reference) with a new or reused tokenizer."""
    rep = reporter or NullReporter()
    data = artifacts.resolve(ws, dataset, stage="dataset")
    from strates.data.ingest import load_bars

    with rep.task("computing features"):
        bars = load_bars(ws, data)

    if tokenizer is not None:
        tok = artifacts.resolve(ws, tokenizer, stage=TOKENIZER)
        config = from_dict(Config, tok.config)
        fold = _fold(data, config.fold if tok.parents.get("dataset") == data.id else None)
        artifacts.check_fitted_before(tok, fold["test"]["start"])
        reused_tok = True
    else:
        fold = _fold(data, config.fold)
        config = dataclasses.replace(config, fold=fold["name"])
        tok, reused_tok = _tokenizer(config, ws, data, fold, bars, force=force, rep=rep)

    normalizer = Normalizer.from_json(ws.read_bytes(f"{TOKENIZER}/{tok.id}/normalizer.json"))
    feats = raw_features(bars, volume_window=config.data.volume_window)
    series = series_by_asset(feats, normalizer)

    tokens_config = {"fold": fold["name"]}
    parents = {"dataset": data.id, TOKENIZER: tok.id}
    tokens_id, existing = artifacts.lookup(ws, TOKENS, tokens_config, parents, force=force)
    if existing is not None:
        return Result(tok, existing, reused_tok, True)
    t0 = time.perf_counter()
    encode = _load_encoder(ws, tok, config)
    with rep.task(f"encoding {sum(len(x) for _, x in series.values()):,} bars"):
        encoded = {asset: encode(x) for asset, (_, x) in series.items()}
    tokens = _write_tokens(
        ws, tokens_id, tokens_config, parents, config, fold, series, encoded, seconds_start=t0
    )
    return Result(tok, tokens, reused_tok, False)


def _tokenizer(config: Config, ws, data, fold, bars, *, force, rep):
    parents = {"dataset": data.id}
    resolved = to_dict(config)
    tok_id, existing = artifacts.lookup(ws, TOKENIZER, resolved, parents, force=force)
    if existing is not None:
        return existing, True
    t0 = time.perf_counter()
    train_start, train_end = fold["train"]["start"], fold["train"]["end"]
    feats = raw_features(bars, volume_window=config.data.volume_window)
    normalizer = Normalizer.fit(feats, start=train_start, end=train_end, clip_quantile=config.data.clip_quantile)
    series = series_by_asset(feats, normalizer)
    end64 = np.datetime64(train_end.replace(tzinfo=None), "us")
    train_series = [x[ts < end64] for ts, x in series.values()]

    from strates.fsq.train import fit

    writer = artifacts.begin(ws, TOKENIZER, tok_id, resume=True)
    steps = config.train.steps
    with rep.task(f"training tokenizer ({steps} steps)", total=steps) as update:
        graphdef, result = fit(config, train_series, checkpoint_dir=_checkpoint_dir(ws, writer),
                               on_log=training_log(update))
    if result.restored_from is not None:
        rep.info(f"resumed from the checkpoint at step {result.restored_from}")

    from strates.fsq.train import make_encoder

    encode = make_encoder(graphdef)
    metrics: dict[str, Any] = {"steps": result.step, "final_loss": result.history[-1]["loss"] if result.history else None}
    val_start, val_end = fold["validation"]["start"], fold["validation"]["end"]
    with rep.task("measuring codebook use and reconstruction"):
        per_period = _period_split(series, lambda x: encode(result.params, x), {
            "train": (train_start, train_end), "validation": (val_start, val_end)
        }, codebook=config.model.codebook_size)
    metrics.update({name: m.to_dict() for name, m in per_period.items()})
    metrics["seconds"] = round(time.perf_counter() - t0, 2)
    writer.write_bytes("normalizer.json", normalizer.to_json())
    writer.add_existing("checkpoints")
    summary = {
        "features": list(FEATURES),
        "codebook_size": config.model.codebook_size,
        "levels": list(config.model.levels),
        "fold": fold["name"],
        "restored_from_step": result.restored_from,
        "history": result.history,
    }
    manifest = writer.commit(
        config=resolved, parents=parents, metrics=metrics, summary=summary,
        fitted={"train": {"start": train_start, "end": train_end}},
    )
    return manifest, False


def _period_split(series, encode, periods: dict[str, tuple[dt.datetime, dt.datetime]], *, codebook: int):
    from strates.fsq.train import period_metrics

    codes: dict[str, list] = {p: [] for p in periods}
    xs: dict[str, list] = {p: [] for p in periods}
    hats: dict[str, list] = {p: [] for p in periods}
    for ts, x in series.values():
        idx, x_hat = encode(x)
        for name, (start, end) in periods.items():
            mask = (ts >= np.datetime64(start.replace(tzinfo=None), "us")) & (ts < np.datetime64(end.replace(tzinfo=None), "us"))
            codes[name].append(idx[mask])
            xs[name].append(x[mask])
            hats[name].append(x_hat[mask])
    return {
        name: period_metrics(np.concatenate(codes[name]), np.concatenate(xs[name]), np.concatenate(hats[name]),
                             codebook_size=codebook)
        for name in periods
        if sum(len(c) for c in codes[name])
    }


def _load_encoder(ws: Workspace, tok: artifacts.Manifest, config: Config):
    from flax import nnx

    from strates.core.checkpoints import restore_params
    from strates.fsq.train import build_model, make_encoder, split_model

    graphdef, params = split_model(nnx.eval_shape(lambda: build_model(config.model, seed=config.train.seed)))
    params = restore_params(_checkpoint_dir(ws, tok), params)
    encode = make_encoder(graphdef)
    return lambda x: encode(params, x)


def _write_tokens(ws, tokens_id, tokens_config, parents, config, fold, series, encoded, *, seconds_start):
    import polars as pl

    from strates.fsq.quantize import codebook

    frames = []
    for asset, (ts, x) in series.items():
        idx, _ = encoded[asset]
        frame = pl.DataFrame({"asset": asset, "ts": ts, "code": idx.astype(np.int16)})
        frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
        frames.append(frame.hstack(pl.DataFrame(x, schema=[f"f_{n}" for n in FEATURES])))
    table = pl.concat(frames)
    book = np.asarray(codebook(tuple(config.model.levels)))
    book_frame = pl.DataFrame({"code": np.arange(len(book), dtype=np.int16)}).hstack(
        pl.DataFrame(book.astype(np.float32), schema=[f"c{i}" for i in range(book.shape[1])])
    )
    metrics: dict[str, Any] = {"tokens": table.height, "assets": len(series)}
    for name in ("train", "validation", "test"):
        start, end = fold[name]["start"], fold[name]["end"]
        part = table.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        if part.height:
            codes = part["code"].to_numpy().astype(np.int64)
            counts = np.bincount(codes, minlength=len(book))
            p = counts[counts > 0] / counts.sum()
            metrics[name] = {
                "tokens": part.height,
                "utilization": float((counts > 0).mean()),
                "perplexity": float(np.exp(-(p * np.log(p)).sum())),
            }
    writer = artifacts.begin(ws, TOKENS, tokens_id)
    try:
        writer.write_parquet("tokens.parquet", table)
        writer.write_parquet("codebook.parquet", book_frame)
        metrics["seconds"] = round(time.perf_counter() - seconds_start, 2)
        from strates.fsq.model import receptive_field

        summary = {
            "codebook_size": len(book),
            "levels": list(config.model.levels),
            "features": [f"f_{n}" for n in FEATURES],
            "fold": fold["name"],
            "warmup_bars": receptive_field(depth=config.model.depth, kernel=config.model.kernel) - 1,
        }
        return writer.commit(config=tokens_config, parents=parents, metrics=metrics, summary=summary)
    except BaseException:
        writer.abort()
        raise


def load_tokens(ws: Workspace, manifest: artifacts.Manifest):
    """A tokens artifact's table (`asset, ts, code, f_*`) as a polars DataFrame."""
    import polars as pl

    return pl.read_parquet(io.BytesIO(ws.read_bytes(f"{manifest.stage}/{manifest.id}/tokens.parquet")))


__all__ = ["Result", "run", "load_tokens", "TOKENIZER", "TOKENS"]
