"""The `cfm` artifact, typed: what `chaos train-cfm` records and the agent and multiverse read.

`read(manifest)` types a manifest already held; `load(ws, ref)` resolves and types one.
`load_flows(ws, cfm)` is how a downstream stage gets the trained flows of the main coupling
with their `Scales`. `tables(cfm)` are the tables the CLI and the report both show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from strates.cfm.config import Config, Coupling, Method
from strates.cfm.metrics import HorizonScore, PathScores
from strates.core import artifacts
from strates.core.config import from_dict
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.core.workspace import Workspace
from strates.data.split import Period

KIND = "cfm"
COMMAND = "train-cfm"
FORECASTS = (("cfm", "cfm"), ("bootstrap", "bootstrap"), ("gaussian_rw", "gaussian rw"))

__all__ = ["COMMAND", "FORECASTS", "KIND", "Cfm", "CouplingNfe", "CouplingStats", "Diversity", "HorizonScore",
           "MemberHistory", "Metrics", "NfeScore", "NfeTable", "PathScores", "PeriodScores", "Scales", "Summary",
           "load", "load_flows", "read", "tables"]


@dataclasses.dataclass(frozen=True)
class Diversity:
    """Diversity of the sampled return paths: Vendi score and effective number of modes
    (mean over the first states scored)."""

    vendi: float
    effective_modes: float


@dataclasses.dataclass(frozen=True)
class PeriodScores:
    """The futures scored on one period [start, end): `states` scored with
    `futures_per_state` futures each; the cfm's and the two baselines' `PathScores` on the
    same states; diversity; the largest |‖state‖ − 1| of sampled states; the ensemble
    members' disagreement."""

    start: dt.datetime
    end: dt.datetime
    states: int
    futures_per_state: int
    cfm: PathScores
    bootstrap: PathScores
    gaussian_rw: PathScores
    diversity: Diversity
    sphere_norm_max_error: float
    ensemble_disagreement: float

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)

    def forecast(self, name: str) -> PathScores:
        """The scores of forecast `name` (`cfm`, `bootstrap`, `gaussian_rw`)."""
        return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class NfeScore:
    """Validation CRPS of the cumulative return at the last horizon, and the energy score,
    with `nfe` vector-field evaluations."""

    nfe: int
    crps: float
    energy: float


@dataclasses.dataclass(frozen=True)
class CouplingNfe:
    coupling: Coupling
    scores: tuple[NfeScore, ...]


@dataclasses.dataclass(frozen=True)
class NfeTable:
    """Each coupling's first member sampled with `method` at several NFE, on validation."""

    method: Method
    horizon: int
    rows: tuple[CouplingNfe, ...]


@dataclasses.dataclass(frozen=True)
class CouplingStats:
    """A coupling on training batches: mean squared noise-to-future distance of the pairs,
    mean squared distance between the conditions paired, share of rows kept on their own."""

    coupling: Coupling
    transport_cost: float
    condition_distance: float
    identity_share: float


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Scores on the part of validation no upstream artifact chose on and on the test
    period (None when a period has no scorable state), the coupling x NFE table, the
    couplings' pairing statistics, seconds."""

    couplings: tuple[CouplingStats, ...]
    validation: PeriodScores | None = None
    test: PeriodScores | None = None
    coupling_nfe: NfeTable | None = None
    seconds: float = 0.0

    def period(self, name: str) -> PeriodScores | None:
        """`validation` or `test`."""
        return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class MemberHistory:
    """The training log of one flow: its coupling and ensemble member."""

    coupling: Coupling
    member: int
    history: tuple[dict[str, float], ...] = ()

    @property
    def name(self) -> str:
        """Its checkpoint folder under `checkpoints/`."""
        return f"{self.coupling}-m{self.member}"


@dataclasses.dataclass(frozen=True)
class Summary:
    """The couplings trained (the `main` one first), ensemble members of the main one,
    the fold, and each flow's training log."""

    couplings: tuple[Coupling, ...]
    main: Coupling
    ensemble: int
    fold: str
    history: tuple[MemberHistory, ...] = ()


@dataclasses.dataclass(frozen=True)
class Scales:
    """`scales.json`: the training-period std of log returns (the futures' return unit),
    the future horizon H and the state dimension D."""

    ret_scale: float
    horizon: int
    state_dim: int

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self)).encode()


