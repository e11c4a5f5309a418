"""The `worldmodels` artifact, typed: what `chaos train-worldmodels` records, and what
`chaos dream`, the trial census and the report read.

Files: `vae/`, `mdn/` (Orbax checkpoints of V and M), `controller.npz` (θ and the search
means), `normalizer.json` (the feature scaling), `regimes.json` (the fitted mixture),
`regimes.parquet` (asset, ts, close, regime of every bar), `search.parquet` (per
generation: population mean and best dream fitness, σ, and the validation Sharpe where the
mean was backtested), `positions.parquet` and `equity.parquet` (as the agent's).
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

from strates.agent.artifact import Backtest, Skipped, Trials, named, performance_table, span_text
from strates.agent.bootstrap import Interval
from strates.core import artifacts
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.core.workspace import Workspace
from strates.worldmodels.config import Config, Fitness
from strates.worldmodels.regimes import RegimeStats

KIND = "worldmodels"
COMMAND = "train-worldmodels"
STRATEGY = "worldmodels"
STRATEGIES = (STRATEGY, "buy_and_hold", "momentum", "random")


@dataclasses.dataclass(frozen=True)
class Selection:
    """One backtest of the search mean on the validation period: after `generation`
    generations, the population's mean dream fitness then, and the validation Sharpe
    (annualised, after `controller.cost_bps`). `phase`: `dream` or `finetune`."""

    generation: int
    dream_fitness: float
    validation_sharpe: float
    phase: str = "dream"


@dataclasses.dataclass(frozen=True)
class Heldout:
    """V and M on the validation period: V's negative ELBO, reconstruction and KL (nats per
    window), M's NLL per latent dim and of the reward (nats)."""

    vae_loss: float = float("nan")
    vae_recon: float = float("nan")
    vae_kl: float = float("nan")
    mdn_nll_z: float = float("nan")
    mdn_nll_reward: float = float("nan")


@dataclasses.dataclass(frozen=True)
class Transfer:
    """`--init-from`: V and M started from `source` and fine-tuned for the configured steps,
    against the same steps from scratch, both scored on this dataset's validation period."""

    source: str
    transferred: Heldout
    scratch: Heldout


@dataclasses.dataclass(frozen=True)
class RegimesSummary:
    """Gaussian mixtures over the training period's latents (`regimes.json` holds the fit):
    the `k` chosen by `criterion` (`bic`, `aic` per k = 1..k_max), the mixture `weights`,
    the rows fitted on, the transition matrix `[k, k]` (row: from), and each regime's
    profile over every bar."""

    k: int
    criterion: str
    bic: tuple[float, ...]
    aic: tuple[float, ...]
    weights: tuple[float, ...]
    rows_fitted: int
    transitions: tuple[tuple[float, ...], ...]
    stats: tuple[RegimeStats, ...]


@dataclasses.dataclass(frozen=True)
class Summary:
    """The model and how it was chosen and judged."""

    fold: str
    features: tuple[str, ...]
    latent: int
    hidden: int
    mixtures: int
    parameters: int
    population: int
    generations: int
    dreams: int
    horizon: int
    temperature: float
    fitness: Fitness
    cvar_alpha: float
    cost_bps: float
    ret_scale: float
    periods_per_year: float
    selected_generation: int
    selected_phase: str
    selection: tuple[Selection, ...]
    heldout: Heldout
    regimes: RegimesSummary
    n_trials: int
    trials: Trials
    small_trader: str
    accounting: str
    skipped: tuple[Skipped, ...] = ()
    history_vae: tuple[dict[str, float], ...] = ()
    history_mdn: tuple[dict[str, float], ...] = ()
    transfer: Transfer | None = None


