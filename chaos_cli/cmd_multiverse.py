"""`chaos multiverse`: Multiverse Crossing of the agent's decisions, or of a cfm's futures alone."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_stage_result


def multiverse(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(
        "--agent", help="Agent reference (latest, id or prefix); default: latest. With --futures-only, its cfm's "
                        "futures are crossed.")] = None,
    cfm: Annotated[str | None, typer.Option(
        "--cfm", help="Cross this cfm's futures alone (implies --futures-only; no agent needed): latest, id or "
                      "prefix.")] = None,
    futures_only: Annotated[bool, typer.Option(
        "--futures-only", help="Futures alone: the Lyapunov proxy, sensitivity and modes over the test period; no "
                               "decisions, backtest or verdict. Crosses the cfm of --agent when given, else --cfm "
                               "(default: the latest cfm). Writes a multiverse-futures artifact. --preset bench: "
                               "fast (8 universes x 32 futures at 32 times per asset).")] = False,
    universes: Annotated[int | None, typer.Option(
        "--universes", "-m", help="M perturbed universes per decision.")] = None,
    sigma: Annotated[float | None, typer.Option("--sigma", help="Geodesic perturbation angle (radians).")] = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="Consensus below it marks a decision contested.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    decision_times: Annotated[int | None, typer.Option(
        "--decision-times", help="Decision times, evenly spaced over the test period (0 = every bar); per asset "
                                 "with --futures-only.")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Perturb each state M times on the sphere; measure whether the agent's decisions survive,
    or (--futures-only, --cfm) how the futures alone diverge: λ per bar and per second,
    sensitivity, modes."""
    from strates.core.errors import ConfigError
    from strates.multiverse import STAGE, agent_cfm, run, run_futures
    from strates.multiverse.artifact import futures_tables, tables

    env = env_from(ctx, workspace, json_)
    config = stage_config(STAGE, preset, set_, universes=universes, sigma=sigma, max_bars=decision_times,
                          threshold=threshold)
    if agent is not None and cfm is not None:
        raise ConfigError(f"--agent {agent} and --cfm {cfm} both name what to cross",
                          fix="give --agent (its decisions, or with --futures-only its cfm's futures) or --cfm "
                              "(the futures alone), not both")
    ws = env.workspace_obj()
    if futures_only or cfm is not None:
        source = agent_cfm(ws, agent) if agent is not None else (cfm or "latest")
        result = run_futures(config, ws, cfm=source, force=force, reporter=env.reporter())
        print_stage_result(env, ws, result, futures_tables(result.manifest), verb="crossed",
                           next_hint=f"chaos show {result.manifest.ref}")
        return
    result = run(config, ws, agent=agent or "latest", force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, tables(result.manifest), verb="crossed", next_hint="chaos report")
