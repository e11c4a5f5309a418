"""The report's decision sections: Strate IV (the agent's backtest) and Multiverse
Crossing (how decisions survive perturbations, and what filtering on them does). The
tables are the agent's and the multiverse's own (`agent/artifact.py`, whose backtest table
is also the multiverse comparison, and `multiverse/artifact.py`)."""

from __future__ import annotations

from strates.agent import artifact as agent_artifact
from strates.multiverse import artifact as multiverse_artifact
from strates.report import figures
from strates.report.document import (
    Block,
    Facts,
    Figure,
    Heading,
    Section,
    Text,
    duration,
    facts,
    fixed,
    integer,
    num,
    slug,
    span,
)
from strates.report.sections import absent
from strates.report.sources import Sources

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
    ("pathwise divergence", "d_{m,n}(k): the geodesic distance on the sphere between future n of perturbed universe m "
                            "and future n of the unperturbed universe at step k (both drawn with the same noise), "
                            "k = 1..H; d(0) = σ."),
    ("Lyapunov proxy", "λ per bar: the least-squares slope over k = 0..H of the mean over m and n of log d_{m,n}(k), a "
                       "distance below 1e-6 rad reading as 1e-6. λ < 0: perturbations shrink; λ > 0: they grow. Per "
                       "second: λ divided by the bar interval. A flow that ignores its state draws the same futures in "
                       "every universe and reads the floor (the slope of log σ followed by H times log 1e-6): strongly "
                       "negative, never 0."),
    ("perturbation sensitivity", "At the last step, the mean squared distance of the perturbed universes' mean future "
                                 "states from the unperturbed one's, over the mean spread (trace of the covariance) of "
                                 "the futures within a universe: 0 when the push moves nothing compared with the "
                                 "forecast's own spread."),
    ("future modes", "The number of separate groups among the unperturbed universe's N futures (whole paths), "
                     "independent of their scale: density-based single linkage, a gap wider than 1.5 times the "
                     "spacing of the futures on both sides separates groups of at least max(3, N/10) futures; 1 for "
                     "one Gaussian cloud of any size."),)



