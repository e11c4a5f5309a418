"""The report's first sections, one function each, from manifests and Parquet files:
the data and its split, Strate I (tokenizer), Strate II (JEPA), Strate III (CFM).

Each takes `Sources` and returns a `Section`; a value an artifact did not record is shown
as "not recorded", and a missing artifact or file makes a note, not an error.
"""

from __future__ import annotations

from strates.report import figures
from strates.report.document import (
    MISSING, Block, Figure, Heading, Section, Text, dig, duration, facts, fixed, integer, num, pct, span, table, text,
    when,
)
from strates.report.sources import Sources

SPLIT_PERIODS = ("train", "validation", "test")


def absent(stage: str, command: str) -> Text:
    return Text(f"No {stage} artifact upstream of this multiverse: not recorded (produced by `{command}`).", muted=True)


def selected_on(m, *, chooses: bool) -> str:
    """The ranges an artifact was selected on (checkpoint choice and the like), for the
    facts beside "fitted on". A stage that `chooses` nothing says so; one that does but
    whose manifest predates the record says "not recorded"."""
    ranges = "; ".join(f"{name}: {span(value)}" for name, value in sorted((m.selected if m else {}).items()))
    if ranges:
        return ranges
    return MISSING if chooses else "nothing (fixed training steps, last parameters)"


def used_fold(src: Sources) -> dict | None:
    """The dataset fold the models were fitted on (named in the cfm, agent, jepa or tokens
    artifact), or None when none names one."""
    dataset = src.get("dataset")
    folds = dig(dataset.summary, "split", "folds", default=[]) if dataset else []
    name = None
    for stage in ("cfm", "agent", "jepa", "tokens"):
        m = src.get(stage)
        name = name or (dig(m.summary, "fold") if m else None) or (dig(m.config, "fold") if m else None)
    return next((f for f in folds if f.get("name") == name), None)


# -- 1. data -------------------------------------------------------------------------------
def data(src: Sources) -> Section:
    title = "Data and split"
    m = src.get("dataset")
    if m is None:
        return Section("data", title, (absent("dataset", "chaos ingest"),))
    s, cfg = m.summary, src.config
    fold = used_fold(src)
    blocks: list[Block] = [facts([
        ("source", dig(s, "source", default=MISSING)),
        ("assets", integer(dig(s, "n_assets", default=dig(m.metrics, "assets")))),
        ("rows", integer(dig(s, "rows", default=dig(m.metrics, "rows")))),
        ("time range", span(s)),
        ("bar interval", text(dig(s, "interval")) if dig(s, "interval") else duration(dig(s, "interval_seconds"))),
        ("gaps", f"{integer(dig(s, 'gaps', 'count'))} gaps, {integer(dig(s, 'gaps', 'missing_bars'))} missing bars"),
        ("split", f"{dig(s, 'split', 'spec', default=MISSING)}; the models were fitted on fold "
                  f"{fold['name'] if fold else MISSING}"),
    ])]
    for note in dig(s, "notes", default=[]) or []:
        blocks.append(Text(str(note), muted=True))
    assets = dig(s, "assets", default={}) or {}
    if assets:
        blocks.append(table(
            ("asset", "rows", "first bar", "last bar", "gaps", "missing bars"),
            [(a, integer(r.get("rows")), when(r.get("start")), when(r.get("end")), integer(r.get("gaps")),
              integer(r.get("missing_bars"))) for a, r in sorted(assets.items())],
            "Bars per asset (UTC)."))
    folds = dig(s, "split", "folds", default=[]) or []
    if folds:
        rows = [(f"{f.get('name')}{' (used)' if fold and f.get('name') == fold.get('name') else ''}",
                 *(span(f.get(p)) for p in SPLIT_PERIODS)) for f in folds]
        blocks.append(table(("fold", "train", "validation", "test"), rows,
                            "Fold boundaries (UTC, end exclusive). Every model is fitted before its fold's "
                            "validation start; evaluation runs only on later data.", left=4))
    macro = dig(s, "macro", default={}) or {}
    if macro:
        blocks.append(table(
            ("series", "observations", "first observed", "last observed", "publication lag"),
            [(k, integer(v.get("observations")), when(v.get("first_observed")), when(v.get("last_observed")),
              _lag(v)) for k, v in sorted(macro.items())],
            "Macro series, joined as-of on their publication time.", left=1))
    bars = src.frame("dataset", "bars.parquet", ["asset", "ts", "close"])
    if bars is not None and bars.height:
        spans = [(p, fold[p]["start"], fold[p]["end"]) for p in SPLIT_PERIODS if fold and p in fold]
        blocks.append(Figure("data-prices", figures.prices(bars, spans, dpi=cfg.dpi, max_points=cfg.max_points),
                             "Cumulative log return of the close per asset; shaded: the train, validation and test "
                             f"periods of fold {fold['name'] if fold else MISSING}."))
    else:
        blocks.append(Text("Bars: not recorded (bars.parquet missing).", muted=True))
    return Section("data", title, tuple(blocks))


