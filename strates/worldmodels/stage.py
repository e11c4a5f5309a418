"""`chaos train-worldmodels`: V, M and C (Ha & Schmidhuber 2018) on a dataset's training
period, C chosen on validation, backtested on the test period in the project's one
accounting against the same baselines as the TD-MPC2 agent.

Order of work (each step reads only what the step before made):
1. features of every bar (`features`), the normaliser fitted on the training period;
2. V on training-period windows (from `--init-from`'s V when given), then every bar's
   posterior (μ, log σ²);
3. M on training-period sequences (from `--init-from`'s M when given);
4. V and M scored on the validation period; with `--init-from`, V and M also trained from
   scratch for the same steps and scored alike (the transfer comparison);
5. C searched by CMA-ES in dreams started from training-period states; every
   `select_every` generations the search mean walks the validation period, the best is
   kept (optionally fine-tuned on the real training period, then chosen the same way);
6. regimes: Gaussian mixtures over the training period's latents, k by BIC;
7. the backtest of every evaluation period (`strates.agent.stage.evaluation_periods`: the
   fold's test period, later folds' test periods), with the deflated Sharpe ratio counting
   every configuration tried on the dataset.

Fitted on: the training period. Selected on: the validation period (C's generation).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from types import SimpleNamespace

import numpy as np

from strates.agent.artifact import Backtest, Skipped
from strates.agent.stage import ACCOUNTING, SMALL_TRADER, evaluation_periods, positions_frame
from strates.core import accounting, artifacts
from strates.core import stage as template
from strates.core.config import to_dict
from strates.core.errors import ConfigError
from strates.core.progress import training_log
from strates.core.workspace import Workspace
from strates.data import artifact as data_artifact
from strates.worldmodels import artifact
from strates.worldmodels.artifact import (
    Heldout,
    Metrics,
    RegimesSummary,
    Selection,
    SharpeInterval,
    Summary,
    Transfer,
)
from strates.worldmodels.config import DEFAULT_PRESET, PRESETS, Config


def _prepare(config: Config, parents: Mapping[str, artifacts.Manifest]) -> Config:
    """Fail before any work: on a series dataset (no prices to trade: exit 2), or a bad period."""
    from strates.agent.stage import parse_period

    data_artifact.read(parents["dataset"]).require_bars(artifact.COMMAND)
    if config.backtest.period:
        parse_period(config.backtest.period)
    return config


def _heldout(v: dict, m: dict) -> Heldout:
    return Heldout(vae_loss=v.get("loss", float("nan")), vae_recon=v.get("recon", float("nan")),
                   vae_kl=v.get("kl", float("nan")), mdn_nll_z=m.get("nll_z", float("nan")),
                   mdn_nll_reward=m.get("nll_reward", float("nan")))


def _fit_vm(config: Config, assets, wins, train_masks, val_masks, rho, *, v0, m0, folder, rep, label=""):
    """Train V then M from `v0`, `m0`; returns (V, M, μ, log σ², held-out scores, histories)."""
    from strates.worldmodels.train import encode, heldout_mdn, heldout_vae, sequence_starts, train_mdn, train_vae

    x_train = np.concatenate([w[m] for w, m in zip(wins, train_masks, strict=True)])
    steps = config.vae.train.steps
    with rep.task(f"training V{label} on {len(x_train):,} windows ({steps} steps)", total=steps) as update:
        v = train_vae(config, x_train, params=v0, checkpoint_dir=folder("vae"),
                      on_log=training_log(update, "recon", "kl"))
    post = [encode(v.params, w) for w in wins]
    mu, logvar = [p[0] for p in post], [p[1] for p in post]
    starts = sequence_starts(train_masks, config.mdn.seq_len)
    if not len(starts):
        raise ConfigError(f"no asset has {config.mdn.seq_len} consecutive training bars", field="mdn.seq_len",
                          fix="lower --set mdn.seq_len")
    steps = config.mdn.train.steps
    with rep.task(f"training M{label} on {len(starts):,} sequences ({steps} steps)", total=steps) as update:
        m = train_mdn(config, mu, logvar, rho, starts, params=m0, checkpoint_dir=folder("mdn"),
                      on_log=training_log(update, "nll_z", "nll_reward"))
    x_val = np.concatenate([w[vm] for w, vm in zip(wins, val_masks, strict=True)])
    held = _heldout(heldout_vae(config, v.params, x_val),
                    heldout_mdn(config, m.params, mu, logvar, rho, sequence_starts(val_masks, config.mdn.seq_len)))
    return v, m, mu, logvar, held


def _padded(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-asset `[N_a, ...]` -> `[A, max N, ...]`, zeros after each asset's end."""
    n = max(len(a) for a in arrays)
    out = np.zeros((len(arrays), n, *arrays[0].shape[1:]), arrays[0].dtype)
    for i, a in enumerate(arrays):
        out[i, :len(a)] = a
    return out


