"""`chaos train-cfm` (Strate III): conditional flow matching of N futures per state."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_stage_result


def train_cfm(
    ctx: typer.Context,
    jepa: Annotated[str, typer.Option("--jepa", help="JEPA reference (latest, id or prefix).")] = "latest",
    preset: PresetOpt = None,
    set_: SetOpt = None,
    ensemble: Annotated[int | None, typer.Option("--ensemble", help="Train K members with different seeds.")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train an OT conditional flow matching model of futures (states and scale-free returns) given h_t and the
    scale, and score it against the random walk, the bootstrap and GARCH-t.

    With --json: `skill` is the CRPS skill 1 - CRPS_cfm / CRPS_baseline per period (validation, test), horizon
    (h1, h4, h8 by default) and baseline (random_walk, bootstrap, garch_t); above 0 the flow is better."""
    from strates import cfm
    from strates.cfm import artifact

    env = env_from(ctx, workspace, json_)
    config = stage_config(cfm.STAGE, preset, set_, ensemble=ensemble)
    ws = env.workspace_obj()
    result = cfm.run(config, ws, jepa=jepa, force=force, reporter=env.reporter())
    c = artifact.read(result.manifest)
    print_stage_result(env, ws, result, artifact.tables(c), verb="trained",
                       next_hint=f"chaos train-agent --cfm {result.manifest.id}", skill=c.metrics.skill())
