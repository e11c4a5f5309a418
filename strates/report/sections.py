"""The report's first sections, one function each, from the typed artifacts and their
Parquet files: the data and its split, Strate I (tokenizer), Strate II (JEPA), Strate III
(CFM). The tables are the strates' own (`<strate>/artifact.py`), shown by their CLI
commands too; the sections add the facts around them and the figures.

Each takes `Sources` and returns a `Section`; an artifact the report was not given, or a
value an artifact did not record, is shown as "not recorded", and a missing file makes a
note, not an error.
"""

from __future__ import annotations

from strates.cfm import artifact as cfm_artifact
from strates.core import artifacts
from strates.data import artifact as data_artifact
from strates.data.split import PERIODS, Fold, Period
from strates.fsq import artifact as fsq_artifact
from strates.jepa import artifact as jepa_artifact
from strates.report import figures
from strates.report.document import (
    MISSING,
    Block,
    Figure,
    Heading,
    Section,
    Text,
    facts,
    fixed,
    integer,
    num,
    pct,
    span,
    spans,
    table,
    text,
)
from strates.report.sources import Sources


def absent(stage: str, command: str) -> Text:
    return Text(f"No {stage} artifact upstream of this multiverse: not recorded (produced by `{command}`).", muted=True)


def fitted_on(m: artifacts.Manifest) -> str:
    """The ranges an artifact was fitted on."""
    return spans(m.fitted) or MISSING


def selected_on(m: artifacts.Manifest, *, chooses: bool) -> str:
    """The ranges an artifact was selected on (checkpoint choice and the like), for the
    facts beside "fitted on". A stage that `chooses` nothing says so; one that does but
    whose manifest has no record says "not recorded"."""
    ranges = spans(m.selected)
    if ranges:
        return ranges
    return MISSING if chooses else "nothing (fixed training steps, last parameters)"


def used_fold(src: Sources) -> Fold | None:
    """The dataset fold the models were fitted on (named by the cfm, agent, jepa or tokens
    artifact), or None without a dataset or any of them."""
    if src.dataset is None:
        return None
    for a in (src.cfm, src.agent, src.jepa, src.tokens):
        if a is not None:
            return src.dataset.fold(a.summary.fold)
    return None


# -- 1. data -------------------------------------------------------------------------------
def data(src: Sources) -> Section:
    title = "Data and split"
    ds, cfg = src.dataset, src.config
    if ds is None:
        return Section("data", title, (absent("dataset", "chaos ingest"),))
    s = ds.summary
    fold = used_fold(src)
    used = fold.name if fold else MISSING
    blocks: list[Block] = [facts([
        ("source", s.source),
        ("assets", integer(s.n_assets)),
        ("rows", integer(s.rows)),
        ("time range", span(Period(s.start, s.end))),
        ("bar interval", s.interval),
        ("gaps", f"{integer(s.gaps.count)} gaps, {integer(s.gaps.missing_bars)} missing bars"),
        ("split", f"{s.split.spec}; the models were fitted on fold {used}"),
    ])]
    blocks += [Text(note, muted=True) for note in s.notes]
    blocks += data_artifact.tables(ds)
    channel = s.channels[0] if ds.is_series else None  # a generic series: its first channel, per system
    bars = src.frame("dataset", "bars.parquet", ["asset", "ts", channel or "close"])
    if bars is not None and bars.height:
        shaded = [(p, fold.period(p).start, fold.period(p).end) for p in PERIODS] if fold else []
        what = f"The first channel ({channel}) per system" if channel else \
            "Cumulative log return of the close per asset"
        blocks.append(Figure("data-prices", figures.prices(bars, shaded, dpi=cfg.dpi, max_points=cfg.max_points,
                                                           channel=channel),
                             f"{what}; shaded: the train, validation and test periods of fold {used}."))
    else:
        blocks.append(Text("Bars: not recorded (bars.parquet missing).", muted=True))
    return Section("data", title, tuple(blocks))