def _clocked(assets, pos: np.ndarray, span, max_bars: int = 0):
    """Positions `pos [A, T_pad]` (one per bar of each asset) on the common clock of `span`
    (`strates.agent.backtest.clock`, the agent's): `(ts [T], positions [T, A], valid [T, A],
    r_next [T, A], r_now [T, A])`."""
    from strates.agent.backtest import clock

    states = [SimpleNamespace(ts=a.ts, h=pos[i, :len(a.ts), None], r=a.r) for i, a in enumerate(assets)]
    ts, p, valid, r_next, r_now = clock(states, span, max_bars)
    return ts, p[..., 0].astype(np.float64), valid, r_next, r_now


def build(job: template.Job[Config]) -> template.Output:
    import jax
    import jax.numpy as jnp
    import polars as pl

    from strates.agent import backtest
    from strates.agent.bootstrap import sharpe_interval
    from strates.agent.trials import census
    from strates.data.ingest import load_bars
    from strates.worldmodels import controller, features, mdn, regimes, search, vae

    config, ws, rep = job.config, job.ws, job.reporter
    dataset = data_artifact.read(job.parent("dataset"))
    fold = dataset.fold(config.fold or None)
    upstream = job.upstream()
    periods, skipped = evaluation_periods(config, dataset.folds, fold, upstream,
                                          own={"train": fold.train, "validation": fold.validation},
                                          ref=f"{artifact.KIND}/{job.id}")
    source = artifact.load(ws, config.init_from) if config.init_from else None
    source_models = artifact.load_models(ws, source) if source is not None else None
    source_ref = source.ref if source is not None else ""
    with rep.task("features of every bar"):
        assets, normalizer = features.load(
            load_bars(ws, job.parent("dataset")), train_start=fold.train.start, train_end=fold.train.end,
            vol_window=config.features.vol_window, volume_window=config.features.volume_window,
            clip_quantile=config.features.clip_quantile,
            normalizer=None)
    if source_models is not None and tuple(source_models.normalizer.names) != tuple(normalizer.names):
        raise ConfigError(f"--init-from {source_ref} read features {list(source_models.normalizer.names)}; this "
                          f"dataset gives {list(normalizer.names)}", field="init_from",
                          fix="transfer between datasets with the same macro series")
    wins = [features.windows(a.x, config.features.window) for a in assets]
    train_masks = [a.mask(fold.train.start, fold.train.end) for a in assets]
    val_masks = [a.mask(fold.validation.start, fold.validation.end) for a in assets]
    scale = features.ret_scale(assets, fold.train.start, fold.train.end)
    rho = [(a.r / scale).astype(np.float32) for a in assets]
    key = jax.random.key(config.seed)
    k_v, k_m, k_search = jax.random.split(key, 3)
    inputs = wins[0].shape[1]
    fresh_v = vae.init(k_v, inputs=inputs, latent=config.vae.latent, width=config.vae.width)
    fresh_m = mdn.init(k_m, latent=config.vae.latent, hidden=config.mdn.hidden, mixtures=config.mdn.mixtures)
    if source_models is not None:
        _check_shapes(source_ref, fresh_v, fresh_m, source_models)
    v0 = source_models.vae if source_models is not None else fresh_v
    m0 = source_models.mdn if source_models is not None else fresh_m
    v, m, mu, _logvar, held = _fit_vm(config, assets, wins, train_masks, val_masks, rho, v0=v0, m0=m0,
                                       folder=job.folder, rep=rep)
    transfer = None
    if source is not None:
        with tempfile.TemporaryDirectory() as tmp:
            *_, held_scratch = _fit_vm(config, assets, wins, train_masks, val_masks, rho, v0=fresh_v, m0=fresh_m,
                                       folder=lambda name: f"{tmp}/{name}", rep=rep, label=" from scratch")
        transfer = Transfer(source=source_ref, transferred=held, scratch=held_scratch)

    # 5. C: CMA-ES in the dream, selection on validation
    z_pad = _padded(mu)
    h_all, c_all = (np.asarray(x) for x in controller.hidden_states(m.params, jnp.asarray(z_pad)))
    in_train = _padded(train_masks)
    cc = config.controller
    cost = accounting.bps(cc.cost_bps)
    starts_fn = controller.sample_starts(jnp.asarray(z_pad[in_train]), jnp.asarray(h_all[in_train]),
                                         jnp.asarray(c_all[in_train]), cc.dreams)
    fit = controller.dream_fitness(m.params, starts_fn, horizon=cc.horizon, temperature=cc.temperature,
                                   ret_scale=scale, cost=cost, fitness=cc.fitness.value, cvar_alpha=cc.cvar_alpha)
    d = controller.size(config.vae.latent, config.mdn.hidden)
    ppy = dataset.summary.periods_per_year

    z_j, h_j = jnp.asarray(z_pad), jnp.asarray(h_all)
    everywhere = jnp.ones(z_pad.shape[:2], bool)

    def walk(theta) -> np.ndarray:
        """C's position at every bar `[A, T_pad]` (M's states are those of the real bars)."""
        return np.asarray(controller.positions(jnp.asarray(theta), z_j, h_j, everywhere))

    def validation_sharpe(theta) -> float:
        _, pos, valid, r_next, _ = _clocked(assets, walk(theta), fold.validation)
        pnl = backtest.portfolio_returns(pos, r_next, valid, cost_bps=cc.cost_bps)
        return accounting.sharpe(pnl, periods_per_year=ppy)

    with rep.task(f"CMA-ES over {d} controller parameters: {cc.population} x {cc.generations} generations of "
                  f"{cc.dreams} dreams x {cc.horizon} bars"):
        result = search.run(fit, jnp.zeros(d), population=cc.population, sigma0=cc.sigma0,
                            generations=cc.generations, key=jax.random.fold_in(k_search, 0))
    means = np.asarray(result.mean)
    f_mean, f_max, sig = (np.asarray(x) for x in (result.fitness_mean, result.fitness_max, result.std))
    checked = sorted({*range(cc.select_every - 1, cc.generations, cc.select_every), cc.generations - 1})
    with rep.task(f"backtesting {len(checked)} search means on validation"):
        selection = [Selection(g + 1, float(f_mean[g]), validation_sharpe(means[g])) for g in checked]
    best = max(range(len(checked)), key=lambda i: selection[i].validation_sharpe)
    theta, chosen = means[checked[best]], selection[best]
    if cc.finetune_generations:
        theta, chosen, extra = _finetune(config, theta, chosen, z_j, h_j, train_masks, assets, cost, ppy,
                                         jax.random.fold_in(k_search, 1), validation_sharpe, rep)
        selection += extra

    # 6. regimes over the training period's latents
    with rep.task("regimes: Gaussian mixtures over the latents, k by BIC"):
        reg = regimes.fit(np.concatenate([x[t] for x, t in zip(mu, train_masks, strict=True)]),
                          k_max=config.regimes.k_max, seed=config.seed, max_fit=config.regimes.max_fit)
        labels = [reg.predict(x) for x in mu]
        matrix = regimes.transitions(labels, reg.k)
        stats = regimes.profile(labels, [a.r for a in assets], reg.k, periods_per_year=ppy)
    reg_frame = pl.concat([pl.DataFrame({"asset": [a.asset] * len(a.ts), "ts": a.ts, "close": a.close,
                                         "regime": lab.astype(np.int32)})
                           for a, lab in zip(assets, labels, strict=True)])

    # 7. backtests
    tried = census(ws, dataset.id, candidate=job.id, chain={kind: mm.id for kind, mm in job.parents.items()})
    n_trials = max(config.backtest.trials, tried.n_trials)
    done, pos_frames, eq_frames, intervals = [], [], [], []
    for i, period in enumerate(periods):
        ts, pos_c, valid, r_next, r_now = _clocked(assets, walk(theta), period.span, config.backtest.max_bars)
        if not len(ts):
            skipped.append(Skipped(period.name, "no bars inside the period"))
            continue
        strategies = {artifact.STRATEGY: np.where(valid, pos_c, 0.0), **backtest.baseline_positions(
            r_now, valid, window=config.backtest.momentum_window, seed=config.backtest.random_seed + i)}
        rows, pnls = backtest.evaluate(strategies, r_next, valid, cost_levels=config.backtest.cost_levels,
                                       periods_per_year=ppy, n_trials={artifact.STRATEGY: n_trials},
                                       trial_sharpes=tried.sharpes)
        present = valid.any(0)
        done.append(Backtest(period.name, period.span, bars=len(ts), assets=int(present.sum()), seed=config.seed,
                             rows=rows, absent=tuple(a.asset for a, p in zip(assets, present, strict=True) if not p)))
        pos_frames.append(positions_frame(period.name, ts, assets, strategies, r_next, valid))
        eq_frames.append(backtest.equity_frame(period.name, ts, pnls))
        intervals += [SharpeInterval(period.name, c, sharpe_interval(x, periods_per_year=ppy, seed=config.seed))
                      for c, x in pnls[artifact.STRATEGY].items()]

    import io
    import json

    buf = io.BytesIO()
    np.savez(buf, theta=np.asarray(theta, np.float32), means=means.astype(np.float32))
    job.writer.write_bytes("controller.npz", buf.getvalue())
    job.writer.write_bytes("normalizer.json", normalizer.to_json())
    job.writer.write_bytes("regimes.json", json.dumps(reg.to_dict(), indent=1).encode())
    job.writer.write_parquet("regimes.parquet", reg_frame)
    val_by_gen = {x.generation: x.validation_sharpe for x in selection if x.phase == "dream"}
    job.writer.write_parquet("search.parquet", pl.DataFrame({
        "generation": np.arange(1, cc.generations + 1), "fitness_mean": f_mean.astype(np.float64),
        "fitness_max": f_max.astype(np.float64), "sigma": sig.astype(np.float64),
        "validation_sharpe": [val_by_gen.get(g) for g in range(1, cc.generations + 1)]}))
    if pos_frames:
        job.writer.write_parquet("positions.parquet", pl.concat(pos_frames))
        job.writer.write_parquet("equity.parquet", pl.concat(eq_frames))
    summary = Summary(
        fold=fold.name, features=tuple(normalizer.names), latent=config.vae.latent, hidden=config.mdn.hidden,
        mixtures=config.mdn.mixtures, parameters=d, population=cc.population, generations=cc.generations,
        dreams=cc.dreams, horizon=cc.horizon, temperature=cc.temperature, fitness=cc.fitness,
        cvar_alpha=cc.cvar_alpha, cost_bps=cc.cost_bps, ret_scale=scale, periods_per_year=ppy,
        selected_generation=chosen.generation, selected_phase=chosen.phase, selection=tuple(selection),
        heldout=held, regimes=RegimesSummary(
            k=reg.k, criterion=reg.criterion, bic=tuple(reg.bic), aic=tuple(reg.aic), weights=tuple(reg.weights),
            rows_fitted=reg.rows_fitted, transitions=tuple(map(tuple, np.asarray(matrix).tolist())),
            stats=tuple(stats)),
        n_trials=n_trials, trials=tried.trials(), small_trader=SMALL_TRADER, accounting=ACCOUNTING,
        skipped=tuple(skipped), history_vae=tuple(v.history), history_mdn=tuple(m.history), transfer=transfer)
    # the chosen controller's dream fitness on fresh dreams (the search's best is biased up: each
    # generation's best was picked on that generation's own noise)
    fresh = float(jax.jit(fit)(jnp.asarray(theta)[None], jax.random.fold_in(k_search, 2))[0])
    metrics = Metrics(backtest=tuple(done), intervals=tuple(intervals), dream_fitness=fresh)
    return template.Output(to_dict(metrics), to_dict(summary), fitted={"train": fold.train.to_dict()},
                           selected={"validation": fold.validation.to_dict()})


