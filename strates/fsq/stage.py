"""`chaos tokenize`: fit a tokenizer on a dataset fold's training period (or reuse one),
then write every bar's code as a `tokens` artifact.

Artifacts:

- `tokenizer` (parent: dataset): `checkpoints/` (Orbax: params and optimizer state per
  saved step), `normalizer.json`.
- `tokens` (parents: tokenizer, dataset): `tokens.parquet` (`asset, ts, code`, then the
  normalised features `f_<name>`), `codebook.parquet` (`code, c0..c{d-1}`: each code's FSQ
  level vector in [-1, 1]).

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
from collections.abc import Mapping
from typing import Any

import numpy as np

from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import from_dict
from strates.core.progress import Reporter, training_log
from strates.core.workspace import Workspace
from strates.data import artifact as dataset_artifact
from strates.data.split import PERIODS, Fold, Period
from strates.fsq.artifact import TOKENIZER, TOKENS, encoder, normalizer, read_tokenizer
from strates.fsq.config import DEFAULT_PRESET, PRESETS, Config
from strates.fsq.features import (
    FEATURES,
    Normalizer,
    raw_features,
    series_by_asset,
    series_feature_names,
    series_features,
)


@dataclasses.dataclass(frozen=True)
class TokensConfig:
    """What the tokens artifact's id hashes besides its parents: the fold whose periods its
    code-use metrics are measured on."""

    fold: str | None = None


@dataclasses.dataclass(frozen=True)
class Result:
    tokenizer: artifacts.Manifest
    tokens: artifacts.Manifest
    reused_tokenizer: bool
    reused_tokens: bool


def feature_names(dataset: dataset_artifact.Dataset) -> tuple[str, ...]:
    """The features of a dataset: FEATURES for bars, `d_<x>, z_<x>` per channel x for series."""
    return series_feature_names(dataset.summary.channels) if dataset.is_series else FEATURES


def _features(job: template.Job, config: Config, rep: Reporter):
    """(per-bar raw features `asset, ts, *names`, names) of the job's dataset."""
    from strates.data.ingest import load_bars

    manifest = job.parent("dataset")
    dataset = dataset_artifact.read(manifest)
    with rep.task("computing features"):
        bars = load_bars(job.ws, manifest)
        if dataset.is_series:
            return (series_features(bars, dataset.summary.channels, window=config.data.vol_window),
                    feature_names(dataset))
        return raw_features(bars, vol_window=config.data.vol_window,
                            volume_window=config.data.volume_window), FEATURES


# -- the tokenizer -------------------------------------------------------------------------
def _prepare_tokenizer(config: Config, parents: Mapping[str, artifacts.Manifest]) -> Config:
    return dataclasses.replace(config, fold=dataset_artifact.read(parents["dataset"]).fold(config.fold).name)


def _build_tokenizer(job: template.Job[Config]) -> template.Output:
    config, rep = job.config, job.reporter
    fold = dataset_artifact.read(job.parent("dataset")).fold(config.fold)
    train = fold.train
    feats, names = _features(job, config, rep)
    norm = Normalizer.fit(feats, start=train.start, end=train.end, clip_quantile=config.data.clip_quantile,
                          names=names)
    series = series_by_asset(feats, norm, names)
    _, end64 = train.bounds64()
    train_series = [x[ts < end64] for ts, x in series.values()]

    from strates.fsq.train import fit, make_encoder

    steps = config.train.steps
    with rep.task(f"training tokenizer ({steps} steps)", total=steps) as update:
        graphdef, result = fit(config, train_series, checkpoint_dir=job.folder("checkpoints"),
                               on_log=training_log(update), names=names)
    if result.restored_from is not None:
        rep.info(f"resumed from the checkpoint at step {result.restored_from}")
    encode = make_encoder(graphdef)
    metrics: dict[str, Any] = {"steps": result.step,
                               "final_loss": result.history[-1]["loss"] if result.history else None}
    with rep.task("measuring codebook use and reconstruction"):
        per_period = _period_split(series, lambda x: encode(result.params, x),
                                   {"train": train, "validation": fold.validation}, codebook=config.model.codebook_size,
                                   names=names)
    metrics.update({name: dataclasses.asdict(m) for name, m in per_period.items()})
    job.writer.write_bytes("normalizer.json", norm.to_json())
    summary = {
        "features": list(names), "codebook_size": config.model.codebook_size, "levels": list(config.model.levels),
        "fold": fold.name, "restored_from_step": result.restored_from, "history": result.history,
    }
    return template.Output(metrics, summary, fitted={"train": train.to_dict()})


def _period_split(series, encode, periods: dict[str, Period], *, codebook: int, names: tuple[str, ...]):
    from strates.fsq.train import period_metrics

    parts: dict[str, tuple[list, list, list]] = {p: ([], [], []) for p in periods}
    for ts, x in series.values():
        idx, x_hat = encode(x)
        for name, period in periods.items():
            a, b = period.bounds64()
            mask = (ts >= a) & (ts < b)
            for out, values in zip(parts[name], (idx, x, x_hat), strict=True):
                out.append(values[mask])
    return {name: period_metrics(*(np.concatenate(v) for v in parts[name]), codebook_size=codebook, names=names)
            for name in periods if sum(len(c) for c in parts[name][0])}


