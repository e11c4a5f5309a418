"""`chaos report`: one self-contained HTML page (and a Markdown twin) from the artifacts."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_stage_result


def report(
    ctx: typer.Context,
    multiverse: Annotated[
        str, typer.Option("--multiverse", help="Multiverse reference (latest, id or prefix).")] = "latest",
    futures: Annotated[str | None, typer.Option(
        "--futures", help="Report a futures-only multiverse instead (chaos multiverse --cfm): latest, id or prefix.")
    ] = None,
    bench: Annotated[str | None, typer.Option(
        "--bench", help="Report a benchmark artifact instead (chaos bench lyapunov or chaos bench signal): latest (the "
                    "most recent of either), id, prefix, or KIND/ID.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
    out: Annotated[str | None, typer.Option(
        "--out", help="Also copy report.html to PATH (a .html file or a folder), report.md and figures/ beside it.",
    )] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Build the report: data, Strates I-IV, Multiverse Crossing and provenance, from artifacts alone
    (or, with --bench, the benchmark's figures and tables)."""
    from strates.report import STAGE, run
    from strates.report.artifact import export, read, tables

    env = env_from(ctx, workspace, json_)
    config = stage_config(STAGE, preset, set_)
    ws = env.workspace_obj()
    if futures is not None and bench is not None:
        from strates.core.errors import ConfigError

        raise ConfigError("--futures and --bench name two different reports", fix="give one of them")
    result = run(config, ws, multiverse=multiverse, futures=futures, bench=bench, force=force,
                 reporter=env.reporter())
    built = read(result.manifest)
    copied = export(ws, built, out) if out else None
    html = built.uri(ws, built.summary.html)
    extra = {"html": html, "markdown": built.uri(ws, built.summary.markdown), **({"out": copied} if copied else {})}
    print_stage_result(env, ws, result, tables(ws, built, copied),
                       next_hint=f"open {copied['html'] if copied else html} in a browser (it needs no network)",
                       **extra)