def _lag(series: dict) -> str:
    lo, hi = series.get("lag_seconds_min"), series.get("lag_seconds_max")
    if lo is None:
        return MISSING
    return duration(lo) if lo == hi else f"{duration(lo)} .. {duration(hi)}"


# -- 2. tokenizer --------------------------------------------------------------------------
def tokenizer(src: Sources) -> Section:
    title = "Strate I: tokenizer"
    tk, tok = src.get("tokenizer"), src.get("tokens")
    if tk is None and tok is None:
        return Section("tokenizer", title, (absent("tokenizer", "chaos tokenize"),))
    blocks: list[Block] = []
    tm, tkm = (tk.metrics if tk else {}), (tok.metrics if tok else {})
    size = dig(tk.summary if tk else {}, "codebook_size", default=dig(tok.summary if tok else {}, "codebook_size"))
    blocks.append(facts([
        ("codebook", f"{integer(size)} codes, FSQ levels {text(dig(tk.summary if tk else {}, 'levels'))}"),
        ("fitted on", span(dig(tk.fitted if tk else {}, "train"))),
        ("selected on", selected_on(tk, chooses=False)),
        ("training", f"{integer(dig(tm, 'steps'))} steps, final loss {num(dig(tm, 'final_loss'))}"),
    ]))
    rows = []
    for p in SPLIT_PERIODS:
        util = dig(tm, p, "utilization", default=dig(tkm, p, "utilization"))
        used = dig(tm, p, "codes_used", default=util * size if isinstance(util, float) and size else None)
        where = "tokenizer" if dig(tm, p) else "tokens" if dig(tkm, p) else MISSING
        rows.append((p, where, integer(used), pct(util),
                     num(dig(tm, p, "perplexity", default=dig(tkm, p, "perplexity")), 4)))
    blocks.append(table(("period", "measured by", "codes used", "utilization", "perplexity"), rows,
                        f"Code usage per period: utilization = codes used / {integer(size)}; perplexity = exp(entropy "
                        "of the code frequencies), at most the codebook size. The tokenizer scores its training and "
                        "validation periods; the test period is measured over the tokens artifact (encoding only).",
                        left=2))
    r2 = {p: dict(dig(tm, p, "r2", default={}) or {}) for p in ("train", "validation") if dig(tm, p, "r2")}
    features = list(dict.fromkeys(f for row in r2.values() for f in row))
    if features:
        blocks.append(table(
            ("feature", "R² train", "R² validation", "MSE train", "MSE validation"),
            [(f, fixed(dig(tm, "train", "r2", f), 3), fixed(dig(tm, "validation", "r2", f), 3),
              fixed(dig(tm, "train", "mse", f), 4), fixed(dig(tm, "validation", "mse", f), 4)) for f in features],
            "Reconstruction of the normalised features from the codes."))
        history = dig(tk.summary, "history", default=[]) if tk else []
        blocks.append(Figure("tokenizer", figures.tokenizer(r2, history or [], dpi=src.config.dpi),
                             "Left: reconstruction R² per feature, train vs validation. Right: training loss "
                             "(reconstruction MSE plus the code-usage term) and the MSE alone."))
    else:
        blocks.append(Text("Reconstruction R² per feature: not recorded.", muted=True))
    return Section("tokenizer", title, tuple(blocks))


