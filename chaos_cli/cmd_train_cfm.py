"""`chaos train-cfm` (Strate III): conditional flow matching of N futures per state."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_stage_result


def train_cfm(
    ctx: typer.Context,
    jepa: Annotated[str, typer.Option("--jepa", help="JEPA reference (latest, id or prefix).")] = "latest",
    preset: PresetOpt = None,
    set_: SetOpt = None,
    ensemble: Annotated[int | None, typer.Option("--ensemble", help="Train K members with different seeds.")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train an OT conditional flow matching model of futures (states and returns) given h_t."""
    import dataclasses

    from strates.cfm import PRESETS, Config, run
    from strates.cfm.config import DEFAULT_PRESET
    from strates.core.config import apply_overrides, merge_presets

    env = env_from(ctx, workspace, json_)
    config = apply_overrides(merge_presets(Config(), PRESETS, preset or [DEFAULT_PRESET]), set_ or [])
    if ensemble is not None:
        config = dataclasses.replace(config, ensemble=ensemble)
    ws = env.workspace_obj()
    result = run(config, ws, jepa=jepa, force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, _print)


def _print(env, ws, result) -> None:
    from rich.table import Table

    m = result.manifest
    out = env.stdout
    for period in ("validation", "test"):
        if period not in m.metrics:
            continue
        p = m.metrics[period]
        table = Table(title=f"{period}: {p['states']} states x {p['futures_per_state']} futures (cumulative returns)",
                      title_justify="left")
        table.add_column("forecast")
        horizons = p["cfm"]["horizons"]
        for h in horizons:
            table.add_column(f"CRPS h={h}", justify="right")
            table.add_column(f"cov50/90 h={h}", justify="right")
        table.add_column("energy", justify="right")
        for name in ("cfm", "bootstrap", "gaussian_rw"):
            row = p[name]
            cells = []
            for h in horizons:
                cells += [f"{row[f'crps_h{h}']:.5f}", f"{row[f'cov50_h{h}']:.2f}/{row[f'cov90_h{h}']:.2f}"]
            table.add_row(name, *cells, f"{row['energy_score']:.5f}")
        out.print(table)
    if "coupling_nfe" in m.metrics:
        t = m.metrics["coupling_nfe"]["table"]
        table = Table(title="validation CRPS of the cumulative return at the last horizon, by coupling and NFE (Euler)",
                      title_justify="left")
        table.add_column("coupling")
        nfes = list(next(iter(t.values())))
        for nfe in nfes:
            table.add_column(f"NFE {nfe}", justify="right")
        for kind, row in t.items():
            table.add_row(kind, *[f"{row[n]['crps']:.5f}" for n in nfes])
        out.print(table)
    verb = "reused" if result.reused else "trained"
    out.print(f"{verb} [bold]{m.ref}[/] ({m.metrics.get('seconds', '?')} s) at {ws.uri(m.stage, m.id)}", highlight=False)
    out.print("next: chaos train-agent", highlight=False)