def _finetune(config, theta0, chosen0, z, h, train_masks, assets, cost, ppy, key, validation_sharpe, rep):
    """CMA-ES from θ0 (chosen in the dream: `chosen0`) on the real training period's
    portfolio Sharpe at `cost`; the best of the fine-tuned means and θ0 on validation is
    kept. Returns (θ, its Selection, the fine-tune's Selection rows)."""
    import jax
    import jax.numpy as jnp

    from strates.worldmodels import search
    from strates.worldmodels.controller import positions

    cc = config.controller
    trade = jnp.asarray(_padded(train_masks))
    r_next = np.zeros(trade.shape)
    for i, a in enumerate(assets):
        r_next[i, :len(a.r) - 1] = a.r[1:]
    valid = np.asarray(trade) & np.concatenate([np.asarray(trade)[:, 1:], np.zeros((len(assets), 1), bool)], 1)
    simple, valid_j = jnp.asarray(np.expm1(np.where(valid, r_next, 0.0))), jnp.asarray(valid)

    def fitness(population, _key):
        def one(theta):
            pos = jnp.where(valid_j, positions(theta, z, h, trade), 0.0)  # [A, T]
            prev = jnp.concatenate([jnp.zeros_like(pos[:, :1]), pos[:, :-1]], axis=1)
            pnl = accounting.asset_pnl(pos, simple, prev, cost=cost)
            count = valid_j.sum(0)
            port = jnp.where(count > 0, jnp.where(valid_j, pnl, 0.0).sum(0) / jnp.maximum(count, 1), 0.0)
            return port.mean() / (port.std() + 1e-12) * jnp.sqrt(ppy)

        return jax.vmap(one)(population)

    g = cc.finetune_generations
    with rep.task(f"fine-tuning C on the real training period: {cc.population} x {g} generations"):
        res = search.run(fitness, jnp.asarray(theta0), population=cc.population, sigma0=cc.sigma0 * 0.2,
                         generations=g, key=key)
    means, f_mean = np.asarray(res.mean), np.asarray(res.fitness_mean)
    checked = sorted({*range(cc.select_every - 1, g, cc.select_every), g - 1})
    rows = [Selection(i + 1, float(f_mean[i]), validation_sharpe(means[i]), phase="finetune") for i in checked]
    best = max(range(len(rows)), key=lambda i: rows[i].validation_sharpe)
    if rows[best].validation_sharpe > chosen0.validation_sharpe:
        return means[checked[best]], rows[best], rows
    return theta0, chosen0, rows


