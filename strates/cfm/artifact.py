"""The `cfm` artifact, typed: what `chaos train-cfm` records and the agent and multiverse read.

`read(manifest)` types a manifest already held; `load(ws, ref)` resolves and types one.
`load_flows(ws, cfm)` is how a downstream stage gets the trained flows of the main coupling
with their `Scales`. `tables(cfm)` are the tables the CLI and the report both show.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

from strates.cfm.calibration import Calibration, Skill
from strates.cfm.config import Config, Coupling, Method
from strates.cfm.metrics import HorizonScore, PathScores
from strates.cfm.scale import Conditioner, ScaleConfig
from strates.core import artifacts
from strates.core.config import from_dict
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.core.workspace import Workspace
from strates.data.split import Period
from strates.jepa.artifact import States

KIND = "cfm"
COMMAND = "train-cfm"
# every forecast scored, with its label; the flow's own first
FORECASTS = (("cfm", "cfm"), ("cfm_recalibrated", "cfm, spread recalibrated"),
             ("cfm_shuffled", "cfm, shuffled condition"), ("random_walk", "random walk"),
             ("bootstrap", "bootstrap"), ("garch_t", "GARCH(1,1)-t"))
BASELINES = ("random_walk", "bootstrap", "garch_t")  # what the flow must beat
SHUFFLED = "shuffled_condition"  # the skill against the flow given another state's condition

__all__ = ["BASELINES", "COMMAND", "FORECASTS", "KIND", "SHUFFLED", "Calibration", "Cfm", "CouplingNfe",
           "CouplingStats", "Diversity", "HorizonScore", "MemberHistory", "Metrics", "NfeScore", "NfeTable",
           "PathScores", "PeriodScores", "Scales", "Skill", "Summary", "load", "load_flows", "read", "tables"]


@dataclasses.dataclass(frozen=True)
class Diversity:
    """Diversity of the sampled return paths: Vendi score and effective number of modes
    (mean over the first states scored)."""

    vendi: float
    effective_modes: float


@dataclasses.dataclass(frozen=True)
class PeriodScores:
    """The futures scored on one period [start, end): `states` scored with
    `futures_per_state` futures each. `forecasts`: `PathScores` of every forecast of
    `FORECASTS` on the same states (`cfm_recalibrated` only when a spread was fitted);
    `calibration`: per forecast, PIT histogram and interval coverage per horizon; `skill`:
    per horizon (`h1`, `h4`, ...), the flow's CRPS skill 1 − CRPS_cfm / CRPS_b against each
    baseline b of `BASELINES` and against itself with a shuffled condition (`SHUFFLED`),
    with a block-bootstrap interval over dates; `skill_recalibrated` the same for the
    recalibrated flow; diversity; the largest |‖state‖ − 1| of sampled states; the
    ensemble members' disagreement."""

    start: dt.datetime
    end: dt.datetime
    states: int
    futures_per_state: int
    forecasts: dict[str, PathScores]
    calibration: dict[str, tuple[Calibration, ...]]
    skill: dict[str, dict[str, Skill]]
    diversity: Diversity
    sphere_norm_max_error: float
    ensemble_disagreement: float
    skill_recalibrated: dict[str, dict[str, Skill]] = dataclasses.field(default_factory=dict)

    @property
    def period(self) -> Period:
        return Period(self.start, self.end)

    def forecast(self, name: str) -> PathScores | None:
        """The scores of forecast `name` (one of `FORECASTS`; None if not scored)."""
        return self.forecasts.get(name)

    def skill_values(self) -> dict[str, dict[str, float]]:
        """{horizon: {baseline: skill}} for the baselines (what `--json` prints)."""
        return {h: {b: s.value for b, s in row.items() if b in BASELINES} for h, row in self.skill.items()}


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
    couplings' pairing statistics; `spread`, the recalibration factor fitted on
    validation (1: none); `condition_used`: the flow beats itself given a shuffled
    condition at every horizon of validation (its skill against `SHUFFLED` is above 0);
    seconds."""

    couplings: tuple[CouplingStats, ...]
    validation: PeriodScores | None = None
    test: PeriodScores | None = None
    coupling_nfe: NfeTable | None = None
    spread: float = 1.0
    condition_used: bool | None = None
    seconds: float = 0.0

    def period(self, name: str) -> PeriodScores | None:
        """`validation` or `test`."""
        return getattr(self, name)

    def skill(self) -> dict[str, dict[str, dict[str, float]]]:
        """{period: {horizon: {baseline: CRPS skill}}} of the scored periods."""
        return {name: p.skill_values() for name in ("validation", "test") if (p := self.period(name)) is not None}


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
    """`scales.json`: the future horizon H, the state dimension D, the scale features'
    windows and training statistics (`strates.cfm.scale`), and the spread factor of the
    recalibration fitted on validation (1: none) applied to sampled returns."""

    horizon: int
    state_dim: int
    scale: ScaleConfig
    conditioner: Conditioner
    spread: float = 1.0

    def to_json(self) -> bytes:
        from strates.core.config import to_dict

        return json.dumps(to_dict(self)).encode()

    def observe(self, states: list[States]) -> list[States]:
        """The states with `h` replaced by each bar's observation `[N, D + k + 1]` (the JEPA
        state, the scale features, the log unit: `scale.observation`), what a consumer of
        the flows feeds them (`scale.split` takes it apart)."""
        from strates.cfm.scale import observation

        return [dataclasses.replace(s, h=observation(s.h, s.r, s.log_range, self.scale, self.conditioner))
                for s in states]

    @property
    def cond_dim(self) -> int:
        """The flow's condition: the state and the scale features."""
        return self.state_dim + len(self.conditioner.names)


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
        model = build_model(c.config, x_dim=sc.horizon * (sc.state_dim + 1), cond_dim=sc.cond_dim, seed=0)
        graphdef, params = nnx.split(model, nnx.Param)
        where = artifacts.location(ws, c.manifest, f"checkpoints/{c.summary.main}-m{m}")
        flows.append(nnx.merge(graphdef, restore_params(where, params)))
    return flows, sc


