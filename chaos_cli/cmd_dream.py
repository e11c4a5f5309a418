"""`chaos dream`: market hallucination from a World Models artifact: synthetic OHLCV paths
from its MDN-RNN, and their stylised facts against the real training period's."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_stage_result


def dream(
    ctx: typer.Context,
    worldmodels: Annotated[str, typer.Option(
        "--worldmodels", help="worldmodels reference (latest, id or prefix).")] = "latest",
    paths: Annotated[int | None, typer.Option("--paths", help="Paths to dream (default 1000).")] = None,
    length: Annotated[int | None, typer.Option("--length", help="Bars per path (default 500).")] = None,
    temperature: Annotated[float | None, typer.Option(
        "--temperature", help="Temperature τ of the mixture draws (default 1.2; > 1: wilder dreams).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the starts and the dreams.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Dream synthetic price paths with the world model (no trader in them) and compare their
    stylised facts with the real training data. The bars can be ingested like any file."""
    from strates.worldmodels.dream import STAGE, read, run, tables

    env = env_from(ctx, workspace, json_)
    config = stage_config(STAGE, preset, set_, paths=paths, length=length, temperature=temperature, seed=seed)
    ws = env.workspace_obj()
    result = run(config, ws, worldmodels=worldmodels, force=force, reporter=env.reporter())
    d = read(result.manifest)
    print_stage_result(env, ws, result, tables(d), verb="dreamed",
                       next_hint=f"chaos ingest --source {ws.location(f'dream/{d.id}/bars.parquet')}")
