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
    """Train an OT conditional flow matching model of futures (states and returns) given h_t."""
    from strates import cfm
    from strates.cfm import artifact

    env = env_from(ctx, workspace, json_)
    config = stage_config(cfm.STAGE, preset, set_, ensemble=ensemble)
    ws = env.workspace_obj()
    result = cfm.run(config, ws, jepa=jepa, force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, artifact.tables(artifact.read(result.manifest)), verb="trained",
                       next_hint=f"chaos train-agent --cfm {result.manifest.id}")
