"""The `bench-signal` artifact of `chaos bench signal`, typed: per planted strength kappa,
what each stage recovered of the edge (`kappas.parquet` holds the same rows, flat)."""

from __future__ import annotations

import dataclasses
import math

from strates.bench.artifact import _num
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
    DSR, the oracle's Sharpe, the probe policies' (`KappaResult`), and the multiverse
    filter's Sharpe difference (filtered minus deterministic) with its interval;
    `filter_helps` when that interval is above 0."""

    cost_bps: float
    agent_sharpe: float
    dsr: float
    oracle_sharpe: float
    jepa_probe_sharpe: float
    raw_probe_sharpe: float
    filter_delta_sharpe: float
    filter_delta_lo: float
    filter_delta_hi: float
    filter_helps: bool


@dataclasses.dataclass(frozen=True)
class KappaResult:
    """One planted strength `kappa`, its pipeline's artifacts and what each stage recovered.

    Oracle: `oracle_sharpe`, on the agent's test bars at the headline cost (the denominator
    of the capture), with its interval; `oracle_sharpe_dataset`, the dataset manifest's
    (every test bar).
    JEPA (probes fitted on the training period, scored on the bars that chose nothing: the
    diagnostic part of validation and the test period): `jepa_drift_r2` / `raw_drift_r2`,
    the ridge R² of the planted drift in units of sigma_t (kappa g_t) from h_t / from the raw
    features at t, and `*_drift_corr` the correlation of the ridge's predictions with it
    (R² also charges a shift of the mean between periods); `*_drift_sign_accuracy`, the
    logistic accuracy of its sign, beside `drift_majority_rate` (always guessing the more
    common sign); `jepa_sign_accuracy`, of the sign of the next bar's return (the question
    an agent faces); `jepa_probe_sharpe` / `raw_probe_sharpe`, the test Sharpe at the
    headline cost of the oracle's policy run on the probe's prediction of g instead of g
    (what a linear read of h_t, or of the raw features, would earn: the representation's
    ceiling for the stages after it). NaN at kappa = 0 for the drift probes: no drift.
    CFM (test period, the horizon `cfm_horizon`): the CRPS skill of the return futures
    against the Gaussian random walk and the bootstrap, with intervals; `cfm_drift_corr`,
    the rank correlation over the agent's test (bar, asset) of the futures' mean next-bar
    return per unit of their spread (the planning inputs) with g_t, and
    `realized_drift_corr`, of the realised next return with it; `cfm_drift_slope`, the
    slope of the flow's mean next-bar return (many futures per state, `flow_drift`) on the
    planted drift, both in units of sigma_t (1: carried one for one, 0: lost), with its
    interval, beside `realized_drift_slope`, that of the realised return (about 1).
    Agent (test period, headline cost): Sharpe with its interval, DSR, and `capture` =
    agent Sharpe / oracle Sharpe on the same bars with a paired interval (NaN when the
    oracle's Sharpe is not above 0: nothing to capture; unbounded, -inf and inf, when the
    oracle's own interval reaches 0: a ratio to a Sharpe that may be 0 has no bound).
    Multiverse (test period): the share of contested decisions, the bifurcation index above
    its noise floor, the filtered - deterministic Sharpe difference at the headline cost.
    `costs`: the agent, oracle and filter at every cost level. `discovery`: the agent's DSR
    is at or above 0.95 at some cost (at kappa = 0, a false discovery)."""

    kappa: float
    oracle_sharpe: float
    oracle_sharpe_lo: float
    oracle_sharpe_hi: float
    oracle_sharpe_dataset: float
    jepa_drift_r2: float
    jepa_drift_corr: float
    jepa_drift_sign_accuracy: float
    raw_drift_r2: float
    raw_drift_corr: float
    raw_drift_sign_accuracy: float
    drift_majority_rate: float
    jepa_sign_accuracy: float
    jepa_probe_sharpe: float
    raw_probe_sharpe: float
    cfm_horizon: int
    cfm_skill_random_walk: float
    cfm_skill_random_walk_lo: float
    cfm_skill_random_walk_hi: float
    cfm_skill_bootstrap: float
    cfm_skill_bootstrap_lo: float
    cfm_skill_bootstrap_hi: float
    cfm_drift_corr: float
    realized_drift_corr: float
    cfm_drift_slope: float
    cfm_drift_slope_lo: float
    cfm_drift_slope_hi: float
    realized_drift_slope: float
    realized_drift_slope_lo: float
    realized_drift_slope_hi: float
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


def _ci(value: float, lo: float, hi: float, digits: int = 2) -> str:
    if not math.isfinite(value):
        return "n/a"
    return f"{value:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]"


def tables(b: SignalBench) -> list[Table]:
    """Per kappa, stage by stage: the representation, the futures, the agent, the multiverse."""
    ks = b.metrics.kappas
    level = f"{b.summary.level:.0%}"
    cost = f"{b.summary.cost_bps:g} bps"
    jepa = table(["κ", "drift R² (corr), h_t", "drift R² (corr), raw", "drift sign acc., h_t / raw",
                  "majority sign", "next-return sign acc., h_t"],
                 [[f"{k.kappa:g}", f"{_num(k.jepa_drift_r2, 3)} ({_num(k.jepa_drift_corr, 3)})",
                   f"{_num(k.raw_drift_r2, 3)} ({_num(k.raw_drift_corr, 3)})",
                   f"{_num(k.jepa_drift_sign_accuracy, 3)} / {_num(k.raw_drift_sign_accuracy, 3)}",
                   _num(k.drift_majority_rate, 3), _num(k.jepa_sign_accuracy, 3)] for k in ks], left=1,
                 title="JEPA: does h_t hold the planted drift?",
                 caption="Linear probes of κ g(s_t) (the drift in units of σ_t) fitted on the training period, scored "
                         "on the bars that chose nothing (the diagnostic part of validation and the test period); "
                         "corr: of the ridge's predictions with the truth; raw: the features at t. n/a at κ = 0: "
                         "nothing is planted.")
    cfm = table(["κ", "horizon", f"CRPS skill vs random walk [{level}]", f"vs bootstrap [{level}]",
                 "flow mean on drift, slope [95%]", "realised on drift, slope [95%]", "ρ(agent's futures, g)"],
                [[f"{k.kappa:g}", str(k.cfm_horizon),
                  _ci(k.cfm_skill_random_walk, k.cfm_skill_random_walk_lo, k.cfm_skill_random_walk_hi, 3),
                  _ci(k.cfm_skill_bootstrap, k.cfm_skill_bootstrap_lo, k.cfm_skill_bootstrap_hi, 3),
                  _ci(k.cfm_drift_slope, k.cfm_drift_slope_lo, k.cfm_drift_slope_hi),
                  _ci(k.realized_drift_slope, k.realized_drift_slope_lo, k.realized_drift_slope_hi),
                  _num(k.cfm_drift_corr, 3)] for k in ks], left=1,
                title="CFM: do the futures carry it? (test period)",
                caption="Skill 1 − CRPS_cfm / CRPS_baseline of the return futures (above 0: the flow is better). "
                        "Slopes of the next-bar return in units of σ_t on the planted drift κ g_t: the flow's mean "
                        f"over {b.config.flow_futures} futures at {b.config.flow_states} test states (1: carried one "
                        "for one, 0: lost), and the realised return (about 1: the drift is there). ρ: rank "
                        "correlation of the mean per unit of spread of the agent's own few futures with g.")
    gross = [next((c for c in k.costs if c.cost_bps == 0), None) for k in ks]
    agent = table(["κ", f"oracle Sharpe [{level}]", "h_t probe policy (0 bps)", "raw probe policy (0 bps)",
                   f"agent Sharpe [{level}]", "DSR", f"capture [{level}]", "max DSR, any cost", "discovery"],
                  [[f"{k.kappa:g}", _ci(k.oracle_sharpe, k.oracle_sharpe_lo, k.oracle_sharpe_hi),
                    f"{_num(k.jepa_probe_sharpe)} ({_num(g.jepa_probe_sharpe) if g else 'n/a'})",
                    f"{_num(k.raw_probe_sharpe)} ({_num(g.raw_probe_sharpe) if g else 'n/a'})",
                    _ci(k.agent_sharpe, k.agent_sharpe_lo, k.agent_sharpe_hi),
                    _num(k.dsr, 3), _ci(k.capture, k.capture_lo, k.capture_hi),
                    _num(max((c.dsr for c in k.costs), default=math.nan), 3),
                    "yes" if k.discovery else "no"] for k, g in zip(ks, gross, strict=True)], left=1,
                  title=f"Agent: how much of the oracle does it capture? (test period, {cost})",
                  caption="Probe policies: the oracle's rule run on a linear probe's prediction of g from h_t or from "
                          "the raw features (fitted on the training period): what the representation allows. "
                          "Capture = agent Sharpe / oracle Sharpe on the same bars and costs, its interval from a "
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