@dataclasses.dataclass(frozen=True)
class Cfm(Typed[Config, Summary, Metrics]):
    """A cfm artifact: its `manifest`, resolved `config`, typed `summary` and `metrics`."""

    KIND = KIND
    COMMAND = COMMAND


read = Cfm.read
load = Cfm.load


def scales(ws: Workspace, cfm: Cfm | artifacts.Manifest) -> Scales:
    """The artifact's `scales.json`."""
    return from_dict(Scales, json.loads(ws.read_bytes(f"{KIND}/{Cfm.of(cfm).id}/scales.json")))


def load_flows(ws: Workspace, cfm: Cfm | artifacts.Manifest) -> tuple[list, Scales]:
    """The trained flows (`model.VectorField`) of the main coupling, one per ensemble
    member, and the artifact's `Scales`."""
    from flax import nnx

    from strates.cfm.model import build_model
    from strates.core.checkpoints import restore_params

    c = Cfm.of(cfm)
    sc = scales(ws, c)
    flows = []
    for m in range(c.summary.ensemble):
        model = build_model(c.config, x_dim=sc.horizon * (sc.state_dim + 1), cond_dim=sc.state_dim, seed=0)
        graphdef, params = nnx.split(model, nnx.Param)
        where = artifacts.location(ws, c.manifest, f"checkpoints/{c.summary.main}-m{m}")
        flows.append(nnx.merge(graphdef, restore_params(where, params)))
    return flows, sc


# -- tables -------------------------------------------------------------------------------
def _day(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d}"


def scores_table(c: Cfm, name: str) -> Table | None:
    """CRPS and interval coverage of the cumulative return per horizon, and the energy
    score of the paths, for the cfm and both baselines on period `name` (None if unscored)."""
    p = c.metrics.period(name)
    if p is None:
        return None
    horizons = [h.horizon for h in p.cfm.horizons]
    columns = ["forecast"]
    for h in horizons:
        columns += [f"CRPS h={h}", f"cov 50/90 h={h}"]
    rows = []
    for key, label in FORECASTS:
        scores = p.forecast(key)
        cells = [label]
        for h in horizons:
            s: HorizonScore = scores.at(h)
            cells += [f"{s.crps:.5f}", f"{s.cov50:.2f} / {s.cov90:.2f}"]
        rows.append((*cells, f"{scores.energy_score:.5f}"))
    return table(
        (*columns, "energy"), rows,
        title=f"{name} {_day(p.start)} .. {_day(p.end)}: {p.states:,} states x {p.futures_per_state} futures",
        caption="CRPS of the cumulative log return (lower is better) and the share of realised returns inside the "
                "50% and 90% intervals (nominal 0.50 / 0.90); energy score of the return paths. Baselines on the same "
                f"dates. Vendi score {p.diversity.vendi:.2f}, effective modes {p.diversity.effective_modes:.2f}, "
                f"ensemble disagreement {p.ensemble_disagreement:.4f}.",
    )


def nfe_table(c: Cfm) -> Table | None:
    """Validation CRPS at the last horizon by coupling and number of function evaluations."""
    t = c.metrics.coupling_nfe
    if t is None or not t.rows:
        return None
    nfes = [s.nfe for s in t.rows[0].scores]
    return table(("coupling", *(f"NFE {n}" for n in nfes)),
                 [(str(r.coupling), *(f"{s.crps:.5f}" for s in r.scores)) for r in t.rows],
                 title=f"validation CRPS of the cumulative return at h={t.horizon}, by coupling and NFE ({t.method})")


def couplings_table(c: Cfm) -> Table | None:
    """How each coupling pairs noise with futures on training batches."""
    if not c.metrics.couplings:
        return None
    return table(("coupling", "transport cost", "condition distance", "pairs on own condition"),
                 [(str(s.coupling), f"{s.transport_cost:.4f}", f"{s.condition_distance:.3f}",
                   f"{s.identity_share:.1%}") for s in c.metrics.couplings],
                 title=f"couplings on training batches (main: {c.summary.main}, ensemble of {c.summary.ensemble})",
                 caption="Mean squared noise-to-future distance of the pairs, mean squared distance between the "
                         "conditions paired, share of rows kept on their own condition.")


def tables(c: Cfm) -> list[Table]:
    """What `chaos train-cfm` prints (the report shows the same tables)."""
    out = [scores_table(c, "validation"), scores_table(c, "test"), nfe_table(c), couplings_table(c)]
    return [t for t in out if t is not None]