# -- 3. jepa -------------------------------------------------------------------------------
def jepa(src: Sources) -> Section:
    title = "Strate II: JEPA world model"
    m = src.get("jepa")
    if m is None:
        return Section("jepa", title, (absent("jepa", "chaos train-jepa"),))
    mt, s = m.metrics, m.summary
    dims = dig(mt, "embedding_dims")
    rank = dig(mt, "rankme")
    share = f" ({pct(rank / dims)} of {integer(dims)} dimensions)" if isinstance(rank, float) and dims else ""
    selected = dig(s, "selected_step", default=dig(mt, "selection", "step"))
    blocks: list[Block] = [facts([
        ("parameters", integer(dig(mt, "params"))),
        ("effective rank (RankMe)", f"{num(rank)}{share}"),
        ("per-dimension std of h_t", f"min {num(dig(mt, 'per_dim_std', 'min'))}, mean {num(dig(mt, 'per_dim_std', 'mean'))}, "
                                     f"max {num(dig(mt, 'per_dim_std', 'max'))} (isotropic: "
                                     f"{num(dig(mt, 'per_dim_std', 'isotropic'))})"),
        ("selected checkpoint", f"step {text(selected)}, validation loss {num(dig(mt, 'selection', 'validation_loss'), 4)}"),
        ("training", f"{integer(dig(mt, 'steps'))} steps on {text(dig(s, 'topology'))} ({text(dig(s, 'mesh'))}), "
                     f"fitted on {span(dig(m.fitted, 'train'))}"),
        ("selected on", f"{selected_on(m, chooses=True)} (checkpoint choice)"
                        + (f"; RankMe and probes measured on {span(dig(s, 'diagnostic'))}, which chose nothing"
                           if dig(s, "diagnostic") else "")),
    ])]
    final = dig(mt, "final", default={}) or {}
    if final:
        keys = [k for k in ("loss", "pred", "variance", "covariance", "cos", "std") if k in final]
        blocks.append(table(("", *keys), [("final (training)", *(num(final[k], 4) for k in keys))],
                            "Loss terms at the last training step."))
    probe = dig(mt, "probe", default={}) or {}
    names = {"h": "h_t (JEPA state)", "raw": "raw features at t", "raw_window": "raw features, trailing window"}
    rows = [(names.get(k, k), integer(dig(probe, k, "dims")), fixed(dig(probe, k, "vol_r2"), 3),
             pct(dig(probe, k, "sign_accuracy"))) for k in names if k in probe]
    if rows:
        blocks.append(table(("input", "dims", "vol R²", "sign accuracy"), rows,
                            f"Linear probes to the next {text(dig(m.config, 'probe', 'horizon'))}-bar realised volatility "
                            f"(R²) and return sign (accuracy); fitted on {integer(dig(probe, 'train_rows'))} rows, scored "
                            f"on {integer(dig(probe, 'test_rows'))} later rows. Majority-sign rate: "
                            f"{pct(dig(probe, 'majority_sign_rate'))}."))
    else:
        blocks.append(Text("Probes: not recorded.", muted=True))
    history = dig(s, "history", default=[]) or []
    losses = dig(mt, "selection", "losses", default={}) or {}
    validation = {int(k): float(v) for k, v in losses.items()}
    if history or validation:
        blocks.append(Figure("jepa-loss", figures.jepa_loss(history, validation, selected=selected, dpi=src.config.dpi),
                             "Left: training loss and its prediction term; validation loss at each kept checkpoint "
                             "(dashed) and the selected step. Right: VICReg variance and covariance terms."))
    else:
        blocks.append(Text("Loss curves: not recorded.", muted=True))
    return Section("jepa", title, tuple(blocks))


# -- 4. cfm --------------------------------------------------------------------------------
FORECASTS = ("cfm", "bootstrap", "gaussian_rw")


