"""`chaos topology NAME`: print the device mesh plan for a topology (no devices needed), the
JEPA preset sized for it and whether that (or the `--preset` given) fits it."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import JsonOpt, PresetOpt, env_from
from chaos_cli.output import print_json


def topology(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="cpu, auto, or a TPU slice such as v5e-8, v5p-128, v6e-64.")] = "auto",
    mesh: Annotated[
        str | None, typer.Option("--mesh", help="Override the mesh shape, e.g. data=2,fsdp=4 (product = devices).")
    ] = None,
    preset: PresetOpt = None,
    check: Annotated[
        bool, typer.Option("--check", help="Also build the mesh on the devices present (fails on a mismatch).")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Show how a topology maps onto mesh axes (data, fsdp, model) and logical axes, and how
    the JEPA preset (the one sized for it, or --preset) fits it: batch per device, memory
    per chip, alignment of the head dims."""
    from strates import jepa
    from strates.core import topology as topo
    from strates.jepa.config import choose_presets
    from strates.jepa.plan import dry_run

    env = env_from(ctx, None, json_)
    presets, picked = choose_presets(preset, name)
    config = jepa.STAGE.configure(list(presets))
    planned = dry_run(config, preset=presets, picked=picked, topology=name, mesh=mesh, measure_activations=False)
    built = topo.build_mesh(planned.mesh) if check else None
    if env.json:
        data = {**planned.mesh.to_dict(), "jepa": planned.sizing()}
        if built is not None:
            data["checked"] = {"devices": [str(d) for d in built.devices.flat]}
        print_json(data)
        return
    for line in planned.lines():
        env.stdout.print(line, highlight=False, markup=False)
    if built is not None:
        env.stdout.print(f"checked: built a {dict(built.shape)} mesh on the devices present", highlight=False)
