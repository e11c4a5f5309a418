"""`chaos run`: the whole pipeline, reusing every stage whose inputs and config are unchanged."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json


def run(
    ctx: typer.Context,
    preset: PresetOpt = None,
    universes: Annotated[int | None, typer.Option("--universes", "-m", help="M universes for Multiverse Crossing.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the embedded dataset.")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """ingest → tokenize → train-jepa → train-cfm → train-agent → multiverse → report, on the embedded data."""
    from strates.data.config import Config as IngestConfig
    from strates.data.embedded import EmbeddedSpec
    from strates.pipeline import run as pipeline

    env = env_from(ctx, workspace, json_)
    ws = env.workspace_obj()
    ingest = IngestConfig(embedded=EmbeddedSpec(seed=seed)) if seed is not None else None
    steps = pipeline(ws, presets=preset, force=force, universes=universes, ingest_config=ingest,
                     reporter=env.reporter())
    report = steps[-1]
    stage, aid = report.ref.split("/")
    html = ws.uri(stage, aid, "report.html")
    if env.json:
        print_json({"ok": True, "stages": [s.__dict__ for s in steps], "report": html})
        return
    from rich.table import Table

    table = Table(title="chaos run", title_justify="left")
    for col in ("stage", "artifact", "", "seconds"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for s in steps:
        table.add_row(s.stage, s.ref, "reused" if s.reused else "built", f"{s.seconds:.1f}")
    env.stdout.print(table)
    env.stdout.print(f"report: {html}", highlight=False)
    env.stdout.print(f"next: open {html}", highlight=False)
