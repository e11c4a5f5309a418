"""The `bench` artifact of `chaos bench lyapunov`, typed: one row per system and the scores
of each estimator (`systems.parquet` holds the same rows)."""

from __future__ import annotations

import dataclasses
import math

from strates.bench.config import Config
from strates.bench.estimators import EstimatorScore
from strates.core.table import Table, table
from strates.core.typed import Typed

KIND = "bench"
COMMAND = "bench lyapunov"
SYSTEMS_FILE = "systems.parquet"
ESTIMATORS = (("multiverse", "multiverse proxy"), ("rosenstein", "Rosenstein (nolds)"))


@dataclasses.dataclass(frozen=True)
class SystemResult:
    """One system: exponents per period of the system (λ × period, dimensionless):
    `lambda_true` (published, or known by construction for a control), `lambda_multiverse`
    (the multiverse proxy per bar × points per period), `lambda_rosenstein`; `period` in the
    system's time unit; `seconds` for the series and its pipeline (ingest -> multiverse) and for
    Rosenstein; `multiverse` the artifact it read."""

    name: str
    kind: str
    dims: int
    period: float
    lambda_true: float
    lambda_multiverse: float
    lambda_rosenstein: float
    seconds: float
    seconds_rosenstein: float
    multiverse: str


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Per system (`systems`), the score of each estimator (`multiverse`, `rosenstein`), and
    the wall time of the run."""

    systems: tuple[SystemResult, ...]
    multiverse: EstimatorScore
    rosenstein: EstimatorScore
    seconds: float = 0.0

    def estimator(self, name: str) -> EstimatorScore:
        return getattr(self, name)

    def to_json(self) -> dict:
        """What `--json` prints: the systems and the summary."""
        return {"systems": [dataclasses.asdict(s) for s in self.systems],
                "summary": {name: dataclasses.asdict(self.estimator(name)) for name, _ in ESTIMATORS}}


@dataclasses.dataclass(frozen=True)
class Summary:
    """How the series were made: points per period, bars per system, observation noise,
    the chain preset, and the integrator."""

    points_per_period: int
    length: int
    noise: float
    chain: str
    integrator: str


@dataclasses.dataclass(frozen=True)
class Bench(Typed[Config, Summary, Metrics]):
    KIND = KIND
    COMMAND = COMMAND


def _num(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def tables(b: Bench) -> list[Table]:
    """The systems (exponents per period) and the estimators' scores."""
    rows = [[s.name, s.kind, _num(s.lambda_true), _num(s.lambda_multiverse), _num(s.lambda_rosenstein),
             f"{s.seconds:.0f}"] for s in b.metrics.systems]
    systems = table(["system", "kind", "truth", "multiverse", "Rosenstein", "seconds"], rows, left=2,
                    title=f"Maximal Lyapunov exponents per period ({b.summary.points_per_period} bars per period, "
                          f"noise {b.summary.noise:g})")
    score_rows = []
    for name, label in ESTIMATORS:
        s = b.metrics.estimator(name)
        score_rows.append([label, _num(s.spearman), _num(s.spearman_p, 3), _num(s.sign_accuracy),
                           _num(s.median_abs_log_ratio), f"{s.nonpositive_chaotic}/{s.chaotic}"])
    scores = table(["estimator", "Spearman ρ (chaotic)", "p", "sign accuracy (all)", "median |log ratio|",
                    "chaotic read <= 0"], score_rows, left=1, title="Estimators against the truth",
                   caption="ρ ranks the chaotic systems' exponents; the sign reads > 0 as chaotic (limit cycle and "
                           "random walk have exponent 0: not chaotic).")
    return [systems, scores]
