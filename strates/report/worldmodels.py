"""The report's World Models section: the league table of every world-model family on the
same dataset, period and costs (the TD-MPC2 agent of this report, the World Models
controller), the World Models' own tables, its regimes drawn over prices, and the
hallucination's stylised facts against the real data.

Which World Models artifact: the one the report's config names (`worldmodels`, filled by
`chaos report` with the most recent one built on the report's dataset, so that the report's
id changes when it does), and its most recent dream (`dream`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from strates.core.table import Table, table
from strates.report.document import Block, Figure, Heading, Section, Text, facts, integer, num
from strates.report.sources import Sources

TITLE = "World Models (Ha & Schmidhuber): V + M + a controller searched in dreams"
LEAGUE_NOTE = ("Every family on the same dataset, the same evaluation period and the same costs (the project's one "
               "accounting: equal-weight portfolio of simple returns after costs per side on |Δposition|). Sharpe: "
               "annualised with the measured periods per year, with a 95% stationary block-bootstrap interval; "
               "DSR: deflated Sharpe ratio over every configuration tried on the dataset; Δ vs TD-MPC2: the paired "
               "block-bootstrap 95% interval of the Sharpe difference on the same bars (shown to differ only when "
               "it excludes 0).")


def _returns(src: Sources, kind: str, strategy: str, period: str) -> dict[float, Any]:
    """{cost_bps: (ts [T], simple returns [T])} of `strategy` in `kind`'s equity file."""
    import polars as pl

    frame = src.frame(kind, "equity.parquet")
    if frame is None:
        return {}
    part = frame.filter((pl.col("strategy") == strategy) & (pl.col("period") == period)).sort("ts")
    return {float(c): (g["ts"].to_numpy(), g["pnl"].to_numpy())
            for (c,), g in part.group_by("cost_bps", maintain_order=True)}


def league(src: Sources, *, period: str = "test") -> Table | None:
    """One row per family and cost level on `period`."""
    from strates.agent.bootstrap import paired_difference, sharpe_interval

    wm = src.worldmodels
    if wm is None:
        return None
    entries = []
    if src.agent is not None and any(b.name == period for b in src.agent.periods):
        entries.append(("TD-MPC2 agent", "agent", "agent", src.agent, src.agent.summary.periods_per_year))
    if any(b.name == period for b in wm.metrics.backtest):
        entries.append(("World Models", "worldmodels", "worldmodels", wm, wm.summary.periods_per_year))
    if not entries:
        return None
    agent_pnl = _returns(src, "agent", "agent", period) if src.agent is not None else {}
    rows = []
    for family, kind, strategy, art, ppy in entries:
        pnl = _returns(src, kind, strategy, period)
        for r in art.backtest(period).strategy(strategy):
            ts, x = pnl.get(r.cost_bps, (None, None))
            interval = vs = "–"
            if x is not None and len(x) > 2:
                iv = sharpe_interval(x, periods_per_year=ppy, seed=0)
                interval = f"[{iv.lo:+.2f}, {iv.hi:+.2f}]"
                other = agent_pnl.get(r.cost_bps)
                if kind != "agent" and other is not None:
                    common, ia, ib = np.intersect1d(ts, other[0], return_indices=True)
                    if len(common) > 2:
                        dd = paired_difference(x[ia], other[1][ib], periods_per_year=ppy, seed=0)
                        vs = f"{dd.sharpe_diff:+.2f} [{dd.sharpe_lo:+.2f}, {dd.sharpe_hi:+.2f}]"
            rows.append((family, art.ref, f"{r.cost_bps:g}", f"{r.sharpe:+.2f}", interval, f"{r.dsr:.2f}",
                         f"{r.max_drawdown:.1%}", f"{r.turnover:.3f}", vs))
    return table(("family", "artifact", "cost (bps)", "Sharpe", "95% interval", "DSR", "max drawdown", "turnover",
                  "Δ Sharpe vs TD-MPC2 [95%]"), rows, LEAGUE_NOTE, title=f"league table, {period} period", left=2)


def regimes_figure(frame: Any, k: int, *, dpi: int, max_points: int, assets: int = 3) -> bytes:
    """Close prices of the first `assets` assets, each bar's point coloured by its regime."""
    import polars as pl
    from matplotlib import colormaps

    from strates.report.figures import _date_axis, _figure, _png, naive_utc, thin

    names = frame["asset"].unique(maintain_order=True).to_list()[:assets]
    cmap = colormaps["tab10"]
    with _figure(2.2 * len(names) + 0.4, dpi=dpi) as fig:
        axes = np.atleast_1d(fig.subplots(len(names), 1, sharex=True, squeeze=False)).ravel()
        for ax, name in zip(axes, names, strict=True):
            part = frame.filter(pl.col("asset") == name).sort("ts")
            idx = thin(part.height, max_points)
            ts, close, reg = naive_utc(part["ts"])[idx], part["close"].to_numpy()[idx], part["regime"].to_numpy()[idx]
            ax.plot(ts, close, color="#999999", lw=0.6, zorder=1)
            for j in range(k):
                on = reg == j
                ax.scatter(ts[on], close[on], s=3, color=cmap(j % 10), label=f"regime {j}", zorder=2)
            ax.set_ylabel(str(name))
            ax.set_yscale("log")
            _date_axis(ax)
        axes[0].legend(loc="upper left", fontsize=7, ncol=min(k, 6), markerscale=3)
        return _png(fig, dpi)


def section(src: Sources) -> Section:
    from strates.worldmodels import artifact
    from strates.worldmodels.dream import tables as dream_tables

    wm = src.worldmodels
    assert wm is not None, "the section is composed only for a report with a World Models artifact"
    s = wm.summary
    blocks: list[Block] = [facts([
        ("artifact", wm.ref),
        ("controller", f"a = tanh(W [z, h] + b), {integer(s.parameters)} parameters, CMA-ES (evosax) "
                       f"{s.population} x {s.generations} generations"),
        ("fitness", f"{s.fitness.value} of the PnL of {integer(s.dreams)} dreams x {s.horizon} bars at τ = "
                    f"{num(s.temperature)}, after {num(s.cost_bps)} bps per side"),
        ("fitted on", "the training period; controller selected on the validation period"),
        ("trials for the DSR", integer(s.n_trials)),
    ])]
    lt = league(src)
    if lt is not None:
        blocks += [Heading("league table"), lt]
    blocks += [Heading("the World Models"), *artifact.tables(wm)]
    frame = src.frame("worldmodels", "regimes.parquet")
    if frame is not None:
        blocks.append(Figure("worldmodels-regimes", regimes_figure(frame, s.regimes.k, dpi=src.config.dpi,
                                                                   max_points=src.config.max_points),
                             f"Close prices (log scale) coloured by the regime of each bar: a {s.regimes.k}-component "
                             "Gaussian mixture over V's latents fitted on the training period (k by BIC)."))
    blocks.append(Heading("market hallucination"))
    if src.dream is None:
        blocks.append(Text("No dream of this world model yet: `chaos dream` makes one, and the next `chaos report` "
                           "shows its stylised facts here.", muted=True))
    else:
        blocks += dream_tables(src.dream)
    return Section("worldmodels", TITLE, tuple(blocks))
