"""The `tokenizer` and `tokens` artifacts of Strate I, typed, with what the next stage loads
from them (the token table, a tokenizer's encoder) and the tables the CLI and the report show.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable

import numpy as np

from strates.core import artifacts
from strates.core.table import Table, table
from strates.core.typed import Typed
from strates.core.workspace import Workspace
from strates.fsq.config import Config
from strates.fsq.features import Normalizer

TOKENIZER = "tokenizer"
TOKENS = "tokens"
REPORTED_R2 = ("ret_z", "range_z")  # the features whose reconstruction R² the tables show


@dataclasses.dataclass(frozen=True)
class PeriodMetrics:
    """Codebook use and reconstruction quality over one period (features normalised):
    `mse` and `r2` per feature name."""

    bars: int
    codes_used: int
    utilization: float  # share of the codebook used
    perplexity: float  # exp(entropy of the code distribution)
    mse: dict[str, float]
    r2: dict[str, float]


@dataclasses.dataclass(frozen=True)
class TokenizerMetrics:
    steps: int
    final_loss: float | None = None
    train: PeriodMetrics | None = None
    validation: PeriodMetrics | None = None
    seconds: float = 0.0

    def periods(self) -> dict[str, PeriodMetrics]:
        return {name: m for name, m in (("train", self.train), ("validation", self.validation)) if m is not None}


@dataclasses.dataclass(frozen=True)
class TokenizerSummary:
    features: tuple[str, ...]
    codebook_size: int
    levels: tuple[int, ...]
    fold: str
    history: tuple[dict[str, float], ...] = ()
    restored_from_step: int | None = None


@dataclasses.dataclass(frozen=True)
class Tokenizer(Typed[Config, TokenizerSummary, TokenizerMetrics]):
    KIND = TOKENIZER
    COMMAND = "tokenize"


@dataclasses.dataclass(frozen=True)
class CodeUse:
    """Codebook use of the written tokens over one period."""

    tokens: int
    utilization: float
    perplexity: float


@dataclasses.dataclass(frozen=True)
class TokensMetrics:
    tokens: int
    assets: int
    train: CodeUse | None = None
    validation: CodeUse | None = None
    test: CodeUse | None = None
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class TokensSummary:
    """`warmup_bars`: bars at the start of each asset whose code sees less than the
    encoder's receptive field."""

    codebook_size: int
    levels: tuple[int, ...]
    features: tuple[str, ...]
    fold: str
    warmup_bars: int


@dataclasses.dataclass(frozen=True)
class Tokens(Typed[dict, TokensSummary, TokensMetrics]):
    """The tokens artifact; its config is the fold it was measured on."""

    KIND = TOKENS
    COMMAND = "tokenize"


read_tokenizer = Tokenizer.read
read_tokens = Tokens.read
load_tokenizer = Tokenizer.load
load = Tokens.load


def token_table(ws: Workspace, manifest: artifacts.Manifest):
    """A tokens artifact's table (`asset, ts, code, f_*`) as a polars DataFrame."""
    import polars as pl

    return pl.read_parquet(io.BytesIO(ws.read_bytes(f"{manifest.stage}/{manifest.id}/tokens.parquet")))


def normalizer(ws: Workspace, tok: artifacts.Manifest) -> Normalizer:
    """The feature normaliser a tokenizer was fitted with (training period only)."""
    return Normalizer.from_json(ws.read_bytes(f"{TOKENIZER}/{tok.id}/normalizer.json"))


def encoder(ws: Workspace, tok: Tokenizer) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """encode(x [N, F]) -> (codes [N] int32, reconstruction [N, F]) with the tokenizer's
    last parameters (restored from its Orbax checkpoint)."""
    from flax import nnx

    from strates.core.checkpoints import restore_params
    from strates.fsq.train import build_model, make_encoder, split_model

    config = tok.config
    features = len(tok.summary.features)
    graphdef, params = split_model(nnx.eval_shape(
        lambda: build_model(config.model, seed=config.train.seed, features=features)))
    params = restore_params(artifacts.location(ws, tok.manifest, "checkpoints"), params)
    encode = make_encoder(graphdef)
    return lambda x: encode(params, x)


def reported_r2(tok: Tokenizer) -> tuple[str, ...]:
    """The features whose reconstruction R² the tables show: REPORTED_R2 for bars, the
    first channel's `d_` and `z_` for a series dataset."""
    return REPORTED_R2 if set(REPORTED_R2) <= set(tok.summary.features) else tuple(tok.summary.features[:2])


def tokenizer_table(tok: Tokenizer) -> Table:
    """Code use and reconstruction per period."""
    size = tok.summary.codebook_size
    shown = reported_r2(tok)
    rows = [(name, f"{p.bars:,}", f"{p.codes_used}", f"{p.utilization:.1%}", f"{p.perplexity:.0f} / {size}",
             *(f"{p.r2[f]:.3f}" if f in p.r2 else "-" for f in shown))
            for name, p in tok.metrics.periods().items()]
    return table(("period", "bars", "codes used", "utilization", "perplexity", *(f"R² {f}" for f in shown)),
                 rows, title=f"tokenizer {tok.id}: {size} codes, levels {list(tok.summary.levels)}, "
                             f"{tok.metrics.steps} steps",
                 caption="Utilization: share of the codebook used; perplexity: exp(entropy) of the code "
                         "distribution; R²: reconstruction of the normalised feature.")


def tokens_table(tokens: Tokens) -> Table:
    """Codebook use of the written tokens per period of the fold."""
    size = tokens.summary.codebook_size
    m = tokens.metrics
    rows = [(name, f"{u.tokens:,}", f"{u.utilization:.1%}", f"{u.perplexity:.0f} / {size}")
            for name, u in (("train", m.train), ("validation", m.validation), ("test", m.test)) if u is not None]
    return table(("period", "tokens", "utilization", "perplexity"), rows,
                 title=f"tokens {tokens.id}: {m.tokens:,} tokens of {m.assets} assets, fold {tokens.summary.fold}")


def tables(tok: Tokenizer, tokens: Tokens) -> list[Table]:
    return [tokenizer_table(tok), tokens_table(tokens)]
