"""`chaos ingest`: bars (+ macro series) from files, or the embedded dataset, into a dataset.

The summary table shows each asset's measured calendar, bars a year, gaps and closures;
`--json` prints the whole dataset summary (`strates.data.summary`)."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_stage_result


def ingest(
    ctx: typer.Context,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", "-s",
            help="CSV/Parquet/JSON file or folder (repeatable; local or gs://). Without it: the embedded dataset.",
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", help="auto, csv, parquet, bybit-json or binance-csv.")
    ] = "auto",
    ts_column: Annotated[str | None, typer.Option("--ts-column", help="Timestamp column, when detection cannot decide.")] = None,
    asset: Annotated[str | None, typer.Option("--asset", help="Asset name for single-asset files (default: file name).")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Timezone of naive timestamps (default UTC), e.g. America/New_York.")] = None,
    keep_extra: Annotated[bool, typer.Option("--keep-extra", help="Keep extra numeric columns such as 'Adj Close'.")] = False,
    macro: Annotated[
        list[str] | None,
        typer.Option(
            "--macro", "-m",
            help="FRED, ALFRED vintage or CFTC COT CSV, optionally PATH@LAG (e.g. cpi.csv@45d); repeatable.",
        ),
    ] = None,
    cot_market: Annotated[str | None, typer.Option("--cot-market", help="COT market name (substring) or code.")] = None,
    split: Annotated[
        str,
        typer.Option("--split", help="Shares 0.7,0.15,0.15; dates VAL_START,TEST_START; or walk-forward:K[,SHARE]."),
    ] = "0.7,0.15,0.15",
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the embedded dataset (no --source).")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Validate bars, join macro series as-of, split in time, and write a dataset artifact."""
    from strates.core.errors import ConfigError
    from strates.data.config import Config, MacroSource
    from strates.data.embedded import EmbeddedSpec
    from strates.data.ingest import run

    env = env_from(ctx, workspace, json_)
    if seed is not None and source:
        raise ConfigError("--seed sets the embedded dataset, which is not used with --source", fix="drop --seed")
    config = Config(
        sources=tuple(source or ()),
        format=format,
        ts_column=ts_column,
        asset=asset,
        tz=tz,
        keep_extra=keep_extra,
        macro=tuple(MacroSource.parse(m) for m in macro or ()),
        cot_market=cot_market,
        split=split,
        embedded=EmbeddedSpec(seed=seed) if seed is not None else None,
    )
    ws = env.workspace_obj()
    result = run(config, ws, force=force, reporter=env.reporter())
    from strates.data.artifact import read, tables

    extra = {"id": result.manifest.id, "summary": result.manifest.to_json()["summary"]} if env.json else {}
    print_stage_result(env, ws, result, tables(read(result.manifest)), verb="wrote",
                       next_hint=f"chaos tokenize --dataset {result.manifest.id}", **extra)
