"""`chaos dream`: market hallucination. M dreams price paths with no trader in them (a = 0),
and their stylised facts are set against the real training period's.

Each path starts at a real training-period bar (drawn with the seed; asset and time
uniform among bars with `features.vol_window` bars of history): z_t is V's posterior mean
of the window ending there, (h_t, c_t) M's state after reading the asset's bars before it.
Then for each of `length` bars M draws (z_{t+1}, ρ_{t+1}) at temperature τ; the close
moves by the log return r = ρ · ret_scale.

Bars (OHLCV, so the paths can be ingested like any file: `chaos ingest --source
<workspace>/dream/<id>/bars.parquet`): open = the previous close; close = open · e^r;
V decodes z_{t+1} into a window whose last bar gives range_z, the wicks and rel_volume
(un-normalised). The bar's log range is R = max(e^{range_z}, e^{-4}) · M', M' the trailing
mean of the path's log ranges over `vol_window` bars (seeded with the real bars before the
start), never below |r|; what R leaves beyond |r| goes above max(open, close) and below
min(open, close) in the ratio of the decoded wicks (halves when both are 0). Volume =
e^{rel_volume} · (trailing mean volume + 1) − 1, at least 0. Each path is an asset named
`dream-00000`, ...; its bars run from the start bar's time on the dataset's interval.

Artifact `dream` (parents: worldmodels, dataset): `bars.parquet` (asset, ts, open, high,
low, close, volume) and the facts of real and dreamed returns in the manifest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from strates.core import artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.errors import ConfigError
from strates.core.table import Table
from strates.core.typed import Typed
from strates.core.workspace import Workspace
from strates.worldmodels.facts import Facts

KIND = "dream"
COMMAND = "dream"


def _check(ok: bool, field: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=field)


@dataclasses.dataclass(frozen=True)
class Config:
    """`paths` dreamed paths of `length` bars at `temperature`; the facts' `lags` and the
    Hill estimator's tail share `hill_fraction`; `seed` draws the starts and the dreams."""

    paths: int = 1000
    length: int = 500
    temperature: float = 1.2
    lags: tuple[int, ...] = (1, 5, 10, 20)
    hill_fraction: float = 0.05
    seed: int = 0

    def __post_init__(self):
        _check(self.paths >= 1, "paths", f"--paths must be >= 1, got {self.paths}")
        _check(self.length >= 2, "length", f"--length must be >= 2 bars, got {self.length}")
        _check(self.temperature > 0, "temperature", f"--temperature must be > 0, got {self.temperature}")
        _check(all(1 <= k < self.length for k in self.lags), "lags",
               f"every lag must be in [1, length), got {self.lags} with length {self.length}")
        _check(0 < self.hill_fraction < 0.5, "hill_fraction",
               f"hill_fraction must be in (0, 0.5), got {self.hill_fraction}")


PRESETS: dict[str, dict] = {"debug": {"paths": 16, "length": 64, "lags": (1, 5)}, "default": {}}


@dataclasses.dataclass(frozen=True)
class Summary:
    """The dream: its world model, temperature, paths x length, the dataset's interval, and
    the stylised facts of the real training period's returns (cut into paths of the same
    length) and of the dreamed ones."""

    worldmodels: str
    temperature: float
    paths: int
    length: int
    interval_seconds: int
    real: Facts
    dreamed: Facts


@dataclasses.dataclass(frozen=True)
class Metrics:
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Dream(Typed[Config, Summary, Metrics]):
    KIND = KIND
    COMMAND = COMMAND


read = Dream.read
load = Dream.load


def tables(dream: Dream | artifacts.Manifest) -> list[Table]:
    from strates.worldmodels.facts import facts_table

    d = Dream.of(dream)
    s = d.summary
    return [facts_table(s.real, s.dreamed, title=f"Stylised facts: the training period vs {s.paths:,} dreams of "
                                                 f"{s.length} bars at τ = {s.temperature:g} ({s.worldmodels})")]


