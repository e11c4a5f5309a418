"""Options shared by several subcommands (typer `Annotated` aliases)."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.output import Env

WorkspaceOpt = Annotated[
    str | None,
    typer.Option("--workspace", "-w", help="Workspace (overrides the global option and CHAOS_WORKSPACE)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Recompute even if an identical artifact exists.")]


def env_from(ctx: typer.Context, workspace: str | None = None, json_: bool = False) -> Env:
    """The global Env with this command's own --workspace/--json folded in."""
    env = ctx.obj if isinstance(ctx.obj, Env) else Env()
    if workspace:
        env.workspace = workspace
    env.json = env.json or json_
    ctx.obj = env
    return env
PresetOpt = Annotated[
    list[str] | None,
    typer.Option("--preset", "-p", help="Named preset(s): debug, small (default), base, bench (the small models of "
                                        "chaos bench); repeat to compose."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config field: section.field=value (repeatable)."),
]


def overrides(**values) -> list[str]:
    """`--set`-style overrides from dedicated options: `field=value` for each value given
    (keyword names use `__` for the dot: `planner__kind="mppi"` -> `planner.kind=mppi`)."""
    return [f"{name.replace('__', '.')}={value}" for name, value in values.items() if value is not None]


def stage_config(stage, preset: list[str] | None, set_: list[str] | None, **fields):
    """A stage's config from `--preset` (its default preset when none is given), the
    dedicated options in `fields` (see `overrides`) and then `--set` (which wins)."""
    return stage.configure(preset, [*overrides(**fields), *(set_ or [])])
