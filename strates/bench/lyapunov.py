"""`chaos bench lyapunov`: is the multiverse Lyapunov proxy a measure of chaos? Ranked
against published exponents, beside a classical estimator on the same series.

For each system (`strates.bench.systems`: dysts flows and four controls):
1. a trajectory sampled at `points_per_period` bars per period (all channels, optional
   observation noise) on a synthetic hourly clock;
2. the generic-series pipeline with the chain preset (`bench` by default): `ingest
   --format series` (the system's channels; the dataset's own time split), tokenize,
   train-jepa, train-cfm, and multiverse futures-only on the test period. The proxy per bar
   times `points_per_period` is the estimate per period;
3. Rosenstein's estimator on the same series (`estimators.rosenstein`), per period.
Every artifact of a system's chain is an ordinary artifact of the workspace (reused when
the system, sampling and presets are unchanged). The `bench` artifact (no parents: it makes
its own datasets) holds `systems.parquet` and, in the manifest, each system's row, each
estimator's scores (`estimators.score`) and the runtimes.
"""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np

from strates.bench import artifact, estimators
from strates.bench import systems as catalogue
from strates.bench.artifact import Bench, SystemResult
from strates.bench.config import DEFAULT_PRESET, PRESETS, Config
from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.progress import NullReporter, Reporter
from strates.core.workspace import Workspace

START = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # the synthetic clock's first bar
CHAIN = ("tokenizer", "tokens", "jepa", "cfm")
ONLY_MAIN_COUPLING = ("coupling.compare=false",)


def prepare(config: Config, parents) -> Config:
    """Refuses an unknown system name before any work."""
    for name in config.systems:
        catalogue.system(name)
    return config


def frame(name: str, config: Config):
    """The series of system `name` as the generic-series ingest reads it (`system` and one
    column per channel, `x0`, `x1`, ...; a regular hourly index), and the raw array."""
    import polars as pl

    x = catalogue.trajectory(name, config.length, points_per_period=config.points_per_period, noise=config.noise,
                             seed=config.seed)
    return pl.DataFrame({"system": [name] * len(x), **{f"x{i}": x[:, i] for i in range(x.shape[1])}}), x


def chain(data, config: Config, ws: Workspace, *, reporter: Reporter) -> artifacts.Manifest:
    """A system's series `data` (`frame`) through ingest -> tokenize -> train-jepa ->
    train-cfm -> multiverse futures-only, each stage with the chain preset; returns the
    multiverse artifact."""
    from strates import pipeline
    from strates.data.ingest import ingest_series
    from strates.multiverse import FUTURES_STAGE, run_futures

    previous = ingest_series(data, ws, step=dt.timedelta(seconds=config.interval_seconds), start=START,
                             reporter=reporter).manifest
    stages = {s.kind: s for s in pipeline.stages()}
    for kind in CHAIN:
        stage = stages[kind]
        extra = ONLY_MAIN_COUPLING if kind == "cfm" else ()  # the proxy reads the main coupling's flow only
        result = template.run(stage, stage.configure([config.chain], extra), ws, parents={stage.parents[0]: previous},
                              reporter=reporter)
        previous = result.manifest
    return run_futures(FUTURES_STAGE.configure([config.chain]), ws, cfm=previous, reporter=reporter).manifest


def lambda_per_period(multiverse: artifacts.Manifest, points_per_period: int) -> float:
    """The multiverse proxy of a futures-only artifact, per bar x bars per period."""
    return float(multiverse.metrics["lyapunov_per_bar"]) * points_per_period


def build(job: template.Job[Config]) -> template.Output:
    config, ws, rep = job.config, job.ws, job.reporter
    rows: list[SystemResult] = []
    for i, name in enumerate(config.systems):
        s = catalogue.system(name)
        with rep.task(f"[{i + 1}/{len(config.systems)}] {name} ({s.kind}, {s.dims} channels)"):
            t0 = time.perf_counter()
            data, x = frame(name, config)
            mv = chain(data, config, ws, reporter=NullReporter())
            seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            try:
                ros = estimators.rosenstein(x, dims=s.dims, points_per_period=config.points_per_period)
            except (ValueError, np.linalg.LinAlgError):  # too few neighbours: no estimate, scored as wrong
                ros = math.nan
            rows.append(SystemResult(
                name=name, kind=s.kind, dims=s.dims, period=s.period, lambda_true=s.lambda_per_period,
                lambda_multiverse=lambda_per_period(mv, config.points_per_period), lambda_rosenstein=ros,
                seconds=round(seconds, 2), seconds_rosenstein=round(time.perf_counter() - t1, 2), multiverse=mv.ref))
            rep.info(f"{name}: truth {s.lambda_per_period:.3f}, multiverse {rows[-1].lambda_multiverse:.3f}, "
                     f"Rosenstein {ros:.3f} per period ({seconds:.0f} s)")
    truth = [r.lambda_true for r in rows]
    chaotic = [r.kind == "chaotic" for r in rows]
    metrics = artifact.Metrics(
        systems=tuple(rows),
        multiverse=estimators.score(truth, [r.lambda_multiverse for r in rows], chaotic),
        rosenstein=estimators.score(truth, [r.lambda_rosenstein for r in rows], chaotic))
    job.writer.write_parquet(artifact.SYSTEMS_FILE, _frame(rows))
    summary = artifact.Summary(points_per_period=config.points_per_period, length=config.length,
                               noise=config.noise, chain=config.chain,
                               integrator=f"scipy DOP853, rtol = atol = {catalogue.RTOL:g}")
    return template.Output(to_dict(metrics), to_dict(summary))


def _frame(rows: list[SystemResult]):
    import dataclasses

    import polars as pl

    return pl.DataFrame([dataclasses.asdict(r) for r in rows])


STAGE: template.Stage[Config] = template.Stage(
    kind=artifact.KIND, command=artifact.COMMAND, config=Config, build=build, parents=(), presets=PRESETS,
    default_preset=DEFAULT_PRESET, prepare=prepare)


def compilation_cache() -> str | None:
    """Turn on JAX's persistent compilation cache (`$CHAOS_JAX_CACHE`, default
    `~/.cache/chaos/jax`; `CHAOS_JAX_CACHE=off` leaves it off). Every system's models have
    the same shapes, so after the first system the stages load their compiled programs
    instead of compiling them again (measured: the JEPA stage 46 s -> 11 s, bench preset).
    Returns the folder, or None when off."""
    import os
    from pathlib import Path

    import jax

    folder = os.environ.get("CHAOS_JAX_CACHE", str(Path.home() / ".cache" / "chaos" / "jax"))
    if folder.lower() == "off":
        return None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    return folder


def run(config: Config, ws: Workspace, *, force: bool = False, reporter: Reporter | None = None) -> template.Result:
    """Run the benchmark (see the module docstring) with the compilation cache on; `force`
    rebuilds the bench artifact (each system's chain is reused when unchanged: its ids hash
    the system's series and the presets)."""
    compilation_cache()
    return template.run(STAGE, config, ws, parents={}, force=force, reporter=reporter)


def read(manifest: artifacts.Manifest) -> Bench:
    return Bench.read(manifest)