# -- 2. tokenizer --------------------------------------------------------------------------
def tokenizer(src: Sources) -> Section:
    title = "Strate I: tokenizer"
    tk, tok = src.tokenizer, src.tokens
    if tk is None and tok is None:
        return Section("tokenizer", title, (absent("tokenizer", "chaos tokenize"),))
    blocks: list[Block] = []
    if tk is not None:
        blocks.append(facts([
            ("codebook", f"{integer(tk.summary.codebook_size)} codes, FSQ levels {text(tk.summary.levels)}"),
            ("fitted on", fitted_on(tk.manifest)),
            ("selected on", selected_on(tk.manifest, chooses=False)),
            ("training", f"{integer(tk.metrics.steps)} steps, final loss {num(tk.metrics.final_loss)}"),
        ]))
        blocks.append(fsq_artifact.tokenizer_table(tk))
    else:
        blocks.append(Text("Tokenizer: not recorded (its artifact was not given).", muted=True))
    if tok is not None:
        blocks.append(fsq_artifact.tokens_table(tok))
        blocks.append(Text("The tokenizer scores its training and validation periods; the tokens artifact measures "
                           "the code use of every period it encoded, the test period included.", muted=True))
    periods = tk.metrics.periods() if tk is not None else {}
    features = list(dict.fromkeys(f for p in periods.values() for f in p.r2))
    if tk is not None and features:
        blocks.append(reconstruction_table(periods, features))
        blocks.append(Figure("tokenizer", figures.tokenizer({name: p.r2 for name, p in periods.items()},
                                                            tk.summary.history, dpi=src.config.dpi),
                             "Left: reconstruction R² per feature, train vs validation. Right: training loss "
                             "(reconstruction MSE plus the code-usage term) and the MSE alone."))
    else:
        blocks.append(Text("Reconstruction R² per feature: not recorded.", muted=True))
    return Section("tokenizer", title, tuple(blocks))


def reconstruction_table(periods: dict[str, fsq_artifact.PeriodMetrics], features: list[str]):
    """R² and MSE of every feature's reconstruction, per period the tokenizer scored."""
    names = list(periods)
    return table(("feature", *(f"R² {p}" for p in names), *(f"MSE {p}" for p in names)),
                 [(f, *(fixed(periods[p].r2.get(f), 3) for p in names),
                   *(fixed(periods[p].mse.get(f), 4) for p in names)) for f in features],
                 "Reconstruction of the normalised features from the codes.")


# -- 3. jepa -------------------------------------------------------------------------------
def jepa(src: Sources) -> Section:
    title = "Strate II: JEPA world model"
    j = src.jepa
    if j is None:
        return Section("jepa", title, (absent("jepa", "chaos train-jepa"),))
    s, mt = j.summary, j.metrics
    blocks: list[Block] = [facts([
        ("fitted on", fitted_on(j.manifest)),
        ("selected on", f"{selected_on(j.manifest, chooses=True)} (checkpoint choice); RankMe and probes measured on "
                        f"{span(s.diagnostic)}, which chose nothing"),
        ("effective rank share", f"{pct(mt.rankme / mt.embedding_dims)} of {integer(mt.embedding_dims)} dimensions"),
    ])]
    blocks += jepa_artifact.tables(j)
    if mt.final is None:
        blocks.append(Text("Loss terms at the last training step: not recorded (a resumed run had no step left).",
                           muted=True))
    validation = {c.step: c.loss for c in mt.selection.losses}
    if s.history or validation:
        blocks.append(Figure("jepa-loss", figures.jepa_loss(s.history, validation, selected=s.selected_step,
                                                            dpi=src.config.dpi),
                             "Left: training loss and its prediction term; validation loss at each kept checkpoint "
                             "(dashed) and the selected step. Right: VICReg variance and covariance terms."))
    else:
        blocks.append(Text("Loss curves: not recorded.", muted=True))
    return Section("jepa", title, tuple(blocks))


# -- 4. cfm -------------------------------------------------------------------------------
PIT_FORECASTS = ("cfm", "cfm_recalibrated", "garch_t")  # the PIT figure's panels, where scored


