"""The report's decision sections: Strate IV (the agent's backtest) and Multiverse
Crossing (how decisions survive perturbations, and what filtering on them does)."""

from __future__ import annotations

from collections.abc import Mapping

from strates.report import figures
from strates.report.document import (
    MISSING, Block, Facts, Figure, Heading, Section, Text, dig, facts, fixed, integer, num, pct, slug, span, table, text,
)
from strates.report.sections import absent
from strates.report.sources import Sources

AGENT_STRATEGIES = ("agent", "buy_and_hold", "momentum", "random")
MULTIVERSE_STRATEGIES = ("deterministic", "filtered", "sized")
MULTIVERSE_METRICS = ("consensus", "bifurcation", "effective_modes", "lyapunov")
METRIC_COLUMNS = ("Sharpe", "Sortino", "max drawdown", "annual return", "turnover", "hit rate", "DSR")

DEFINITIONS = (
    ("representation", "The JEPA state h_t is normalised to unit length, so every state is a point on the unit "
                       "sphere."),
    ("geodesic perturbation", "From a unit state u, draw a Gaussian vector, keep its component orthogonal to u and "
                              "scale it to unit length (v̂); the perturbed state is u' = cos(σ)·u + sin(σ)·v̂, a move "
                              "of angle σ along a great circle, so u' stays exactly on the sphere."),
    ("universes", "The unperturbed state and M perturbed copies of it. Each universe gets N futures from Strate III "
                  "and a decision from Strate IV, with the same random numbers in every universe, so that any "
                  "difference between universes comes from the perturbation alone."),
    ("consensus", "The share of universes whose decision direction (short, flat or long) is the majority "
                  "direction."),
    ("contested", "A decision whose consensus is below the threshold (default 2/3)."),
    ("bifurcation index", "The share of perturbed universes whose decision direction differs from the unperturbed "
                          "decision; 0 means none does."),
    ("decision noise floor", "The same share for M re-seeded copies of the unperturbed universe (σ = 0; only the "
                             "futures noise and the planner's random numbers change): how often the decision flips "
                             "from the agent's own sampling. Only bifurcation above it is caused by the perturbation."),
    ("verdict", "A paired stationary block bootstrap of the per-bar return difference (policy − deterministic) on "
                "every bar of the period; the filter or the sizing is shown to help only when the 95% interval of "
                "the annualised Sharpe difference lies above 0."),
    ("effective number of modes", "exp of the entropy of the normalised eigenvalues of the covariance, across "
                                  "universes, of the universes' mean futures: 1 when the universes agree, more when "
                                  "their futures spread along several directions."),
    ("Lyapunov proxy", "λ = (1/H) · mean over perturbed universes m of log(d_m(H) / d_m(0)), where d_m(t) is the "
                       "distance between universe m's mean future and the unperturbed mean future at step t "
                       "(d_m(0): between the starting states). λ < 0: perturbations shrink (stable); λ > 0: they "
                       "grow."),
)


def _cost(key: str) -> float:
    try:
        return float(str(key).removesuffix("bps"))
    except ValueError:
        return float("inf")


def performance_table(table_: Mapping, order: tuple[str, ...], caption: str):
    """`table_ {strategy: {"<c>bps": summary}}` as one row per strategy and cost."""
    rows = []
    names = [s for s in order if s in table_] + [s for s in table_ if s not in order]
    for name in names:
        for cost, r in sorted((table_.get(name) or {}).items(), key=lambda kv: _cost(kv[0])):
            rows.append((name.replace("_", " "), f"{_cost(cost):g}", fixed(r.get("sharpe")), fixed(r.get("sortino")),
                         pct(r.get("max_drawdown")), pct(r.get("annual_return")), fixed(r.get("turnover"), 3),
                         pct(r.get("hit_rate"), 0), fixed(r.get("dsr"))))
    return table(("strategy", "cost (bps)", *METRIC_COLUMNS), rows, caption, left=1)


BACKTEST_NOTE = ("Sharpe and Sortino are annualised; max drawdown is the largest peak-to-trough loss of wealth; "
                 "annual return is the compound annual growth of wealth; all figures are on the equal-weight portfolio's "
                 "simple returns (a·(e^r − 1) − cost·|Δa| per asset), annualised with the dataset's measured periods "
                 "per year; turnover is the mean one-way |Δposition| per asset "
                 "per bar; hit rate is the share of active bars with a positive PnL; DSR is the deflated Sharpe "
                 "ratio, the probability that the true Sharpe exceeds the best of the trials expected by chance.")