def ohlcv(returns: np.ndarray, decoded: Mapping[str, np.ndarray], *, close0: np.ndarray, ranges0: np.ndarray,
          volumes0: np.ndarray) -> dict[str, np.ndarray]:
    """Bars from dreamed log returns `[P, L]` and the decoded last-bar features `[P, L]`
    (`range_z`, `upper_wick`, `lower_wick`, `rel_volume`, un-normalised), given each path's
    last real close `[P]`, its real trailing log ranges `[P, W]` and volumes `[P, V]` (oldest
    first). Returns `open, high, low, close, volume [P, L]` (see the module docstring)."""
    p, length = returns.shape
    ranges, volumes = list(ranges0.T), list(volumes0.T)
    w, v = ranges0.shape[1], volumes0.shape[1]
    log_c = np.log(close0)
    out = {k: np.zeros((p, length)) for k in ("open", "high", "low", "close", "volume")}
    for t in range(length):
        r = returns[:, t]
        log_o, log_c = log_c, log_c + r
        mean_range = np.maximum(np.mean(ranges[-w:], axis=0), 1e-8)
        big_r = np.maximum(np.exp(np.maximum(decoded["range_z"][:, t], -4.0)) * mean_range, np.abs(r))
        extra = big_r - np.abs(r)
        up, down = np.maximum(decoded["upper_wick"][:, t], 0.0), np.maximum(decoded["lower_wick"][:, t], 0.0)
        share = np.where(up + down > 0, up / np.maximum(up + down, 1e-12), 0.5)
        out["open"][:, t], out["close"][:, t] = np.exp(log_o), np.exp(log_c)
        out["high"][:, t] = np.exp(np.maximum(log_o, log_c) + extra * share)
        out["low"][:, t] = np.exp(np.minimum(log_o, log_c) - extra * (1.0 - share))
        vol = np.maximum(np.exp(decoded["rel_volume"][:, t]) * (np.mean(volumes[-v:], axis=0) + 1.0) - 1.0, 0.0)
        out["volume"][:, t] = vol
        ranges.append(big_r)
        volumes.append(vol)
    return out


