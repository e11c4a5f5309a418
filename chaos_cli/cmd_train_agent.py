"""`chaos train-agent` (Strate IV): a TD-MPC2-style agent planning on the CVaR of futures,
backtested walking forward against baselines at several costs."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, overrides
from chaos_cli.output import print_stage_result


def train_agent(
    ctx: typer.Context,
    cfm: Annotated[str, typer.Option("--cfm", help="cfm reference (latest, id or prefix).")] = "latest",
    planner: Annotated[str | None, typer.Option("--planner", help="mppi (plan on the CVaR of futures) or policy (the policy prior alone).")] = None,
    cvar_alpha: Annotated[float | None, typer.Option("--cvar-alpha", help="CVaR level in (0, 1]; 1 = risk-neutral mean.")] = None,
    cost_bps: Annotated[float | None, typer.Option("--cost-bps", help="Cost per side in basis points, charged on |Δposition|.")] = None,
    period: Annotated[str | None, typer.Option("--period", help="Backtest START,END (UTC) instead of the test period(s).")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train the agent offline on the training period, then backtest it on the test period(s)."""
    from strates.agent import PRESETS, Config, run
    from strates.agent.config import DEFAULT_PRESET
    from strates.core.config import apply_overrides, merge_presets

    env = env_from(ctx, workspace, json_)
    flags = overrides(planner__kind=planner, planner__cvar_alpha=cvar_alpha, env__cost_bps=cost_bps,
                      backtest__period=period)
    config = apply_overrides(merge_presets(Config(), PRESETS, preset or [DEFAULT_PRESET]),
                             [*(set_ or []), *flags])
    ws = env.workspace_obj()
    result = run(config, ws, cfm=cfm, force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, _print, skipped=result.manifest.summary.get("skipped", []))


def _print(env, ws, result) -> None:
    from rich.table import Table

    m = result.manifest
    out = env.stdout
    for name, p in m.metrics["backtest"].items():
        table = Table(title=f"{name} {p['start']:%Y-%m-%d} .. {p['end']:%Y-%m-%d}: {p['bars']} bars x {p['assets']} assets "
                            f"(planned at {m.summary['cost_bps']:g} bps, CVaR α={m.summary['cvar_alpha']:g}, "
                            f"{m.summary['n_trials']} trial(s) for the DSR, "
                            f"{m.summary.get('periods_per_year', 0):,.0f} periods/year measured)", title_justify="left")
        table.add_column("strategy")
        for col in ("bps", "Sharpe", "Sortino", "maxDD", "ann.ret", "turn", "hit", "DSR"):
            table.add_column(col, justify="right")
        for strategy, rows in p["table"].items():
            for cost, r in sorted(rows.items(), key=lambda kv: float(kv[0].removesuffix("bps"))):
                table.add_row(strategy.replace("buy_and_hold", "buy&hold"), cost.removesuffix("bps"),
                              f"{r['sharpe']:.2f}", f"{r['sortino']:.2f}", f"{r['max_drawdown']:.1%}",
                              f"{r['annual_return']:.1%}", f"{r['turnover']:.3f}", f"{r['hit_rate']:.0%}",
                              f"{r['dsr']:.2f}")
            table.add_section()
        out.print(table)
    for name, p in m.metrics["backtest"].items():
        if p.get("absent"):
            out.print(f"{name}: left out of the portfolio (no bars in the period): {', '.join(p['absent'])}",
                      highlight=False)
    for s in m.summary.get("skipped", []):
        out.print(f"skipped {s['fold']}: {s['reason']}", highlight=False)
    verb = "reused" if result.reused else "trained"
    out.print(f"{verb} [bold]{m.ref}[/] ({m.metrics.get('seconds', '?')} s) at {ws.uri(m.stage, m.id)}", highlight=False)
    out.print("next: chaos multiverse", highlight=False)