def cfm(src: Sources) -> Section:
    title = "Strate III: conditional flow matching"
    c = src.cfm
    if c is None:
        return Section("cfm", title, (absent("cfm", "chaos train-cfm"),))
    cfg, mt = c.config, c.metrics
    blocks: list[Block] = [facts([
        ("coupling", f"{c.summary.main} (compared: {text(c.summary.couplings)})"),
        ("futures", f"{integer(cfg.sample.futures)} per state, horizon {integer(cfg.future.horizon)} bars, "
                    f"{cfg.sample.method} with NFE {integer(cfg.sample.nfe)}"),
        ("ensemble", integer(c.summary.ensemble)),
        ("fitted on", fitted_on(c.manifest)),
        ("selected on", selected_on(c.manifest, chooses=mt.spread != 1.0)),
        ("spread recalibration", recalibration(c)),
        ("uses its condition", condition_check(c)),
    ])]
    skills: dict[str, dict[str, dict[str, tuple[float, float, float]]]] = {}
    pits: dict[str, dict[str, tuple[float, ...]]] = {}
    pit_horizon = 0
    for name in ("validation", "test"):
        p = mt.period(name)
        scores = cfm_artifact.scores_table(c, name)
        if p is None or scores is None:
            blocks.append(Text(f"{name}: not recorded (no state to score).", muted=True))
            continue
        blocks.append(Heading(name))
        blocks += [t for t in (scores, cfm_artifact.skill_table(c, name), cfm_artifact.calibration_table(c, name))
                   if t is not None]
        blocks.append(Text(f"{name}: largest |‖state‖ − 1| of sampled states {num(p.sphere_norm_max_error)}.",
                           muted=True))
        skills[name] = skill_points(p)
        last = {key: max(p.calibration[key], key=lambda cal: cal.horizon) for key in PIT_FORECASTS
                if p.calibration.get(key)}
        if last:
            pits[name] = {key: cal.pit for key, cal in last.items()}
            pit_horizon = max(cal.horizon for cal in last.values())
    if any(skills.values()):
        level = next(s.level for p in (mt.validation, mt.test) if p is not None for row in p.skill.values()
                     for s in row.values())
        blocks.append(Figure("cfm-skill", figures.skill(skills, dpi=src.config.dpi),
                             "CRPS skill 1 − CRPS_cfm / CRPS_other of the cumulative log return at each horizon, "
                             "against each baseline and against the flow itself given a shuffled condition (same "
                             f"noise and units), on the same states; error bars: {level:.0%} intervals of a paired "
                             "stationary block bootstrap over dates. Above 0 (the line) the flow is better."))
    if pits:
        blocks.append(Figure("cfm-pit", figures.pit(pits, horizon=pit_horizon, dpi=src.config.dpi),
                             f"PIT histograms of the cumulative log return at the last horizon (h={pit_horizon}): "
                             "where each realised return falls among its futures, in 10 equal bins on [0, 1]. A "
                             "calibrated forecast is flat at density 1 (dashed); a hump in the middle means the "
                             "futures are too wide, a U shape too narrow, a slope biased. The recalibrated flow's "
                             "spread was fitted on validation, so its validation histogram is in-sample."))
    blocks += [t for t in (cfm_artifact.nfe_table(c), cfm_artifact.couplings_table(c)) if t is not None]
    blocks.extend(fan_charts(src))
    return Section("cfm", title, tuple(blocks))


def recalibration(c: cfm_artifact.Cfm) -> str:
    """The spread factor the flow's futures are widened by (fitted on validation), or why none."""
    if not c.config.eval.recalibrate:
        return "none (eval.recalibrate is off)"
    if c.metrics.validation is None:
        return "none (validation was not scored, so no factor was fitted)"
    return (f"factor {c.metrics.spread:.3f} on every future's deviation from its state's mean, fitted on validation "
            "(downstream stages sample with it)")


def condition_check(c: cfm_artifact.Cfm) -> str:
    """Whether the flow beats itself given a shuffled condition at every validation horizon
    (`Metrics.condition_used`), with the skill at each horizon."""
    answer = c.metrics.condition_used
    v = c.metrics.validation
    if answer is None or v is None:
        return f"{MISSING} (validation was not scored)"
    row = ", ".join(f"{h} {s[cfm_artifact.SHUFFLED].value:+.3f}" for h, s in v.skill.items()
                    if cfm_artifact.SHUFFLED in s)
    return (f"the flow beats itself given a shuffled condition at every validation horizon: {text(answer)} "
            f"(CRPS skill against the shuffled condition: {row})")


def skill_points(p: cfm_artifact.PeriodScores) -> dict[str, dict[str, tuple[float, float, float]]]:
    """{horizon: {forecast: (skill, lo, hi)}} of the flow against each baseline and against
    itself given a shuffled condition (named `cfm_shuffled`, the forecast it is scored on)."""
    against = [*cfm_artifact.BASELINES, cfm_artifact.SHUFFLED]
    return {h: {("cfm_shuffled" if b == cfm_artifact.SHUFFLED else b): (row[b].value, row[b].lo, row[b].hi)
                for b in against if b in row} for h, row in p.skill.items()}


def fan_charts(src: Sources) -> list[Block]:
    fans = src.frame("multiverse", "fans.parquet")
    if src.multiverse is None or fans is None or not fans.height:
        return [Text("Fan charts: not recorded (no multiverse artifact with fans.parquet).", muted=True)]
    cfg, p = src.config, src.multiverse.metrics.period
    return [Heading("fan charts"),
            Figure("cfm-fans", figures.fans(fans, assets=cfg.fan_assets, times=cfg.fan_times, dpi=cfg.dpi),
                   "Futures of the cumulative log return from the unperturbed state at a few decision times of the "
                   f"{p.name} period ({span(p.span)}): 5-95% and 25-75% bands and median of the futures, against the "
                   "realised path (black).")]
