"""`chaos multiverse`: Multiverse Crossing of the agent's decisions."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_stage_result


def multiverse(
    ctx: typer.Context,
    agent: Annotated[str, typer.Option("--agent", help="agent reference (latest, id or prefix).")] = "latest",
    universes: Annotated[int | None, typer.Option(
        "--universes", "-m", help="M perturbed universes per decision.")] = None,
    sigma: Annotated[float | None, typer.Option("--sigma", help="Geodesic perturbation angle (radians).")] = None,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="Consensus below it marks a decision contested.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    decision_times: Annotated[int | None, typer.Option(
        "--decision-times", help="Decision times, evenly spaced over the test period (0 = every bar).")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Perturb each state M times on the sphere; measure whether the agent's decisions survive."""
    from strates.multiverse import STAGE, run
    from strates.multiverse.artifact import tables

    env = env_from(ctx, workspace, json_)
    config = stage_config(STAGE, preset, set_, universes=universes, sigma=sigma, max_bars=decision_times,
                          threshold=threshold)
    ws = env.workspace_obj()
    result = run(config, ws, agent=agent, force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, tables(result.manifest), verb="crossed", next_hint="chaos report")
