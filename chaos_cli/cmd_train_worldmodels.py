"""`chaos train-worldmodels`: the World Models family (Ha & Schmidhuber): V, M and a linear
controller searched by CMA-ES in dreams, backtested like the TD-MPC2 agent."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_stage_result


def train_worldmodels(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", help="dataset reference (latest, id or prefix).")] = "latest",
    init_from: Annotated[str | None, typer.Option(
        "--init-from", help="worldmodels reference: start V and M from it and fine-tune (transfer).")] = None,
    fitness: Annotated[str | None, typer.Option(
        "--fitness", help="mean or cvar of the dream PnL after costs.")] = None,
    cost_bps: Annotated[float | None, typer.Option(
        "--cost-bps", help="Cost per side in basis points the controller is searched at.")] = None,
    temperature: Annotated[float | None, typer.Option(
        "--temperature", help="Dream temperature τ during the search (> 1: harder dreams).")] = None,
    generations: Annotated[int | None, typer.Option("--generations", help="CMA-ES generations.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    period: Annotated[str | None, typer.Option(
        "--period", help="Backtest START,END (UTC) instead of the test period(s).")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train V (VAE), M (MDN-RNN) and C (CMA-ES in dreams) on the training period, choose C on
    validation, and backtest it on the test period(s) against the baselines."""
    from strates.core.config import to_dict
    from strates.worldmodels import STAGE, run
    from strates.worldmodels.artifact import read, tables

    env = env_from(ctx, workspace, json_)
    config = stage_config(STAGE, preset, set_, controller__fitness=fitness, controller__cost_bps=cost_bps,
                          controller__temperature=temperature, controller__generations=generations,
                          backtest__period=period)
    ws = env.workspace_obj()
    result = run(config, ws, dataset=dataset, init_from=init_from or "", force=force, reporter=env.reporter())
    wm = read(result.manifest)
    print_stage_result(env, ws, result, tables(wm), verb="trained", next_hint=f"chaos dream --worldmodels {wm.id}",
                       skipped=to_dict(wm.summary.skipped))
