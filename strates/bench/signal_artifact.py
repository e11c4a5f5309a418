"""The `bench-signal` artifact of `chaos bench signal`, typed: per planted strength kappa,
what each stage recovered of the edge (`kappas.parquet` holds the same rows, flat)."""

from __future__ import annotations

import dataclasses
import math

from strates.bench.signal_config import Config
from strates.core.table import Table, table
from strates.core.typed import Typed

KIND = "bench-signal"
COMMAND = "bench signal"
KAPPAS_FILE = "kappas.parquet"
DSR_BAR = 0.95  # a deflated Sharpe ratio at or above this is a discovery


@dataclasses.dataclass(frozen=True)
class CostRow:
    """At one cost level (bps per side), on the agent's test bars: the agent's Sharpe and
    DSR, the oracle's Sharpe, and the multiverse filter's Sharpe difference (filtered minus
    deterministic) with its interval; `filter_helps` when that interval is above 0."""

    cost_bps: float
    agent_sharpe: float
    dsr: float
    oracle_sharpe: float
    filter_delta_sharpe: float
    filter_delta_lo: float
    filter_delta_hi: float
    filter_helps: bool


@dataclasses.dataclass(frozen=True)
class KappaResult:
    """One planted strength `kappa`, its pipeline's artifacts and what each stage recovered.

    Oracle: `oracle_sharpe`, on the agent's test bars at the headline cost (the denominator
    of the capture); `oracle_sharpe_dataset`, the dataset manifest's (every test bar).
    JEPA (probes fitted on the training period, scored on the diagnostic part of
    validation, which chose nothing): `jepa_drift_r2` / `raw_drift_r2`, the ridge R² of the
    planted drift kappa sigma_t g_t from h_t / from the raw features at t;
    `jepa_drift_sign_accuracy` / `raw_drift_sign_accuracy`, the logistic accuracy of its
    sign; `jepa_sign_accuracy`, of the sign of the next bar's return (the question an
    agent faces). NaN at kappa = 0 for the drift probes: there is no drift.
    CFM (test period, the horizon `cfm_horizon`): the CRPS skill of the return futures
    against the Gaussian random walk and the bootstrap, with intervals; `cfm_drift_corr`,
    the correlation over the agent's test (bar, asset) of the futures' mean next-bar return
    (the planning inputs) with the planted drift, and `realized_drift_corr`, of the
    realised next return with it (what a perfect forecast of the mean would reach).
    Agent (test period, headline cost): Sharpe with its interval, DSR, and `capture` =
    agent Sharpe / oracle Sharpe on the same bars with a paired interval (NaN when the
    oracle's Sharpe is not above 0: nothing to capture).
    Multiverse (test period): the share of contested decisions, the bifurcation index above
    its noise floor, the filtered - deterministic Sharpe difference at the headline cost.
    `costs`: the agent, oracle and filter at every cost level. `discovery`: the agent's DSR
    is at or above 0.95 at some cost (at kappa = 0, a false discovery)."""

    kappa: float
    oracle_sharpe: float
    oracle_sharpe_dataset: float
    jepa_drift_r2: float
    jepa_drift_sign_accuracy: float
    raw_drift_r2: float
    raw_drift_sign_accuracy: float
    jepa_sign_accuracy: float
    cfm_horizon: int
    cfm_skill_random_walk: float
    cfm_skill_random_walk_lo: float
    cfm_skill_random_walk_hi: float
    cfm_skill_bootstrap: float
    cfm_skill_bootstrap_lo: float
    cfm_skill_bootstrap_hi: float
    cfm_drift_corr: float
    realized_drift_corr: float
    agent_sharpe: float
    agent_sharpe_lo: float
    agent_sharpe_hi: float
    dsr: float
    capture: float
    capture_lo: float
    capture_hi: float
    contested_share: float
    bifurcation_above_floor: float
    filter_delta_sharpe: float
    filter_delta_lo: float
    filter_delta_hi: float
    filter_helps: bool
    discovery: bool
    test_bars: int
    costs: tuple[CostRow, ...]
    dataset: str
    agent: str
    multiverse: str
    seconds: float

    def to_json(self) -> dict:
        """What `--json` prints for this kappa (every field; non-finite numbers print as null)."""
        out = dataclasses.asdict(self)
        out["filter_delta_sharpe_interval"] = [self.filter_delta_lo, self.filter_delta_hi]
        out["agent_sharpe_interval"] = [self.agent_sharpe_lo, self.agent_sharpe_hi]
        out["capture_interval"] = [self.capture_lo, self.capture_hi]
        return out


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Per kappa (`kappas`); whether the null market (kappa = 0, when in the grid) made a
    false discovery; the Spearman correlations over the grid of kappa with the capture (the
    kappas with an oracle) and with the contested share; the wall time."""

    kappas: tuple[KappaResult, ...]
    null_false_discovery: bool | None
    capture_trend: float
    contested_trend: float
    seconds: float = 0.0

    def to_json(self) -> dict:
        return {"kappas": [k.to_json() for k in self.kappas],
                "summary": {"null_false_discovery": self.null_false_discovery, "capture_trend": self.capture_trend,
                            "contested_trend": self.contested_trend}}


@dataclasses.dataclass(frozen=True)
class Summary:
    """How the markets were made and measured: the planted edge's definition and the
    oracle's policy, the chain (preset and overrides), the headline cost, the bootstrap."""

    edge: str
    oracle_policy: str
    chain: str
    sets: tuple[str, ...]
    cost_bps: float
    replicates: int
    level: float