# -- 5. agent ------------------------------------------------------------------------------
def agent(src: Sources) -> Section:
    title = "Strate IV: agent backtest"
    a = src.agent
    if a is None:
        return Section("agent", title, (absent("agent", "chaos train-agent"),))
    s = a.summary
    blocks: list[Block] = [facts([
        ("planner", f"{s.planner} over {integer(s.futures_per_state)} futures per state"),
        ("risk measure", f"CVaR at α = {num(s.cvar_alpha)} of the path PnL (α = 1 is the mean)"),
        ("cost planned with", f"{num(s.cost_bps)} bps per side"),
        ("trials for the DSR", integer(s.n_trials)),
        ("periods per year", f"{num(s.periods_per_year)} (measured from the data)"),
        ("small-trader assumption", s.small_trader),
        ("accounting", s.accounting),
        ("trained on", f"{integer(s.transitions)} transitions of {span(a.fitted)}"),
    ])]
    blocks.append(Text(f"Baselines: buy and hold (long every asset throughout), momentum (the sign of the trailing "
                       f"{a.config.backtest.momentum_window}-bar return), random (uniform positions in [-1, 1]). "
                       "Every strategy is an equal-weight portfolio over the assets, net of costs."))
    skipped = agent_artifact.skipped_table(a)
    if skipped is not None:
        blocks.append(skipped)
    if not a.periods:
        blocks.append(Text("Backtest: not recorded.", muted=True))
    equity = src.frame("agent", "equity.parquet")
    for b in a.periods:
        blocks.append(Heading(b.name))
        blocks.append(agent_artifact.backtest_table(a, b))
        curve = _period(equity, b.name)
        if curve is not None:
            blocks.append(Figure(f"agent-equity-{slug(b.name)}",
                                 figures.equity(curve, strategies=agent_artifact.STRATEGIES, highlight="agent",
                                                dpi=src.config.dpi, max_points=src.config.max_points),
                                 f"Equity (wealth − 1, net of costs) of the agent and the baselines over the "
                                 f"{b.name} period, one panel per cost level."))
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
    mv, cfg = src.multiverse, src.config
    if mv is None:
        return Section("multiverse", title, (absent("multiverse", "chaos multiverse"),))
    mt = mv.metrics
    p = mt.period
    blocks: list[Block] = [facts([
        ("universes", f"M = {integer(mt.universes)} perturbed + 1 unperturbed, N = {integer(mt.futures)} futures each"),
        ("perturbation angle", f"σ = {num(mt.sigma)} rad"),
        ("period", f"{p.name}: {span(p.span)}, {integer(p.bars)} bars"),
        ("contested threshold", f"consensus < {fixed(mt.threshold, 3)}"),
        ("agent crossed", f"{mv.summary.agent} ({mv.summary.planner} planner)"),
        ("Lyapunov proxy (mean)", f"λ = {num(mt.lyapunov_per_bar)} per bar, {num(mt.lyapunov_per_time)} per second "
                                  f"(a bar: {duration(mt.interval_seconds)}); a flow ignoring its state would read "
                                  f"{num(mt.lyapunov_floor)}"),
        ("perturbation sensitivity (mean)", num(mt.sensitivity)),
        ("future modes (mean)", f"{fixed(mt.modes, 2)} over {integer(mt.horizon)} steps"),
    ])]
    blocks.append(multiverse_artifact.distribution_table(mv))
    blocks.append(multiverse_artifact.decisions_table(mv))
    decisions = _period(src.frame("multiverse", "decisions.parquet"), p.name)
    if decisions is not None and decisions.height:
        blocks.append(Figure("multiverse-heatmaps", figures.heatmaps(decisions, bins=cfg.heatmap_times, dpi=cfg.dpi),
                             "Per asset and decision time: consensus, bifurcation index and Lyapunov proxy per bar "
                             "(a column averages consecutive decision times when there are many)."))
        blocks.append(Figure("multiverse-distribution",
                             figures.distributions(decisions, threshold=mt.threshold, dpi=cfg.dpi),
                             "Histograms of the per-decision metrics; dashed: the contested threshold."))
    else:
        blocks.append(Text("Per-decision metrics: not recorded (decisions.parquet missing).", muted=True))
    blocks.append(Heading("filtered vs deterministic"))
    blocks.append(multiverse_artifact.comparison_table(mv))
    blocks.append(multiverse_artifact.verdict_table(mv))
    curve = src.frame("multiverse", "equity.parquet")
    if curve is not None and curve.height:
        blocks.append(Figure("multiverse-equity",
                             figures.equity(curve, strategies=multiverse_artifact.POLICIES, highlight="deterministic",
                                            dpi=cfg.dpi, max_points=cfg.max_points),
                             "Equity (wealth − 1, net of costs) of the deterministic, filtered and "
                             "consensus-sized policies, one panel per cost level."))
    else:
        blocks.append(Text("Equity curves: not recorded (equity.parquet missing).", muted=True))
    blocks.append(Heading("definitions"))
    blocks.append(Facts(DEFINITIONS))
    return Section("multiverse", title, tuple(blocks))


def futures_only(src: Sources) -> Section:
    """Multiverse Crossing of the futures alone (a `multiverse-futures` artifact, no agent):
    λ, sensitivity and modes per asset (or system); there are no decisions to test."""
    title = "Multiverse Crossing: the futures alone"
    fo = src.futures
    if fo is None:
        return Section("multiverse", title, (absent("multiverse-futures", "chaos multiverse --cfm"),))
    mt = fo.metrics
    p = mt.period
    blocks: list[Block] = [
        Text("No agent was crossed (a generic series, or --futures-only): the readings say how the flow's futures "
             "respond to a push of the state, with no decision to test."),
        facts([
            ("universes", f"M = {integer(mt.universes)} perturbed + 1 unperturbed, N = {integer(mt.futures)} futures "
                          "each (common random numbers)"),
            ("perturbation angle", f"σ = {num(mt.sigma)} rad"),
            ("period", f"{p.name}: {span(p.span)}, {integer(p.bars)} bars"),
            ("futures of", f"{fo.summary.cfm} ({fo.summary.method}, {fo.summary.nfe} evaluations)"),
            ("Lyapunov proxy (mean)", f"λ = {num(mt.lyapunov_per_bar)} per bar, {num(mt.lyapunov_per_time)} per "
                                      f"second (a bar: {duration(mt.interval_seconds)}); a flow ignoring its state "
                                      f"would read {num(mt.lyapunov_floor)}"),
            ("perturbation sensitivity (mean)", num(mt.sensitivity)),
            ("future modes (mean)", f"{fixed(mt.modes, 2)} over {integer(mt.horizon)} steps"),
        ]),
        *multiverse_artifact.futures_tables(fo),
        Heading("definitions"),
        Facts(DEFINITIONS),
    ]
    return Section("multiverse", title, tuple(blocks))
