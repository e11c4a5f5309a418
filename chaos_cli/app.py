"""`chaos`: the command-line entry point.

Global options come before the subcommand (`chaos --json ls`); `--workspace` and `--json`
are also accepted after it (`chaos ls --json`). Failures the user can act on exit with the
codes documented in `strates.core.errors` and README.md.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.core import TyperGroup

from chaos_cli import (
    cmd_artifacts,
    cmd_bench,
    cmd_completion,
    cmd_dream,
    cmd_fetch,
    cmd_ingest,
    cmd_multiverse,
    cmd_report,
    cmd_run,
    cmd_tokenize,
    cmd_topology,
    cmd_train_agent,
    cmd_train_cfm,
    cmd_train_jepa,
    cmd_train_worldmodels,
)
from chaos_cli.output import Env, print_error
from strates.core.errors import INTERRUPTED, ChaosError


class ChaosGroup(TyperGroup):
    """Turns `ChaosError` into its message and exit code, and Ctrl-C into exit 130."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ChaosError as err:
            env = ctx.obj if isinstance(ctx.obj, Env) else Env()
            print_error(env, err)
            if env.verbosity > 0:
                import traceback

                traceback.print_exc(file=sys.stderr)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            ctx.exit(INTERRUPTED)

    def list_commands(self, ctx):  # keep the order in which commands are registered
        return list(self.commands)


app = typer.Typer(
    name="chaos",
    cls=ChaosGroup,
    help="Learn world models of chaotic time series; test whether each decision comes from signal or noise.",
    add_completion=False,  # `chaos completion SHELL` instead: typer's detection fails in scripts
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        import strates

        print(f"chaos {strates.__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option(
            "--workspace", "-w", envvar="CHAOS_WORKSPACE", show_default="./chaos-workspace",
            help="Workspace: a local folder or gs://bucket/prefix.",
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")] = False,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More detail (tracebacks on errors).")
    ] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and results.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    ctx.obj = Env(workspace=workspace, json=json_, verbosity=-1 if quiet else verbose)


app.command("run")(cmd_run.run)
app.command("ingest")(cmd_ingest.ingest)
app.add_typer(cmd_fetch.app, name="fetch")
app.command("tokenize")(cmd_tokenize.tokenize)
app.command("train-jepa")(cmd_train_jepa.train_jepa)
app.command("train-cfm")(cmd_train_cfm.train_cfm)
app.command("train-agent")(cmd_train_agent.train_agent)
app.command("multiverse")(cmd_multiverse.multiverse)
app.command("train-worldmodels")(cmd_train_worldmodels.train_worldmodels)
app.command("dream")(cmd_dream.dream)
app.command("report")(cmd_report.report)
app.add_typer(cmd_bench.app, name="bench")
app.command("ls")(cmd_artifacts.ls)
app.command("show")(cmd_artifacts.show)
app.command("gc")(cmd_artifacts.gc)
app.command("topology")(cmd_topology.topology)
app.command("completion")(cmd_completion.completion)


def main() -> None:
    import os

    if "_CHAOS_COMPLETE" in os.environ:  # a shell asks for completions (see `chaos completion`)
        from typer._completion_classes import completion_init

        completion_init()
    app(prog_name="chaos")
