"""`chaos multiverse`: Multiverse Crossing of the agent's decisions."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, overrides
from chaos_cli.output import print_stage_result


def multiverse(
    ctx: typer.Context,
    agent: Annotated[str, typer.Option("--agent", help="agent reference (latest, id or prefix).")] = "latest",
    universes: Annotated[int | None, typer.Option("--universes", "-m", help="M perturbed universes per decision.")] = None,
    sigma: Annotated[float | None, typer.Option("--sigma", help="Geodesic perturbation angle (radians).")] = None,
    decision_times: Annotated[int | None, typer.Option("--decision-times", help="Decision times, evenly spaced over the test period (0 = every bar).")] = None,
    threshold: Annotated[float | None, typer.Option("--threshold", help="Consensus below it marks a decision contested.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Perturb each state M times on the sphere; measure whether the agent's decisions survive."""
    from strates.core.config import apply_overrides, merge_presets
    from strates.multiverse import PRESETS, Config, run
    from strates.multiverse.config import DEFAULT_PRESET

    env = env_from(ctx, workspace, json_)
    flags = overrides(universes=universes, sigma=sigma, max_bars=decision_times, threshold=threshold)
    config = apply_overrides(merge_presets(Config(), PRESETS, preset or [DEFAULT_PRESET]), [*(set_ or []), *flags])
    ws = env.workspace_obj()
    result = run(config, ws, agent=agent, force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, _print)


def _print(env, ws, result) -> None:
    from rich.table import Table

    m = result.manifest
    mt = m.metrics
    out = env.stdout
    p = mt["period"]
    dt_ = mt["decision_times"]
    table = Table(title=f"{p['name']} from {p['start']:%Y-%m-%d %H:%M}: {dt_['count']} decision times of {p['bars']} bars"
                        f"{' (every bar)' if dt_['every'] else ', evenly spaced'}, {mt['decisions']} decisions, "
                        f"{mt['universes']} universes + 1 at σ={mt['sigma']:g} rad, {mt['futures']} futures each",
                  title_justify="left")
    table.add_column("metric")
    for col in ("mean", "p05", "p50", "p95", "min", "max"):
        table.add_column(col, justify="right")
    for name, d in mt["distribution"].items():
        table.add_row(name, *[f"{d[c]:.3f}" for c in ("mean", "p05", "p50", "p95", "min", "max")])
    out.print(table)
    last = ", ".join(mt["contested_assets_last"]) or "none"
    out.print(f"contested (consensus < {mt['threshold']:.3g}): {mt['contested']} of {mt['decisions']} decisions "
              f"({mt['contested_share']:.1%}); at the last bar: {last}", highlight=False)
    nf = mt["noise_floor"]
    out.print(f"bifurcation {nf['bifurcation']:.3f} vs the decision noise floor {nf['flip_rate']:.3f} "
              f"({nf['copies']} re-seeded copies at σ=0): {nf['above_floor']:+.3f} above it", highlight=False)
    comp = Table(title="the seeds' claim: deterministic vs multiverse-filtered vs consensus-sized, same bars and costs",
                 title_justify="left")
    comp.add_column("policy")
    for col in ("bps", "Sharpe", "maxDD", "ann.ret", "turn", "DSR", "ΔSharpe [95% CI]", "verdict"):
        comp.add_column(col, justify="right")
    for strategy, rows in mt["comparison"].items():
        for cost, r in sorted(rows.items(), key=lambda kv: float(kv[0].removesuffix("bps"))):
            v = mt["verdict"].get(cost, {}).get(strategy)
            ci = f"{v['sharpe_diff']:+.2f} [{v['sharpe_lo']:+.2f}, {v['sharpe_hi']:+.2f}]" if v else ""
            comp.add_row(strategy, cost.removesuffix("bps"), f"{r['sharpe']:.2f}", f"{r['max_drawdown']:.1%}",
                         f"{r['annual_return']:.1%}", f"{r['turnover']:.3f}", f"{r['dsr']:.2f}", ci,
                         ("shown" if v["shown"] else "not shown") if v else "")
        comp.add_section()
    out.print(comp)
    verb = "reused" if result.reused else "crossed"
    out.print(f"{verb} [bold]{m.ref}[/] ({mt.get('seconds', '?')} s) at {ws.uri(m.stage, m.id)}", highlight=False)
    out.print("next: chaos report", highlight=False)