def _check_shapes(source: str, fresh_v, fresh_m, models) -> None:
    import jax

    same = lambda a, b: jax.tree.map(lambda x: tuple(x.shape), a) == jax.tree.map(lambda x: tuple(x.shape), b)  # noqa: E731
    if not (same(fresh_v, models.vae) and same(fresh_m, models.mdn)):
        raise ConfigError(f"--init-from {source} has other V/M sizes (features.window, vae.latent, vae.width, "
                          "mdn.hidden, mdn.mixtures) than this configuration", field="init_from",
                          fix="use the same preset and --set values as the source artifact")


STAGE: template.Stage[Config] = template.Stage(
    kind=artifact.KIND, command=artifact.COMMAND, config=Config, build=build, parents=("dataset",),
    presets=PRESETS, default_preset=DEFAULT_PRESET, prepare=_prepare, resume=True,
)


def run(config: Config, ws: Workspace, *, dataset: str | artifacts.Manifest = "latest", init_from: str = "",
        force: bool = False, reporter=None) -> template.Result:
    """Train and backtest the World Models family on `dataset`; `init_from` (a reference to
    a `worldmodels` artifact) starts V and M from it."""
    import dataclasses

    if init_from:
        config = dataclasses.replace(config, init_from=artifact.load(ws, init_from).id)
    return template.run(STAGE, config, ws, parents={"dataset": dataset}, force=force, reporter=reporter)
