"""`chaos topology NAME`: print the device mesh plan for a topology (no devices needed)."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import JsonOpt, env_from
from chaos_cli.output import print_json


def topology(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="cpu, auto, or a TPU slice such as v5e-8, v5p-128, v6e-64.")] = "auto",
    mesh: Annotated[
        str | None, typer.Option("--mesh", help="Override the mesh shape, e.g. data=2,fsdp=4 (product = devices).")
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Also build the mesh on the devices present (fails on a mismatch).")
    ] = False,
    json_: JsonOpt = False,
) -> None:
    """Show how a topology maps onto mesh axes (data, fsdp, model) and logical axes."""
    from strates.core import topology as topo

    env = env_from(ctx, None, json_)
    plan = topo.plan(name, mesh=mesh)
    built = None
    if check:
        built = topo.build_mesh(plan)
    if env.json:
        data = plan.to_dict()
        if built is not None:
            data["checked"] = {"devices": [str(d) for d in built.devices.flat]}
        print_json(data)
        return
    for line in plan.describe():
        env.stdout.print(line, highlight=False)
    if built is not None:
        env.stdout.print(f"checked: built a {dict(built.shape)} mesh on the devices present", highlight=False)
