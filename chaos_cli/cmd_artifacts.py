"""`chaos ls`, `chaos show`, `chaos gc`: list, inspect and clean the workspace."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import JsonOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json


def ls(
    ctx: typer.Context,
    stage: Annotated[str | None, typer.Argument(help="Only this stage (e.g. dataset).")] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """List published artifacts, oldest first."""
    from strates.core import artifacts

    env = env_from(ctx, workspace, json_)
    ws = env.workspace_obj()
    found = artifacts.list_artifacts(ws, stage)
    if env.json:
        print_json(
            [
                {"stage": m.stage, "id": m.id, "created": m.created, "parents": m.parents,
                 "uri": ws.uri(m.stage, m.id), "size": sum(f.size for f in m.files.values())}
                for m in found
            ]
        )
        return
    if not found:
        env.log(f"no artifacts{' of stage ' + stage if stage else ''} in {ws.url}")
        return
    from rich.table import Table

    table = Table(title=f"artifacts in {ws.url}", title_justify="left")
    for col in ("stage", "id", "created (UTC)", "parents", "files", "size"):
        table.add_column(col, justify="right" if col in ("files", "size") else "left")
    for m in found:
        size = sum(f.size for f in m.files.values())
        table.add_row(
            m.stage, m.id, m.created.strftime("%Y-%m-%d %H:%M:%S"),
            ", ".join(f"{k}/{v}" for k, v in sorted(m.parents.items())) or "-",
            str(len(m.files)), _human_size(size),
        )
    env.stdout.print(table)


def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(help="STAGE/REF, an id or unique prefix, or 'latest'.")],
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Print an artifact's manifest (TOML, or JSON with --json)."""
    from strates.core import artifacts

    env = env_from(ctx, workspace, json_)
    ws = env.workspace_obj()
    m = artifacts.resolve(ws, ref)
    if env.json:
        data = m.to_json()
        data["uri"] = ws.uri(m.stage, m.id)
        print_json(data)
        return
    env.log(f"{m.ref} at {ws.uri(m.stage, m.id)}")
    from rich.syntax import Syntax

    env.stdout.print(Syntax(m.to_toml().decode(), "toml", theme="ansi_dark", background_color="default"))


def gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Remove artifact folders that have no manifest (left by interrupted runs)."""
    from strates.core import artifacts

    env = env_from(ctx, workspace, json_)
    ws = env.workspace_obj()
    removed = artifacts.gc(ws, dry_run=dry_run)
    if env.json:
        print_json({"removed" if not dry_run else "would_remove": removed, "workspace": ws.url})
        return
    verb = "would remove" if dry_run else "removed"
    if not removed:
        env.log(f"nothing to remove in {ws.url}")
    for rel in removed:
        env.stdout.print(f"{verb} {ws.uri(rel)}", highlight=False)


def _human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"