def cfm(src: Sources) -> Section:
    title = "Strate III: conditional flow matching"
    m = src.get("cfm")
    if m is None:
        return Section("cfm", title, (absent("cfm", "chaos train-cfm"),))
    mt, c = m.metrics, m.config
    blocks: list[Block] = [facts([
        ("coupling", f"{text(dig(m.summary, 'main', default=dig(c, 'coupling', 'kind')))} "
                     f"(compared: {text(dig(m.summary, 'couplings'))})"),
        ("futures", f"{integer(dig(c, 'sample', 'futures'))} per state, horizon {integer(dig(c, 'future', 'horizon'))} "
                    f"bars, {text(dig(c, 'sample', 'method'))} with NFE {integer(dig(c, 'sample', 'nfe'))}"),
        ("ensemble", integer(dig(m.summary, "ensemble", default=dig(c, "ensemble")))),
        ("fitted on", span(dig(m.fitted, "train"))),
        ("selected on", selected_on(m, chooses=False)),
    ])]
    scored = {}
    for period in ("validation", "test"):
        p = dig(mt, period)
        if not p:
            blocks.append(Text(f"{period}: not recorded.", muted=True))
            continue
        scored[period] = {name: p.get(name, {}) for name in FORECASTS}
        horizons = dig(p, "cfm", "horizons", default=[]) or []
        cols = ["forecast"]
        for h in horizons:
            cols += [f"CRPS h={h}", f"cov 50/90 h={h}"]
        cols.append("energy")
        rows = []
        for name in FORECASTS:
            row = p.get(name, {})
            cells = [name.replace("_", " ")]
            for h in horizons:
                cells += [num(row.get(f"crps_h{h}"), 4),
                          f"{fixed(row.get(f'cov50_h{h}'), 2)} / {fixed(row.get(f'cov90_h{h}'), 2)}"]
            rows.append((*cells, num(row.get("energy_score"), 4)))
        blocks.append(Heading(f"{period}: {integer(p.get('states'))} states x {integer(p.get('futures_per_state'))} futures"))
        blocks.append(table(cols, rows, "CRPS of the cumulative log return (lower is better) and the share of realised "
                                        "returns inside the 50% and 90% intervals (nominal 0.50 / 0.90); energy score "
                                        "of the return paths. Baselines on the same dates."))
        div = p.get("diversity", {})
        blocks.append(Text(f"Diversity of the futures: Vendi score {num(div.get('vendi'))}, effective number of modes "
                           f"{num(div.get('effective_modes'))}; ensemble disagreement "
                           f"{num(p.get('ensemble_disagreement'))}; largest |‖state‖ − 1| of sampled states "
                           f"{num(p.get('sphere_norm_max_error'))}.", muted=True))
    if scored:
        blocks.append(Figure("cfm-crps", figures.crps_ratio(scored, dpi=src.config.dpi),
                             "CRPS of each forecast divided by the Gaussian random walk's at each horizon (below 1: "
                             "better than the random walk)."))
    nfe = dig(mt, "coupling_nfe", "table", default={}) or {}
    if nfe:
        steps = list(next(iter(nfe.values())))
        blocks.append(Heading("coupling x NFE"))
        blocks.append(table(("coupling", *(f"NFE {s}" for s in steps)),
                            [(k, *(num(dig(row, s, "crps"), 5) for s in steps)) for k, row in nfe.items()],
                            f"Validation CRPS of the cumulative return at the last horizon "
                            f"({text(dig(mt, 'coupling_nfe', 'method'))} sampling), by coupling and number of "
                            "vector-field evaluations."))
    couplings = dig(mt, "couplings", default={}) or {}
    if couplings:
        blocks.append(table(("coupling", "transport cost", "condition distance", "pairs on own condition"),
                            [(k, num(v.get("transport_cost"), 4), num(v.get("condition_distance"), 3),
                              pct(v.get("identity_share"))) for k, v in couplings.items()],
                            "The couplings on training batches: mean squared noise-to-future distance of the pairs, "
                            "mean squared distance between the conditions paired, share of rows kept on their own "
                            "condition."))
    blocks.extend(fan_charts(src))
    return Section("cfm", title, tuple(blocks))


def fan_charts(src: Sources) -> list[Block]:
    fans = src.frame("multiverse", "fans.parquet")
    if fans is None or not fans.height:
        return [Text("Fan charts: not recorded (the multiverse artifact has no fans.parquet).", muted=True)]
    cfg = src.config
    period = dig(src.get("multiverse").metrics, "period", default={}) or {}
    return [Heading("fan charts"),
            Figure("cfm-fans", figures.fans(fans, assets=cfg.fan_assets, times=cfg.fan_times, dpi=cfg.dpi),
                   "Futures of the cumulative log return from the unperturbed state at a few decision times of the "
                   f"{text(period.get('name'))} period ({span(period)}): 5-95% and 25-75% bands and median of the "
                   "futures, against the realised path (black).")]
