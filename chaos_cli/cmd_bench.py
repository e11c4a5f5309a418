"""`chaos bench`: benchmarks of known truth (DESIGN.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_json, print_stage_result

app = typer.Typer(help="Benchmarks of known truth: does a metric measure what it claims where the answer is known?",
                  no_args_is_help=True)


@app.command("lyapunov")
def lyapunov(
    ctx: typer.Context,
    systems: Annotated[str | None, typer.Option(
        "--systems", help="Comma-separated systems (dysts flows and the controls DampedOscillator, VanDerPol, "
                          "OrnsteinUhlenbeck, RandomWalk); default: the 34 flows of the full run and the 4 controls.")
    ] = None,
    preset: Annotated[list[str] | None, typer.Option(
        "--preset", "-p", help="bench (default: the small chain, <= 60 s per system on 2 cores) or debug "
                               "(3 systems through the debug chain: seconds, meaningless estimates).")] = None,
    noise: Annotated[float | None, typer.Option(
        "--noise", help="Observation noise, a share of each channel's std (e.g. 0.05).")] = None,
    length: Annotated[int | None, typer.Option("--length", help="Bars per system.")] = None,
    set_: SetOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the systems that can be run and exit.")] = False,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Rank the multiverse Lyapunov proxy against published maximal exponents (dysts) and
    four controls, beside Rosenstein's estimator on the same series; exponents per period.

    With --json: `systems` (per system: name, kind, lambda_true, lambda_multiverse,
    lambda_rosenstein, seconds) and `summary` (per estimator: Spearman rho over the chaotic
    systems, sign accuracy over all, median |log ratio|)."""
    from strates.bench import lyapunov as bench
    from strates.bench import systems as catalogue
    from strates.bench.artifact import tables

    env = env_from(ctx, workspace, json_)
    if list_:
        names = [*catalogue.catalogue(), *catalogue.CONTROLS]
        if env.json:
            print_json({"systems": names})
        else:
            env.stdout.print("\n".join(names), highlight=False)
        return
    names = [s.strip() for s in (systems or "").split(",") if s.strip()]
    picked = "[" + ",".join(f'"{s}"' for s in names) + "]" if systems is not None else None
    config = stage_config(bench.STAGE, preset, set_, systems=picked, noise=noise, length=length)
    ws = env.workspace_obj()
    result = bench.run(config, ws, force=force, reporter=env.reporter())
    b = bench.read(result.manifest)
    print_stage_result(env, ws, result, tables(b), verb="benchmarked", next_hint=f"chaos report --bench {b.id}",
                       **b.metrics.to_json())
