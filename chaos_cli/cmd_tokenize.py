"""`chaos tokenize` (Strate I): train an FSQ tokenizer on a dataset and write every bar's code."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from, stage_config
from chaos_cli.output import print_json, print_tables


def tokenize(
    ctx: typer.Context,
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="Dataset reference (latest, id or prefix).")] = "latest",
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
    from strates.core.errors import ConfigError
    from strates.fsq import TOKENIZER_STAGE, run
    from strates.fsq.artifact import read_tokenizer, read_tokens, tables

    env = env_from(ctx, workspace, json_)
    if tokenizer is not None and (preset or set_ or fold):
        raise ConfigError(
            "--tokenizer reuses a trained tokenizer with its own config",
            fix="drop --preset/--set/--fold, or drop --tokenizer to train a new one",
        )
    config = stage_config(TOKENIZER_STAGE, preset, set_, fold=fold)
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
    print_tables(env, tables(read_tokenizer(tok), read_tokens(tokens)))
    for m, reused, verb in ((tok, result.reused_tokenizer, "trained"), (tokens, result.reused_tokens, "wrote")):
        env.stdout.print(f"{'reused' if reused else verb} [bold]{m.ref}[/] at {ws.uri(m.stage, m.id)}", highlight=False)
    env.stdout.print(f"next: chaos train-jepa --tokens {tokens.id}", highlight=False)
