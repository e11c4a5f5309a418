"""`chaos train-agent` (Strate IV): a TD-MPC2-style agent planning on the CVaR of futures,
backtested walking forward against baselines at several costs."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_stage_result


def train_agent(
    ctx: typer.Context,
    cfm: Annotated[str, typer.Option("--cfm", help="cfm reference (latest, id or prefix).")] = "latest",
    planner: Annotated[str | None, typer.Option(
        "--planner", help="mppi (plan on the CVaR of futures) or policy (the policy prior alone).")] = None,
    cvar_alpha: Annotated[float | None, typer.Option(
        "--cvar-alpha", help="CVaR level in (0, 1]; 1 = risk-neutral mean.")] = None,
    cost_bps: Annotated[float | None, typer.Option(
        "--cost-bps", help="Cost per side in basis points, charged on |Δposition|.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    period: Annotated[str | None, typer.Option(
        "--period", help="Backtest START,END (UTC) instead of the test period(s).")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train the agent offline on the training period, then backtest it on the test period(s)."""
    from strates.agent import STAGE, run
    from strates.agent.artifact import read, tables
    from strates.core.config import to_dict

    env = env_from(ctx, workspace, json_)
    config = stage_config(STAGE, preset, set_, planner__kind=planner, planner__cvar_alpha=cvar_alpha,
                          env__cost_bps=cost_bps, backtest__period=period)
    ws = env.workspace_obj()
    result = run(config, ws, cfm=cfm, force=force, reporter=env.reporter())
    agent = read(result.manifest)
    print_stage_result(env, ws, result, tables(agent), verb="trained", next_hint="chaos multiverse",
                       skipped=to_dict(agent.summary.skipped))