@dataclasses.dataclass(frozen=True)
class SharpeInterval:
    """The controller's Sharpe on one evaluation period at one cost, with its stationary
    block-bootstrap interval (`strates.agent.bootstrap.sharpe_interval`)."""

    period: str
    cost_bps: float
    interval: Interval


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Every evaluation period's backtest (the test period first), the controller's Sharpe
    intervals, its dream fitness on fresh dreams (not those it was searched on), and the
    seconds."""

    backtest: tuple[Backtest, ...]
    intervals: tuple[SharpeInterval, ...] = ()
    dream_fitness: float = float("nan")
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class WorldModels(Typed[Config, Summary, Metrics]):
    """A worldmodels artifact: `manifest`, resolved `config`, typed `summary`, `metrics`."""

    KIND = KIND
    COMMAND = COMMAND

    def backtest(self, name: str = "test") -> Backtest:
        """The backtest of period `name`; a clear error lists the others."""
        return named(self.metrics.backtest, name, self.ref)


read = WorldModels.read
load = WorldModels.load
_typed = WorldModels.of


# -- what the next stage loads ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Models:
    """V's and M's parameters, the controller θ `[D]`, and the feature normaliser."""

    vae: Any
    mdn: Any
    theta: Any
    normalizer: Any


def load_models(ws: Workspace, wm: WorldModels | artifacts.Manifest) -> Models:
    """Restore V, M (Orbax, their last steps), θ and the normaliser of an artifact."""
    import jax
    import numpy as np

    from strates.core.checkpoints import restore_params
    from strates.fsq.features import Normalizer
    from strates.worldmodels import mdn, vae

    w = _typed(wm)
    m, c = w.manifest, w.config
    normalizer = Normalizer.from_json(ws.read_bytes(f"{m.stage}/{m.id}/normalizer.json"))
    inputs = c.features.window * len(normalizer.names)
    v_abs = jax.eval_shape(lambda: vae.init(jax.random.key(0), inputs=inputs, latent=c.vae.latent,
                                            width=c.vae.width))
    m_abs = jax.eval_shape(lambda: mdn.init(jax.random.key(0), latent=c.vae.latent, hidden=c.mdn.hidden,
                                            mixtures=c.mdn.mixtures))
    v = restore_params(artifacts.location(ws, m, "vae"), v_abs)
    mm = restore_params(artifacts.location(ws, m, "mdn"), m_abs)
    with np.load(io.BytesIO(ws.read_bytes(f"{m.stage}/{m.id}/controller.npz"))) as z:
        theta = z["theta"]
    return Models(v, mm, theta, normalizer)


def load_regimes(ws: Workspace, wm: WorldModels | artifacts.Manifest):
    """`regimes.parquet` (asset, ts, close, regime) as a polars DataFrame."""
    import polars as pl

    m = _typed(wm).manifest
    return pl.read_parquet(io.BytesIO(ws.read_bytes(f"{m.stage}/{m.id}/regimes.parquet")))


# -- tables -------------------------------------------------------------------------------
def backtest_table(wm: WorldModels, b: Backtest) -> Table:
    s = wm.summary
    return performance_table(
        b.rows, order=STRATEGIES,
        title=f"World Models, {b.name} {span_text(b.span)}: {b.bars:,} bars x {b.assets} assets (searched at "
              f"{s.cost_bps:g} bps on the {s.fitness.value} of {s.dreams} dreams of {s.horizon} bars, "
              f"{s.n_trials} trial(s) for the DSR, {s.periods_per_year:,.0f} periods/year measured)")


def interval_table(wm: WorldModels) -> Table:
    rows = [(x.period, f"{x.cost_bps:g}", f"{x.interval.sharpe:+.2f}", f"[{x.interval.lo:+.2f}, {x.interval.hi:+.2f}]")
            for x in wm.metrics.intervals]
    level = wm.metrics.intervals[0].interval.level if wm.metrics.intervals else 0.95
    return table(("period", "cost (bps)", "Sharpe", f"{level:.0%} interval"), rows,
                 "Stationary block bootstrap of the controller's per-bar portfolio returns (Politis & Romano; "
                 "mean block length by Politis & White).", title="World Models: Sharpe intervals")


def model_table(wm: WorldModels) -> Table:
    """V, M and C: sizes, held-out losses, the selected generation."""
    s, h = wm.summary, wm.summary.heldout
    rows = [
        ("V (VAE)", f"z {s.latent}, {len(s.features)} features x {wm.config.features.window} bars",
         f"−ELBO {h.vae_loss:.3f} (recon {h.vae_recon:.3f}, KL {h.vae_kl:.3f})"),
        ("M (MDN-RNN)", f"LSTM {s.hidden}, {s.mixtures} Gaussians per dim",
         f"NLL {h.mdn_nll_z:.3f} per latent dim, {h.mdn_nll_reward:.3f} reward"),
        ("C (linear)", f"{s.parameters} parameters, CMA-ES {s.population} x {s.generations} generations",
         f"selected: {s.selected_phase} generation {s.selected_generation}"),
    ]
    return table(("model", "size", "validation"), rows,
                 "Held-out figures are on the validation period (nats). The controller is the search mean with "
                 "the best validation Sharpe among those backtested.", title="world model", left=3)


def selection_table(wm: WorldModels) -> Table:
    rows = [(x.phase, str(x.generation), f"{x.dream_fitness:.5f}", f"{x.validation_sharpe:.2f}")
            for x in wm.summary.selection]
    return table(("phase", "generation", "mean dream fitness", "validation Sharpe"), rows,
                 "Every select_every generations the search mean is backtested on the validation period after "
                 "costs; the best is kept.", title="controller selection on validation")


def transfer_table(wm: WorldModels) -> Table | None:
    t = wm.summary.transfer
    if t is None:
        return None
    rows = [(name, f"{h.vae_loss:.3f}", f"{h.mdn_nll_z:.3f}", f"{h.mdn_nll_reward:.3f}")
            for name, h in ((f"from {t.source}", t.transferred), ("from scratch", t.scratch))]
    return table(("start", "V −ELBO", "M NLL per z dim", "M NLL reward"), rows,
                 "Both trained for the same steps on this dataset's training period; scored on its validation "
                 "period (lower is better). V's −ELBO and M's reward NLL have the same targets in both runs; M's NLL "
                 "per latent dim is measured in each run's own latent space, so it compares only roughly.",
                 title="transfer against training from scratch")


def tables(wm: WorldModels | artifacts.Manifest) -> list[Table]:
    """The model, the selection, each backtest, the regimes, the transfer comparison."""
    import numpy as np

    from strates.worldmodels.regimes import regime_table

    w = _typed(wm)
    out = [model_table(w), selection_table(w), *(backtest_table(w, b) for b in w.metrics.backtest)]
    if w.metrics.intervals:
        out.append(interval_table(w))
    r = w.summary.regimes
    out += regime_table(r, r.stats, np.asarray(r.transitions))
    t = transfer_table(w)
    return [*out, t] if t is not None else out