# -- tables -------------------------------------------------------------------------------
def _day(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d}"


def scores_table(c: Cfm, name: str) -> Table | None:
    """CRPS and interval coverage of the cumulative return per horizon, and the energy
    score of the paths, for every forecast scored on period `name` (None if unscored)."""
    p = c.metrics.period(name)
    if p is None:
        return None
    horizons = [h.horizon for h in p.forecasts["cfm"].horizons]
    columns = ["forecast"]
    for h in horizons:
        columns += [f"CRPS h={h}", f"cov 50/90 h={h}"]
    rows = []
    for key, label in FORECASTS:
        scores = p.forecast(key)
        if scores is None:
            continue
        cells = [label]
        for h in horizons:
            s: HorizonScore = scores.at(h)
            cells += [f"{s.crps:.5f}", f"{s.cov50:.2f} / {s.cov90:.2f}"]
        rows.append((*cells, f"{scores.energy_score:.5f}"))
    spread = (f" The recalibrated flow multiplies every future's deviation from its state's mean by "
              f"{c.metrics.spread:.3f},"
              " a factor fitted on validation (so its validation scores are in-sample)."
              if "cfm_recalibrated" in p.forecasts else "")
    return table(
        (*columns, "energy"), rows,
        title=f"{name} {_day(p.start)} .. {_day(p.end)}: {p.states:,} states x {p.futures_per_state} futures",
        caption="CRPS of the cumulative log return (lower is better) and the share of realised returns inside the "
                "50% and 90% intervals (nominal 0.50 / 0.90); energy score of the return paths. Every forecast on the "
                "same states; the shuffled-condition flow draws from another state's condition (h_t and scale "
                f"features) with the same unit and noise.{spread} Vendi score {p.diversity.vendi:.2f}, effective "
                f"modes {p.diversity.effective_modes:.2f}, ensemble disagreement {p.ensemble_disagreement:.4f}.",
    )


def _skill_cell(s: Skill) -> str:
    return f"{s.value:+.3f} [{s.lo:+.3f}, {s.hi:+.3f}]"


def skill_table(c: Cfm, name: str) -> Table | None:
    """The flow's CRPS skill against each baseline per horizon, with its bootstrap interval."""
    p = c.metrics.period(name)
    if p is None or not p.skill:
        return None
    horizons = list(p.skill)
    labels = dict(FORECASTS)
    against = [*BASELINES, SHUFFLED]
    rows = []
    for flow, skills in (("cfm", p.skill), ("cfm, spread recalibrated", p.skill_recalibrated)):
        for b in against:
            if skills and all(b in skills[h] for h in horizons):
                cells = (_skill_cell(skills[h][b]) for h in horizons)
                rows.append((flow, labels.get(b, "cfm, shuffled condition"), *cells))
    block = next(iter(p.skill[horizons[0]].values())).block
    return table(
        ("forecast", "against", *horizons), rows,
        title=f"{name}: CRPS skill 1 − CRPS_cfm / CRPS_baseline (above 0: the flow is better)",
        caption=f"95% intervals from a paired stationary block bootstrap over dates (mean block about {block:.1f} "
                "dates); all assets of a date are drawn together.",
    )


def calibration_table(c: Cfm, name: str) -> Table | None:
    """Interval coverage at every level and the PIT histogram's largest deviation from
    uniform, per forecast and horizon."""
    p = c.metrics.period(name)
    if p is None or not p.calibration:
        return None
    labels = dict(FORECASTS)
    levels = next(iter(p.calibration.values()))[0].levels
    rows = [(labels.get(key, key), f"h={cal.horizon}", *(f"{v:.2f}" for v in cal.coverage),
             f"{max(abs(d - 1.0) for d in cal.pit):.2f}")
            for key, _ in FORECASTS if key in p.calibration for cal in p.calibration[key]]
    return table(
        ("forecast", "horizon", *(f"cov {lv:.0%}" for lv in levels), "PIT max |density − 1|"), rows,
        title=f"{name}: calibration of the cumulative return",
        caption="Share of realised returns inside the central intervals (nominal: the column's level) and the "
                "largest deviation of the PIT histogram (10 bins) from the uniform density 1 (0: calibrated).",
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
    out = [t for name in ("validation", "test") for t in (scores_table(c, name), skill_table(c, name))]
    out += [nfe_table(c), couplings_table(c)]
    return [t for t in out if t is not None]
