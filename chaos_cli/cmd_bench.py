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


@app.command("signal")
def signal(
    ctx: typer.Context,
    kappas: Annotated[str | None, typer.Option(
        "--kappas", help="Comma-separated strengths of the planted edge, ascending (default 0,0.05,0.1,0.2,0.4: an "
                         "oracle test Sharpe after 5 bps of about 0, 0.5, 1, 2, 4).")] = None,
    preset: Annotated[list[str] | None, typer.Option(
        "--preset", "-p", help="default (the small chain with fewer steps: <= 30 min for the grid on 2 cores) or "
                               "debug (kappa 0 and 0.4 through the debug chain: seconds, figures meaningless).")
    ] = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Plant an edge of known strength kappa in the embedded market (chaos ingest --signal),
    run the whole pipeline on each market, and measure what each stage recovers: the JEPA's
    probes of the planted drift, the CFM's CRPS skill, the agent's Sharpe, DSR and capture of
    the oracle's Sharpe, the multiverse's contested share and filter verdict.

    With --json: `kappas`, one object per kappa (kappa, oracle_sharpe, agent_sharpe, capture,
    dsr, contested_share, filter_delta_sharpe and filter_delta_sharpe_interval, and the rest
    of the row), and `summary`."""
    import math

    from strates.bench import signal as bench
    from strates.bench.signal_artifact import tables
    from strates.core.errors import ConfigError

    env = env_from(ctx, workspace, json_)
    picked = None
    if kappas is not None:
        try:
            values = [float(k) for k in kappas.split(",") if k.strip()]
        except ValueError:
            raise ConfigError(f"--kappas {kappas!r} is not a comma-separated list of numbers", field="kappas",
                              fix="e.g. --kappas 0,0.1,0.4") from None
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"--kappas {kappas!r} holds a number that is not finite", field="kappas",
                              fix="e.g. --kappas 0,0.1,0.4")
        picked = "[" + ",".join(repr(v) for v in values) + "]"
    config = stage_config(bench.STAGE, preset, set_, kappas=picked)
    ws = env.workspace_obj()
    result = bench.run(config, ws, force=force, reporter=env.reporter())
    b = bench.read(result.manifest)
    print_stage_result(env, ws, result, tables(b), verb="benchmarked", next_hint=f"chaos report --bench {b.id}",
                       **b.metrics.to_json())