def build(job: template.Job[Config]) -> template.Output:
    import jax
    import jax.numpy as jnp
    import polars as pl

    from strates.data import artifact as data_artifact
    from strates.data.ingest import load_bars
    from strates.worldmodels import artifact, controller, features, vae
    from strates.worldmodels.facts import facts, windows
    from strates.worldmodels.train import encode

    config, ws, rep = job.config, job.ws, job.reporter
    wm = artifact.read(job.parent("worldmodels"))
    models = artifact.load_models(ws, wm)
    dataset = data_artifact.read(job.parent("dataset"))
    fold = dataset.fold(wm.summary.fold)
    fc = wm.config.features
    assets, normalizer = features.load(load_bars(ws, job.parent("dataset")), train_start=fold.train.start,
                                       train_end=fold.train.end, vol_window=fc.vol_window,
                                       volume_window=fc.volume_window, clip_quantile=fc.clip_quantile,
                                       normalizer=models.normalizer)
    train = [a.mask(fold.train.start, fold.train.end) for a in assets]
    candidates = np.concatenate([np.stack([np.full(int(m.sum()), i), np.nonzero(m)[0]], 1)
                                 for i, m in enumerate(train)])
    candidates = candidates[candidates[:, 1] >= fc.vol_window]
    if not len(candidates):
        raise ConfigError(f"no training-period bar has {fc.vol_window} bars of history to start a dream from",
                          field="features.vol_window", fix="use a dataset with a longer training period")
    rng = np.random.default_rng(config.seed)
    picks = candidates[rng.integers(0, len(candidates), config.paths)]
    with rep.task(f"dreaming {config.paths:,} paths of {config.length} bars at τ = {config.temperature:g}"):
        z0 = []
        for i, a in enumerate(assets):
            sel = picks[:, 0] == i
            if not sel.any():
                continue
            upto = int(picks[sel, 1].max()) + 1
            mu, _ = encode(models.vae, features.windows(a.x[:upto], fc.window))
            h, c = controller.hidden_states(models.mdn, jnp.asarray(mu[None]))
            z0.append((np.nonzero(sel)[0], mu[picks[sel, 1]], np.asarray(h[0])[picks[sel, 1]],
                       np.asarray(c[0])[picks[sel, 1]]))
        order = np.concatenate([o for o, *_ in z0])
        back = np.argsort(order)
        stack = lambda j: np.concatenate([x[j] for x in z0])[back]  # noqa: E731
        starts = controller.Starts(jnp.asarray(stack(1)), jnp.asarray(stack(2)), jnp.asarray(stack(3)))
        d = controller.dream(models.mdn, None, starts, key=jax.random.key(config.seed), horizon=config.length,
                             temperature=config.temperature, ret_scale=wm.summary.ret_scale, cost=0.0)
        returns = np.asarray(d.returns, np.float64)
        decoded_win = np.asarray(jax.jit(vae.decode)(models.vae, d.z))  # [P, L, W x F]
    n_feat = len(normalizer.names)
    last = decoded_win[..., -n_feat:] * np.asarray(normalizer.std) + np.asarray(normalizer.mean)
    decoded = {name: last[..., normalizer.names.index(name)]
               for name in ("range_z", "upper_wick", "lower_wick", "rel_volume")}
    a_idx, t_idx = picks[:, 0], picks[:, 1]
    close0 = np.array([assets[a].close[t] for a, t in zip(a_idx, t_idx, strict=True)])
    log_range = [np.log(a.high / a.low) for a in assets]
    ranges0 = np.stack([log_range[a][t - fc.vol_window + 1:t + 1] for a, t in zip(a_idx, t_idx, strict=True)])
    volumes0 = np.stack([assets[a].volume[max(t - fc.volume_window + 1, 0):t + 1][-fc.volume_window:]
                         if t + 1 >= fc.volume_window else np.resize(assets[a].volume[:t + 1], fc.volume_window)
                         for a, t in zip(a_idx, t_idx, strict=True)])
    bars = ohlcv(returns, decoded, close0=close0, ranges0=ranges0, volumes0=volumes0)
    step = np.timedelta64(int(dataset.summary.interval_seconds), "s").astype("timedelta64[us]")
    t0 = np.array([assets[a].ts[t] for a, t in zip(a_idx, t_idx, strict=True)])
    ts = t0[:, None] + step * np.arange(1, config.length + 1)[None, :]
    names = np.repeat([f"dream-{i:05d}" for i in range(config.paths)], config.length)
    frame = pl.DataFrame({"asset": names, "ts": ts.reshape(-1), **{k: v.reshape(-1) for k, v in bars.items()}})
    frame = frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"))
    job.writer.write_parquet("bars.parquet", frame)
    real = facts(windows([a.r[m] for a, m in zip(assets, train, strict=True)], config.length), lags=config.lags,
                 hill_fraction=config.hill_fraction)
    dreamed = facts(returns, lags=config.lags, hill_fraction=config.hill_fraction)
    summary = Summary(worldmodels=wm.ref, temperature=config.temperature, paths=config.paths, length=config.length,
                      interval_seconds=int(dataset.summary.interval_seconds), real=real, dreamed=dreamed)
    return template.Output({}, to_dict(summary))


STAGE: template.Stage[Config] = template.Stage(
    kind=KIND, command=COMMAND, config=Config, build=build, parents=("worldmodels", "dataset"), presets=PRESETS,
    default_preset="default")


def run(config: Config, ws: Workspace, *, worldmodels: str | artifacts.Manifest = "latest", force: bool = False,
        reporter=None) -> template.Result:
    """Dream `config.paths` paths from the world model `worldmodels`."""
    return template.run(STAGE, config, ws, parents={"worldmodels": worldmodels}, force=force, reporter=reporter)
