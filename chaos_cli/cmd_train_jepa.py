"""`chaos train-jepa` (Strate II): Mamba-2 JEPA with VICReg and macro cross-attention."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json, print_stage_result


def train_jepa(
    ctx: typer.Context,
    tokens: Annotated[str, typer.Option("--tokens", help="Tokens reference (latest, id or prefix).")] = "latest",
    topology: Annotated[
        str, typer.Option("--topology", help="cpu, auto, or a TPU slice (v5e-8, v6e-64, ...).", envvar="CHAOS_TOPOLOGY")
    ] = "cpu",
    mesh: Annotated[str | None, typer.Option("--mesh", help="Mesh override, e.g. data=2,fsdp=4.")] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print parameters, mesh and per-device memory; train nothing.")
    ] = False,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Train the Mamba-2 JEPA on the training period of a tokens artifact."""
    from strates.core.config import apply_overrides, merge_presets
    from strates.jepa import PRESETS, Config
    from strates.jepa.config import DEFAULT_PRESET

    env = env_from(ctx, workspace, json_)
    config = apply_overrides(merge_presets(Config(), PRESETS, preset or [DEFAULT_PRESET]), set_ or [])
    if dry_run:
        from strates.jepa.plan import dry_run as plan_run

        with env.reporter().task("planning (abstract model; one per-device step compiled for memory)"):
            report = plan_run(config, topology=topology, mesh=mesh)
        if env.json:
            print_json(report)
        else:
            _print_plan(env, report)
        return
    from strates.jepa import run

    ws = env.workspace_obj()
    result = run(config, ws, tokens=tokens, topology=topology, mesh=mesh, force=force, reporter=env.reporter())
    print_stage_result(env, ws, result, _print_result)


def _print_plan(env, r) -> None:
    out = env.stdout
    p = r["plan"]
    out.print(f"topology  {p['name']}: {p['devices']} device(s) on {p['hosts']} host(s)", highlight=False)
    out.print(f"mesh      {' '.join(f'{a}={n}' for a, n in zip(p['axes'], p['shape']))}", highlight=False)
    out.print(f"params    {r['params']['total']:,} in all ({r['params']['trainable']:,} trained, "
              f"{r['params']['context_encoder']:,} in the context encoder; the rest: predictor and EMA target)",
              highlight=False)
    b = r["batch"]
    out.print(f"batch     {b['global']} global, {b['per_device']} per device, {b['window']} bars", highlight=False)
    g = r["per_device_gib"]
    parts = [f"{k} {v:.3f}" for k, v in g.items() if k not in ("total", "hbm")]
    where = f" (activations measured on {r['activations_measured_on']})" if "activations_measured_on" in r else ""
    out.print(f"memory    per device GiB: {', '.join(parts)}; total {g['total']:.3f}{where}", highlight=False)
    if "hbm" in g:
        out.print(f"fits      {'yes' if r['fits'] else 'NO'} in {g['hbm']} GiB HBM per device", highlight=False)


def _print_result(env, ws, result) -> None:
    from rich.table import Table

    m = result.manifest
    metrics = m.metrics
    out = env.stdout
    probe = metrics["probe"]
    diag = m.summary.get("diagnostic") or {}
    where = f" {diag['start']:%Y-%m-%d} .. {diag['end']:%Y-%m-%d}" if diag.get("start") and diag.get("end") else ""
    table = Table(title=f"linear probes on the diagnostic part of validation{where} (not used for selection)",
                  title_justify="left")
    for col in ("input", "dims", "realised vol R²", "return sign accuracy"):
        table.add_column(col, justify="left" if col == "input" else "right")
    labels = {"h": "JEPA state h_t", "raw": "raw features at t", "raw_window": "raw features, trailing window"}
    for key, label in labels.items():
        row = probe[key]
        table.add_row(label, str(row["dims"]), f"{row['vol_r2']:.3f}", f"{row['sign_accuracy']:.3f}")
    out.print(table)
    out.print(f"majority sign rate {probe['majority_sign_rate']:.3f}; RankMe {metrics['rankme']:.1f} of "
              f"{metrics['embedding_dims']}; per-dim std {metrics['per_dim_std']['mean']:.3f}", highlight=False)
    verb = "reused" if result.reused else "trained"
    out.print(f"{verb} [bold]{m.ref}[/] ({metrics['steps']} steps, {metrics['seconds']} s) at {ws.uri(m.stage, m.id)}",
              highlight=False)
    out.print(f"next: chaos train-cfm --jepa {m.id}", highlight=False)
