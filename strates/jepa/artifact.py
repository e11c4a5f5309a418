"""The `jepa` artifact, typed: what `chaos train-jepa` records and every later stage reads.

`read(manifest)` types a manifest already held; `load(ws, ref)` resolves and types one.
`embed(ws, jepa)` is how a downstream stage (cfm, agent, multiverse) gets the JEPA's
states h_t for every bar, with the fold and dataset it was fitted on; `load_params`
restores its selected checkpoint. `tables(jepa)` are the tables the CLI and the report
both show.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

from strates.core import artifacts
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.data.split import Fold, Period
from strates.jepa.config import Config

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

KIND = "jepa"
COMMAND = "train-jepa"


@dataclasses.dataclass(frozen=True)
class ProbeScore:
    """One probe input: realised-volatility R² (ridge) and return-sign accuracy (logistic)
    on the diagnostic part of validation, and the input's width."""

    vol_r2: float
    sign_accuracy: float
    dims: int


PROBE_INPUTS = (("h", "JEPA state h_t"), ("raw", "raw features at t"), ("raw_window", "raw features, trailing window"))


@dataclasses.dataclass(frozen=True)
class Probes:
    """Linear probes fitted on `train_rows` training-period states, scored on `test_rows`
    diagnostic-part states; `majority_sign_rate` is the sign accuracy floor."""

    majority_sign_rate: float
    train_rows: int
    test_rows: int
    h: ProbeScore
    raw: ProbeScore
    raw_window: ProbeScore

    def score(self, name: str) -> ProbeScore:
        """The score of input `name` (`h`, `raw`, `raw_window`)."""
        return getattr(self, name)


@dataclasses.dataclass(frozen=True)
class Spread:
    """Per-dimension std of h_t on the diagnostic part; `isotropic` = 1/sqrt(D) (unit
    vectors spread evenly over the sphere), 0 is collapse."""

    mean: float
    min: float
    max: float
    isotropic: float


@dataclasses.dataclass(frozen=True)
class CheckpointLoss:
    """A kept checkpoint and its JEPA loss on the selection part of validation."""

    step: int
    loss: float


@dataclasses.dataclass(frozen=True)
class Selection:
    """The checkpoint choice: the `step` with the lowest `validation_loss` among `losses`
    (one per kept checkpoint), on windows of `window` bars."""

    step: int
    validation_loss: float
    losses: tuple[CheckpointLoss, ...]
    window: int


@dataclasses.dataclass(frozen=True)
class LossTerms:
    """The JEPA loss and its terms at one training step (see `jepa_loss.jepa_loss`)."""

    loss: float
    pred: float
    variance: float
    covariance: float
    cos: float
    std: float


LOSS_TERMS = tuple(f.name for f in dataclasses.fields(LossTerms))


@dataclasses.dataclass(frozen=True)
class Metrics:
    """RankMe and spread of h_t and the probes (diagnostic part of validation), the
    checkpoint selection, the loss terms at the last training step (None when a resumed run
    had no step left), steps done, context-encoder parameters, seconds."""

    rankme: float
    embedding_dims: int
    per_dim_std: Spread
    probe: Probes
    selection: Selection
    steps: int
    params: int
    final: LossTerms | None = None
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Summary:
    """Where and on what it trained: topology and mesh, assets and macro series in model
    order, codebook size, bar interval, fold, the selected checkpoint step, the diagnostic
    part of validation (chose nothing), the training log, and the step a run resumed from."""

    topology: str
    mesh: str
    assets: tuple[str, ...]
    macro_series: tuple[str, ...]
    codebook_size: int
    interval_seconds: float
    fold: str
    selected_step: int
    diagnostic: Period
    history: tuple[dict[str, float], ...] = ()
    restored_from_step: int | None = None


@dataclasses.dataclass(frozen=True)
class Jepa(Typed[Config, Summary, Metrics]):
    """A jepa artifact: its `manifest`, resolved `config`, typed `summary` and `metrics`."""

    KIND = KIND
    COMMAND = COMMAND

    @property
    def selected(self) -> Period:
        """The selection part of validation (the checkpoint choice)."""
        return self.span("validation", use="selected")


read = Jepa.read
load = Jepa.load
_typed = Jepa.of


# -- what the next stages load ------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class States:
    """One asset's JEPA states: ts [N] datetime64[us] (naive UTC), h [N, D] float32 (unit
    norm), r [N] float64 log returns of the same bars, log_range [N] float64 their
    log(high / low) (0 where the bars carry no range)."""

    asset: str
    ts: np.ndarray
    h: np.ndarray
    r: np.ndarray
    log_range: np.ndarray


class Embedded(NamedTuple):
    """`embed`'s result: states per asset (model order), the fold the JEPA was fitted on,
    and its dataset."""

    states: list[States]
    fold: Fold
    dataset: data_artifact.Dataset


def load_params(ws: Workspace, jepa: Jepa | artifacts.Manifest, abstract_params):
    """The artifact's selected parameters (the checkpoint chosen on validation), shaped
    and placed like `abstract_params`."""
    from strates.core.checkpoints import restore_params

    j = _typed(jepa)
    return restore_params(artifacts.location(ws, j.manifest, "checkpoints"), abstract_params,
                          step=j.summary.selected_step)