# -- 5. agent ------------------------------------------------------------------------------
def agent(src: Sources) -> Section:
    title = "Strate IV: agent backtest"
    m = src.get("agent")
    if m is None:
        return Section("agent", title, (absent("agent", "chaos train-agent"),))
    s, c = m.summary, m.config
    blocks: list[Block] = [facts([
        ("planner", f"{text(dig(s, 'planner', default=dig(c, 'planner', 'kind')))} over "
                    f"{integer(dig(s, 'futures_per_state', default=dig(c, 'planner', 'futures')))} futures per state"),
        ("risk measure", f"CVaR at α = {num(dig(s, 'cvar_alpha', default=dig(c, 'planner', 'cvar_alpha')))} of the "
                         "path PnL (α = 1 is the mean)"),
        ("cost planned with", f"{num(dig(s, 'cost_bps', default=dig(c, 'env', 'cost_bps')))} bps per side"),
        ("trials for the DSR", integer(dig(s, "n_trials"))),
        ("periods per year", f"{num(dig(s, 'periods_per_year'))} (measured from the data)"
                             if dig(s, "periods_per_year") else "365.25 days of bars (dataset predates the measure)"),
        ("small-trader assumption", text(dig(s, "small_trader"))),
        ("trained on", f"{integer(dig(s, 'transitions'))} transitions of {span(dig(m.fitted, 'train'))}"),
    ])]
    blocks.append(Text(f"Baselines: buy and hold (long every asset throughout), momentum (the sign of the trailing "
                       f"{text(dig(c, 'backtest', 'momentum_window'))}-bar return), random (uniform positions in [-1, 1]). "
                       "Every strategy is an equal-weight portfolio over the assets, net of costs."))
    for skipped in dig(s, "skipped", default=[]) or []:
        blocks.append(Text(f"Not backtested: {text(skipped.get('fold'))}: {text(skipped.get('reason'))}.", muted=True))
    equity = src.frame("agent", "equity.parquet")
    backtest = dig(m.metrics, "backtest", default={}) or {}
    if not backtest:
        blocks.append(Text("Backtest: not recorded.", muted=True))
    for name, p in backtest.items():
        blocks.append(Heading(f"{name}: {span(p)}, {integer(p.get('bars'))} bars x {integer(p.get('assets'))} assets"))
        if p.get("absent"):
            blocks.append(Text(f"Left out of this period's equal-weight portfolio (no bars inside it): "
                               f"{', '.join(map(str, p['absent']))}.", muted=True))
        blocks.append(performance_table(p.get("table", {}), AGENT_STRATEGIES,
                                        "The same positions charged at each cost level. " + BACKTEST_NOTE))
        curve = _period(equity, name)
        if curve is not None:
            blocks.append(Figure(f"agent-equity-{slug(name)}",
                                 figures.equity(curve, strategies=AGENT_STRATEGIES, highlight="agent",
                                                dpi=src.config.dpi, max_points=src.config.max_points),
                                 f"Equity (wealth − 1, net of costs) of the agent and the baselines over the "
                                 f"{name} period, one panel per cost level."))
        else:
            blocks.append(Text("Equity curves: not recorded.", muted=True))
    return Section("agent", title, tuple(blocks))


def _period(frame, name: str):
    import polars as pl

    if frame is None or "period" not in frame.columns:
        return frame
    out = frame.filter(pl.col("period") == name)
    return out if out.height else None


