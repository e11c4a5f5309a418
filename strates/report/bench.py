"""The report section of `chaos bench lyapunov`: each estimator against the truth (a
scatter on symmetric-log axes: exponents per period can be negative or 0) and the tables."""

from __future__ import annotations

from typing import Any

import numpy as np

from strates.bench import artifact as bench_artifact
from strates.report.document import Facts, Figure, Section, Text, num
from strates.report.figures import _figure, _png

MARKERS = {"chaotic": "o", "control": "s"}


def scatter(rows: Any, *, dpi: int = 110) -> bytes:
    """Truth against each estimator, one panel per estimator; exponents per period on
    symmetric-log axes (linear within ±0.1), the diagonal for reference, controls as squares."""
    truth = np.array([r.lambda_true for r in rows])
    lim = max(float(np.nanmax(np.abs([[r.lambda_true, r.lambda_multiverse, r.lambda_rosenstein] for r in rows]))),
              1.0) * 1.5
    with _figure(4.2, dpi=dpi) as fig:
        axes = fig.subplots(1, len(bench_artifact.ESTIMATORS), sharex=True, sharey=True)
        for ax, (name, label) in zip(np.atleast_1d(axes), bench_artifact.ESTIMATORS, strict=True):
            est = np.array([getattr(r, f"lambda_{name}") for r in rows])
            for kind, marker in MARKERS.items():
                pick = np.array([r.kind == kind for r in rows]) & np.isfinite(est)
                ax.scatter(truth[pick], est[pick], marker=marker, s=22, alpha=0.8, label=kind,
                           color="#1f5fbf" if kind == "chaotic" else "#c0392b")
            ax.plot([-lim, lim], [-lim, lim], color="#888888", linewidth=0.8, linestyle="--")
            ax.set_xscale("symlog", linthresh=0.1)
            ax.set_yscale("symlog", linthresh=0.1)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_xlabel("true exponent per period")
            ax.set_ylabel(f"{label}, per period")
            ax.set_title(label)
            ax.legend(loc="upper left")
        return _png(fig, dpi)


def section(b: bench_artifact.Bench) -> Section:
    """The benchmark: how the series were made, the scores, the scatter, the systems."""
    m, s = b.metrics, b.summary
    systems, scores = bench_artifact.tables(b)
    mv, ros = m.multiverse, m.rosenstein
    return Section("bench", "Benchmark: Lyapunov exponents of known systems", (
        Text("Each system is sampled at a fixed number of bars per period, so an exponent per bar times the bars per "
             "period is an exponent per period (dimensionless): the scale on which systems are compared. The "
             "multiverse proxy comes from the generic-series pipeline (tokenize, JEPA, CFM, multiverse futures-only "
             "on the test period); Rosenstein's estimator reads the same series' first channel."),
        Facts((("systems", f"{len(m.systems)} ({mv.chaotic} chaotic)"), ("bars per period", str(s.points_per_period)),
               ("bars per system", str(s.length)), ("observation noise", f"{s.noise:g} × channel std"),
               ("chain preset", s.chain), ("integrator", s.integrator),
               ("Spearman ρ, multiverse / Rosenstein", f"{num(mv.spearman)} / {num(ros.spearman)}"),
               ("sign accuracy, multiverse / Rosenstein", f"{num(mv.sign_accuracy)} / {num(ros.sign_accuracy)}"))),
        scores,
        Figure("bench_lyapunov", scatter(m.systems), "Each estimator against the truth, per period (symmetric log "
               "axes, linear within ±0.1). On the dashed diagonal an estimator is exact; circles are chaotic flows, "
               "squares the controls (a stable fixed point, a limit cycle, an Ornstein–Uhlenbeck process, a random "
               "walk)."),
        systems,
    ))