def load_model(ws: Workspace, jepa: Jepa | artifacts.Manifest, *, n_assets: int, n_macro: int):
    """The trained JEPA (`strates.jepa.model.JEPA`) with its selected parameters."""
    from flax import nnx

    from strates.jepa.model import build_model

    j = _typed(jepa)
    model = build_model(j.config, n_assets=n_assets, n_macro=n_macro, vocab=j.summary.codebook_size,
                        seed=j.config.train.seed)
    graphdef, params = nnx.split(model, nnx.Param)
    return nnx.merge(graphdef, load_params(ws, j, params))


def embed(ws: Workspace, jepa: Jepa | artifacts.Manifest) -> Embedded:
    """Embed every bar of the JEPA's tokens with its selected parameters (target encoder).
    Returns (states per asset, the fold it was fitted on, the dataset)."""
    from strates.jepa.data import MacroScaler, load_sequences
    from strates.jepa.model import embed_sequences

    j = _typed(jepa)
    tokens = artifacts.resolve(ws, j.manifest.parents["tokens"], stage="tokens")
    sequences, macro_names, dataset = load_sequences(ws, tokens)
    scaler = MacroScaler.from_json(ws.read_bytes(f"{KIND}/{j.id}/macro_scaler.json"))
    model = load_model(ws, j, n_assets=len(sequences), n_macro=len(macro_names))
    hs = embed_sequences(model, sequences, scaler, interval_s=j.summary.interval_seconds)
    states = [States(s.asset, s.ts, h, s.log_returns, s.log_range) for s, h in zip(sequences, hs, strict=True)]
    typed = data_artifact.read(dataset) if isinstance(dataset, artifacts.Manifest) else dataset
    return Embedded(states, typed.fold(j.summary.fold), typed)


# -- tables -------------------------------------------------------------------------------
def _day(period: Period) -> str:
    return f"{period.start:%Y-%m-%d} .. {period.end:%Y-%m-%d}"


def representation_table(j: Jepa) -> Table:
    """RankMe and the per-dimension spread of h_t, with the training facts."""
    m, s = j.metrics, j.summary
    spread = m.per_dim_std
    rows = [
        ("effective rank (RankMe)", f"{m.rankme:.1f} of {m.embedding_dims}"),
        ("per-dimension std of h_t", f"min {spread.min:.3f}, mean {spread.mean:.3f}, max {spread.max:.3f} "
                                     f"(isotropic {spread.isotropic:.3f})"),
        ("context-encoder parameters", f"{m.params:,}"),
        ("training", f"{m.steps:,} steps on {s.topology} ({s.mesh})"
                     + (f", resumed at step {s.restored_from_step}" if s.restored_from_step is not None else "")),
        ("selected checkpoint", f"step {m.selection.step}, validation loss {m.selection.validation_loss:.4f}"),
    ]
    return table(("", "value"), rows, left=2, title=f"jepa {j.id}: representation on {_day(s.diagnostic)}")


def probe_table(j: Jepa) -> Table:
    """The linear probes from h_t and from raw features, on the diagnostic part of validation."""
    p = j.metrics.probe
    rows = [(label, str(p.score(name).dims), f"{p.score(name).vol_r2:.3f}", f"{p.score(name).sign_accuracy:.3f}")
            for name, label in PROBE_INPUTS]
    return table(
        ("input", "dims", "relative vol R²", "return sign accuracy"), rows,
        title=f"linear probes on the diagnostic part of validation {_day(j.summary.diagnostic)} "
              "(not used for selection)",
        caption=f"Probes to the log realised volatility of the next {j.config.probe.horizon} bars relative to the "
                f"trailing {j.config.probe.vol_window}-bar level (log RV over t+1..t+h minus log RMS of the returns "
                f"over t-w+1..t; R²) and the return sign over t+1..t+h (accuracy), fitted on {p.train_rows:,} "
                f"training rows and scored on {p.test_rows:,} later rows; majority sign rate "
                f"{p.majority_sign_rate:.3f}.",
    )


def selection_table(j: Jepa) -> Table:
    """The JEPA loss of each kept checkpoint on the selection part of validation."""
    sel = j.metrics.selection
    rows = [(f"{c.step:,}", f"{c.loss:.4f}", "selected" if c.step == sel.step else "") for c in sel.losses]
    return table(("step", "validation loss", ""), rows, left=0,
                 title=f"checkpoints on the selection part of validation {_day(j.selected)} "
                       f"({sel.window}-bar windows)")


def final_table(j: Jepa) -> Table | None:
    """The loss terms at the last training step (None when no step was run by this artifact)."""
    final = j.metrics.final
    if final is None:
        return None
    return table(("", *LOSS_TERMS), [("final (training)", *(f"{getattr(final, k):.4f}" for k in LOSS_TERMS))],
                 "Loss terms at the last training step.")


def tables(j: Jepa) -> list[Table]:
    """What `chaos train-jepa` prints (the report shows the same tables)."""
    return [t for t in (representation_table(j), probe_table(j), selection_table(j), final_table(j)) if t is not None]