TOKENIZER_STAGE: template.Stage[Config] = template.Stage(
    kind=TOKENIZER, command="tokenize", config=Config, build=_build_tokenizer, parents=("dataset",),
    presets=PRESETS, default_preset=DEFAULT_PRESET, prepare=_prepare_tokenizer, resume=True,
)


# -- the tokens ----------------------------------------------------------------------------
def _tokens_fold(parents: Mapping[str, artifacts.Manifest], name: str | None) -> Fold:
    """The fold the tokens are measured on: the named one, else the tokenizer's own fold when
    it was fitted on this dataset, else the dataset's first fold."""
    data, tok = dataset_artifact.read(parents["dataset"]), parents[TOKENIZER]
    if name is None and tok.parents.get("dataset") == data.id:
        name = tok.config.get("fold")
    return data.fold(name)


def _prepare_tokens(config: TokensConfig, parents: Mapping[str, artifacts.Manifest]) -> TokensConfig:
    fold = _tokens_fold(parents, config.fold)
    artifacts.check_fitted_before(parents[TOKENIZER], fold.test.start)
    return TokensConfig(fold=fold.name)


def _build_tokens(job: template.Job[TokensConfig]) -> template.Output:
    import polars as pl

    from strates.fsq.model import receptive_field
    from strates.fsq.quantize import codebook

    rep = job.reporter
    tok = read_tokenizer(job.parent(TOKENIZER))
    config = tok.config
    fold = _tokens_fold(job.parents, job.config.fold)
    feats, names = _features(job, config, rep)
    series = series_by_asset(feats, normalizer(job.ws, tok.manifest), names)
    encode = encoder(job.ws, tok)
    frames = []
    with rep.task(f"encoding {sum(len(x) for _, x in series.values()):,} bars"):
        for asset, (ts, x) in series.items():
            idx, _ = encode(x)
            frame = pl.DataFrame({"asset": asset, "ts": ts, "code": idx.astype(np.int16)})
            frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
            frames.append(frame.hstack(pl.DataFrame(x, schema=[f"f_{n}" for n in names])))
    table = pl.concat(frames)
    book = np.asarray(codebook(tuple(config.model.levels)))
    book_frame = pl.DataFrame({"code": np.arange(len(book), dtype=np.int16)}).hstack(
        pl.DataFrame(book.astype(np.float32), schema=[f"c{i}" for i in range(book.shape[1])])
    )
    metrics: dict[str, Any] = {"tokens": table.height, "assets": len(series)}
    for name in PERIODS:
        period = fold.period(name)
        part = table.filter((pl.col("ts") >= period.start) & (pl.col("ts") < period.end))
        if part.height:
            counts = np.bincount(part["code"].to_numpy().astype(np.int64), minlength=len(book))
            p = counts[counts > 0] / counts.sum()
            metrics[name] = {"tokens": part.height, "utilization": float((counts > 0).mean()),
                             "perplexity": float(np.exp(-(p * np.log(p)).sum()))}
    job.writer.write_parquet("tokens.parquet", table)
    job.writer.write_parquet("codebook.parquet", book_frame)
    summary = {
        "codebook_size": len(book), "levels": list(config.model.levels), "features": [f"f_{n}" for n in names],
        "fold": fold.name, "warmup_bars": receptive_field(depth=config.model.depth, kernel=config.model.kernel) - 1,
    }
    return template.Output(metrics, summary)


TOKENS_STAGE: template.Stage[TokensConfig] = template.Stage(
    kind=TOKENS, command="tokenize", config=TokensConfig, build=_build_tokens, parents=(TOKENIZER, "dataset"),
    prepare=_prepare_tokens,
)


def run(
    config: Config,
    ws: Workspace,
    *,
    dataset: str = "latest",
    tokenizer: str | None = None,
    force: bool = False,
    reporter: Reporter | None = None,
) -> Result:
    """Tokenize dataset `dataset` (a reference) with a new tokenizer fitted per `config`, or
    with the trained `tokenizer` (a reference; its own config then applies)."""
    data = artifacts.resolve(ws, dataset, stage="dataset")
    if tokenizer is not None:
        tok = template.Result(artifacts.current(artifacts.resolve(ws, tokenizer, stage=TOKENIZER)), True)
        fold = None
    else:
        tok = template.run(TOKENIZER_STAGE, config, ws, parents={"dataset": data}, force=force, reporter=reporter)
        fold = from_dict(Config, tok.manifest.config).fold
    tokens = template.run(TOKENS_STAGE, TokensConfig(fold=fold), ws,
                          parents={TOKENIZER: tok.manifest, "dataset": data}, force=force, reporter=reporter)
    return Result(tok.manifest, tokens.manifest, tok.reused, tokens.reused)


__all__ = ["TOKENIZER", "TOKENIZER_STAGE", "TOKENS", "TOKENS_STAGE", "Result", "TokensConfig", "run"]