# -- 6. multiverse -------------------------------------------------------------------------
def multiverse(src: Sources) -> Section:
    title = "Multiverse Crossing"
    m = src.get("multiverse")
    mt, cfg = m.metrics, src.config
    period = dig(mt, "period", default={}) or {}
    threshold = dig(mt, "threshold", default=dig(m.config, "threshold"))
    contested_last = dig(mt, "contested_assets_last")
    blocks: list[Block] = [facts([
        ("universes", f"M = {integer(dig(mt, 'universes'))} perturbed + 1 unperturbed, "
                      f"N = {integer(dig(mt, 'futures'))} futures each"),
        ("perturbation angle", f"σ = {num(dig(mt, 'sigma'))} rad"),
        ("period", f"{text(period.get('name'))}: {span(period)}, {integer(period.get('bars'))} bars"),
        ("contested threshold", f"consensus < {fixed(threshold, 3)}"),
        ("decision times", f"{integer(dig(mt, 'decision_times', 'count'))} of {integer(period.get('bars'))} bars"
                           + (" (every bar)" if dig(mt, "decision_times", "every") else
                              ", evenly spaced over the whole period")),
        ("decisions", integer(dig(mt, "decisions"))),
        ("bifurcation vs noise floor", f"{num(dig(mt, 'noise_floor', 'bifurcation'))} vs flip rate "
                                       f"{num(dig(mt, 'noise_floor', 'flip_rate'))} of {integer(dig(mt, 'universes'))} "
                                       f"re-seeded copies at σ = 0 (above the floor: "
                                       f"{num(dig(mt, 'noise_floor', 'above_floor'))})"),
        ("contested", f"{integer(dig(mt, 'contested'))} ({pct(dig(mt, 'contested_share'))} of decisions)"),
        ("contested at the last decision time", MISSING if contested_last is None else text(contested_last)),
    ])]
    dist = dig(mt, "distribution", default={}) or {}
    stats = ("mean", "std", "min", "p05", "p25", "p50", "p75", "p95", "max")
    order = [k for k in MULTIVERSE_METRICS if k in dist] + sorted(k for k in dist if k not in MULTIVERSE_METRICS)
    if dist:
        blocks.append(table(("metric", *stats),
                            [(k.replace("_", " "), *(num(dig(dist, k, q), 3) for q in stats)) for k in order],
                            "Distribution of the per-decision metrics over every asset and decision time."))
    decisions = src.frame("multiverse", "decisions.parquet")
    decisions = _period(decisions, text(period.get("name"))) if period.get("name") else decisions
    if decisions is not None and decisions.height:
        blocks.append(Figure("multiverse-heatmaps", figures.heatmaps(decisions, bins=cfg.heatmap_times, dpi=cfg.dpi),
                             "Per asset and decision time: consensus, bifurcation index and Lyapunov proxy "
                             "(a column averages consecutive decision times when there are many)."))
        blocks.append(Figure("multiverse-distribution",
                             figures.distributions(decisions, threshold=threshold, dpi=cfg.dpi),
                             "Histograms of the per-decision metrics; dashed: the contested threshold."))
    else:
        blocks.append(Text("Per-decision metrics: not recorded (decisions.parquet missing).", muted=True))
    blocks.append(Heading("filtered vs deterministic"))
    blocks.append(Text("deterministic: the agent's own backtest (universe 0). filtered: walked from its own positions, "
                       "no trade while the latest multiverse reading is contested (the position is held). sized: walked "
                       "from its own positions, each decision scaled by the latest reading's consensus. A reading "
                       "stands until the next decision time. All three on every bar of the period, at the same costs."))
    comparison = dig(mt, "comparison", default={}) or {}
    if comparison:
        blocks.append(performance_table(comparison, MULTIVERSE_STRATEGIES, BACKTEST_NOTE))
        blocks.extend(verdict(dig(mt, "verdict", default={}) or {}, dig(mt, "contested")))
        curve = src.frame("multiverse", "equity.parquet")
        if curve is not None and curve.height:
            blocks.append(Figure("multiverse-equity",
                                 figures.equity(curve, strategies=MULTIVERSE_STRATEGIES, highlight="deterministic",
                                                dpi=cfg.dpi, max_points=cfg.max_points),
                                 "Equity (wealth − 1, net of costs) of the deterministic, filtered and "
                                 "consensus-sized policies, one panel per cost level."))
    else:
        blocks.append(Text("Comparison: not recorded.", muted=True))
    blocks.append(Heading("definitions"))
    blocks.append(Facts(DEFINITIONS))
    return Section("multiverse", title, tuple(blocks))


def verdict(verdicts: Mapping, contested) -> list[Block]:
    """The paired block-bootstrap intervals as a table, and plain sentences that claim only
    what an interval excluding 0 shows."""
    lines: list[Block] = []
    if contested == 0:
        lines.append(Text("No decision was contested, so the filtered policy is the deterministic policy: the "
                          "comparison cannot show an effect of filtering here."))
    rows, shown = [], []
    for cost in sorted(verdicts, key=_cost):
        for policy in ("filtered", "sized"):
            v = verdicts[cost].get(policy)
            if not v:
                continue
            rows.append((policy, f"{_cost(cost):g}", f"{fixed(v.get('sharpe_diff'))} [{fixed(v.get('sharpe_lo'))}, "
                         f"{fixed(v.get('sharpe_hi'))}]", f"{pct(v.get('return_diff'))} [{pct(v.get('return_lo'))}, "
                         f"{pct(v.get('return_hi'))}]", fixed(v.get("block"), 1), "shown" if v.get("shown") else "not shown"))
            if v.get("shown"):
                shown.append(f"{policy} at {_cost(cost):g} bps ({'better' if v['sharpe_lo'] > 0 else 'worse'})")
    if rows:
        lines.append(table(("policy", "cost (bps)", "Δ Sharpe [95% CI]", "Δ annual return [95% CI]", "block",
                            "difference"), rows,
                           "Policy minus deterministic, per bar on the same bars: a paired stationary block bootstrap "
                           "(Politis & Romano; mean block length by Politis & White) of the annualised Sharpe "
                           "difference and of the annualised mean return difference.", left=1))
        lines.append(Text("A difference is shown where its Sharpe interval excludes 0: " + "; ".join(shown) + "."
                          if shown else "No difference is shown: every interval of the Sharpe difference contains 0, "
                          "so this run does not show that the multiverse filter or sizing helps (or hurts)."))
    return lines
