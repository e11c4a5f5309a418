"""`chaos train-jepa` (Strate II): Mamba-2 JEPA with VICReg and macro cross-attention."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_json, print_stage_result

TopologyOpt = Annotated[
    str, typer.Option("--topology", help="cpu, auto, or a TPU slice (v5e-8, v6e-64, ...); without --preset, the "
                                         "preset sized for it is used.", envvar="CHAOS_TOPOLOGY")
]
MeshOpt = Annotated[str | None, typer.Option("--mesh", help="Mesh override, e.g. data=2,fsdp=4.")]


def train_jepa(
    ctx: typer.Context,
    tokens: Annotated[str, typer.Option("--tokens", help="Tokens reference (latest, id or prefix).")] = "latest",
    topology: TopologyOpt = "cpu",
    mesh: MeshOpt = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print parameters, mesh, per-device memory and whether the preset is "
                                             "sized for the topology; train nothing.")
    ] = False,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train the Mamba-2 JEPA on the training period of a tokens artifact."""
    from strates import jepa
    from strates.jepa import artifact
    from strates.jepa.config import choose_presets

    env = env_from(ctx, workspace, json_)
    presets, picked = choose_presets(preset, topology)
    config = stage_config(jepa.STAGE, list(presets), set_, device__topology=topology, device__mesh=mesh)
    if dry_run:
        from strates.jepa.plan import dry_run as plan_run

        with env.reporter().task("planning (abstract model; one per-device step compiled for memory)"):
            planned = plan_run(config, preset=presets, picked=picked)
        if env.json:
            print_json(planned.to_dict())
            return
        for line in planned.lines():
            env.stdout.print(line, highlight=False, markup=False)
        return
    ws = env.workspace_obj()
    result = jepa.run(config, ws, tokens=tokens, force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, artifact.tables(artifact.read(result.manifest)), verb="trained",
                       next_hint=f"chaos train-cfm --jepa {result.manifest.id}")
