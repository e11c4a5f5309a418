"""`chaos ingest`: bars (+ macro series) from files, or the embedded dataset, into a dataset.

The summary table shows each asset's measured calendar, bars a year, gaps and closures;
`--json` prints the whole dataset summary (`strates.data.summary`)."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json


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
    m = result.manifest
    if env.json:
        print_json({"ok": True, "reused": result.reused, "ref": m.ref, "id": m.id, "uri": result.uri,
                    "summary": m.to_json()["summary"], "metrics": m.to_json()["metrics"]})
        return
    _print_summary(env, m, result)


def _print_summary(env, m, result) -> None:
    from rich.table import Table

    s = m.summary
    out = env.stdout
    verb = "reused" if result.reused else "wrote"
    rate = f", {s['periods_per_year']:,.1f} bars a year ({s['calendar']})" if "periods_per_year" in s else ""
    table = Table(title=f"{s['n_assets']} assets, {s['rows']:,} bars every {s['interval']}{rate}", title_justify="left")
    numeric = ("bars", "bars/year", "gaps", "missing bars", "closures")
    columns = ("asset", "bars", "first (UTC)", "last (UTC)", "calendar", "bars/year", "gaps", "missing bars", "closures")
    for col in columns:
        table.add_column(col, justify="right" if col in numeric else "left")
    for name, a in s["assets"].items():
        ppy = f"{a['periods_per_year']:,.1f}" if "periods_per_year" in a else "-"
        table.add_row(name, f"{a['rows']:,}", f"{a['start']:%Y-%m-%d %H:%M}", f"{a['end']:%Y-%m-%d %H:%M}",
                      a.get("calendar", "-"), ppy, str(a["gaps"]), str(a["missing_bars"]), str(a.get("closures", "-")))
    out.print(table)
    if "macro" in s:
        out.print("macro: " + ", ".join(_macro_label(k, v) for k, v in s["macro"].items()), highlight=False)
        leaky = [k for k, v in s["macro"].items() if v.get("revisions_may_leak")]
        if leaky:
            out.print(f"revisions may leak into {', '.join(leaky)}: latest-vintage values (pass ALFRED vintage "
                      "files for real-time values)", highlight=False)
    for fold in s["split"]["folds"]:
        parts = [f"{p} {fold[p]['start']:%Y-%m-%d %H:%M} → {fold[p]['end']:%Y-%m-%d %H:%M}" for p in ("train", "validation", "test")]
        out.print(f"{fold['name']}: " + " | ".join(parts), highlight=False)
    out.print(f"{verb} [bold]{m.ref}[/] at {result.uri}", highlight=False)
    out.print(f"next: chaos tokenize --dataset {m.id}", highlight=False)


def _macro_label(name: str, v: dict) -> str:
    kind = ", vintages" if v.get("vintage") else ""
    return f"{name} ({v['observations']} obs{kind})"
