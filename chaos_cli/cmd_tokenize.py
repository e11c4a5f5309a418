"""`chaos tokenize` (Strate I): train an FSQ tokenizer on a dataset and write every bar's code."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json


def tokenize(
    ctx: typer.Context,
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="Dataset reference (latest, id or prefix).")] = "latest",
    tokenizer: Annotated[
        str | None, typer.Option("--tokenizer", "-t", help="Reuse this tokenizer instead of training one.")
    ] = None,
    preset: PresetOpt = None,
    set_: SetOpt = None,
    fold: Annotated[str | None, typer.Option("--fold", help="Dataset fold to train on (default: the first).")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Fit a dilated causal CNN + FSQ tokenizer (1024 codes) on the training period; write tokens."""
    import dataclasses

    from strates.core.config import apply_overrides, merge_presets
    from strates.core.errors import ConfigError
    from strates.fsq import PRESETS, Config, run
    from strates.fsq.config import DEFAULT_PRESET

    env = env_from(ctx, workspace, json_)
    if tokenizer is not None and (preset or set_ or fold):
        raise ConfigError(
            "--tokenizer reuses a trained tokenizer with its own config",
            fix="drop --preset/--set/--fold, or drop --tokenizer to train a new one",
        )
    config = merge_presets(Config(), PRESETS, preset or [DEFAULT_PRESET])
    config = apply_overrides(config, set_ or [])
    if fold is not None:
        config = dataclasses.replace(config, fold=fold)
    ws = env.workspace_obj()
    result = run(config, ws, dataset=dataset, tokenizer=tokenizer, force=force, reporter=env.reporter())
    tok, tokens = result.tokenizer, result.tokens
    if env.json:
        print_json({
            "ok": True,
            "tokenizer": {"ref": tok.ref, "reused": result.reused_tokenizer, "metrics": tok.to_json()["metrics"]},
            "tokens": {"ref": tokens.ref, "reused": result.reused_tokens, "metrics": tokens.to_json()["metrics"],
                       "uri": ws.uri(tokens.stage, tokens.id)},
        })
        return
    _print_summary(env, ws, result)


def _print_summary(env, ws, result) -> None:
    from rich.table import Table

    tok, tokens = result.tokenizer, result.tokens
    m = tok.metrics
    out = env.stdout
    size = tok.summary["codebook_size"]
    table = Table(title=f"tokenizer {tok.id}: {size} codes, levels {tok.summary['levels']}", title_justify="left")
    for col in ("period", "bars", "used", "util.", "perplexity", "R² ret", "R² range"):
        table.add_column(col, justify="left" if col == "period" else "right")
    for period in ("train", "validation"):
        if period in m:
            p = m[period]
            table.add_row(period, f"{p['bars']:,}", f"{p['codes_used']}", f"{p['utilization']:.1%}",
                          f"{p['perplexity']:.0f} / {size}", f"{p['r2']['ret']:.3f}", f"{p['r2']['log_range']:.3f}")
    out.print(table)
    verb = "reused" if result.reused_tokenizer else "trained"
    out.print(f"{verb} [bold]{tok.ref}[/] ({m.get('steps', '?')} steps, {m.get('seconds', '?')} s)", highlight=False)
    verb = "reused" if result.reused_tokens else "wrote"
    out.print(f"{verb} [bold]{tokens.ref}[/]: {tokens.metrics['tokens']:,} tokens at {ws.uri(tokens.stage, tokens.id)}",
              highlight=False)
    out.print(f"next: chaos train-jepa --tokens {tokens.id}", highlight=False)