@dataclasses.dataclass(frozen=True)
class SignalBench(Typed[Config, Summary, Metrics]):
    KIND = KIND
    COMMAND = COMMAND


def _num(x: float, digits: int = 2) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.{digits}f}"


def _ci(value: float, lo: float, hi: float, digits: int = 2) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def tables(b: SignalBench) -> list[Table]:
    """Per kappa, stage by stage: the representation, the futures, the agent, the multiverse."""
    ks = b.metrics.kappas
    level = f"{b.summary.level:.0%}"
    cost = f"{b.summary.cost_bps:g} bps"
    jepa = table(["κ", "drift R², h_t", "drift R², raw", "drift sign acc., h_t", "drift sign acc., raw",
                  "next-return sign acc., h_t"],
                 [[f"{k.kappa:g}", _num(k.jepa_drift_r2, 3), _num(k.raw_drift_r2, 3),
                   _num(k.jepa_drift_sign_accuracy, 3), _num(k.raw_drift_sign_accuracy, 3),
                   _num(k.jepa_sign_accuracy, 3)] for k in ks], left=1,
                 title="JEPA: does h_t hold the planted drift?",
                 caption="Linear probes fitted on the training period, scored on the diagnostic part of validation "
                         "(which chose nothing); raw: the features at t. n/a at κ = 0: nothing is planted.")
    cfm = table(["κ", "horizon", f"CRPS skill vs random walk [{level}]", f"vs bootstrap [{level}]",
                 "corr(futures' mean, drift)", "corr(realised, drift)"],
                [[f"{k.kappa:g}", str(k.cfm_horizon),
                  _ci(k.cfm_skill_random_walk, k.cfm_skill_random_walk_lo, k.cfm_skill_random_walk_hi, 3),
                  _ci(k.cfm_skill_bootstrap, k.cfm_skill_bootstrap_lo, k.cfm_skill_bootstrap_hi, 3),
                  _num(k.cfm_drift_corr, 3), _num(k.realized_drift_corr, 3)] for k in ks], left=1,
                title="CFM: do the futures carry it? (test period)",
                caption="Skill 1 − CRPS_cfm / CRPS_baseline of the return futures (above 0: the flow is better). The "
                        "correlations run over the agent's test (bar, asset): the futures' mean next-bar return, or "
                        "the realised one, against the planted drift κσ_t g_t.")
    agent = table(["κ", f"oracle Sharpe ({cost})", f"agent Sharpe [{level}]", "DSR", f"capture [{level}]",
                   "max DSR, any cost", "discovery"],
                  [[f"{k.kappa:g}", _num(k.oracle_sharpe), _ci(k.agent_sharpe, k.agent_sharpe_lo, k.agent_sharpe_hi),
                    _num(k.dsr, 3), _ci(k.capture, k.capture_lo, k.capture_hi),
                    _num(max((c.dsr for c in k.costs), default=math.nan), 3),
                    "yes" if k.discovery else "no"] for k in ks], left=1,
                  title="Agent: how much of the oracle does it capture? (test period)",
                  caption="Capture = agent Sharpe / oracle Sharpe on the same bars and costs, its interval from a "
                          "paired stationary block bootstrap; n/a where the oracle's Sharpe is not above 0. A "
                          f"discovery: DSR >= {DSR_BAR} at some cost (at κ = 0, a false one).")
    multiverse = table(["κ", "contested share", "bifurcation above floor", f"filtered − deterministic Sharpe [{level}]",
                        "filter helps"],
                       [[f"{k.kappa:g}", _num(k.contested_share, 3), _num(k.bifurcation_above_floor, 3),
                         _ci(k.filter_delta_sharpe, k.filter_delta_lo, k.filter_delta_hi),
                         "yes" if k.filter_helps else "no"] for k in ks], left=1,
                       title="Multiverse: are the decisions contested, and does filtering help? (test period)",
                       caption=f"The Sharpe difference at {cost}: a paired stationary block bootstrap on the same "
                               "bars; the filter helps only where its interval is above 0.")
    return [jepa, cfm, agent, multiverse]
