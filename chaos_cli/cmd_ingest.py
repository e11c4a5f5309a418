"""`chaos ingest`: bars (+ macro series) from files, or the embedded dataset, into a dataset;
with `--format series`, generic numeric channels of one or more systems
(`strates.data.series`).

The summary table shows each asset's (system's) measured calendar, bars a year, gaps and
closures; `--json` prints the whole dataset summary (`strates.data.summary`)."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_stage_result

SourceOpt = Annotated[
    list[str] | None,
    typer.Option("--source", "-s",
                 help="CSV/Parquet/JSON file or folder (repeatable; local or gs://). "
                      "Without it: the embedded dataset."),
]
FormatOpt = Annotated[
    str, typer.Option("--format", help="auto, csv, parquet, bybit-json or binance-csv (OHLCV bars); series (numeric "
                                       "channels of systems: a timestamp or --dt, an optional 'system' column).")]
DtOpt = Annotated[
    str | None, typer.Option("--dt", help="--format series without timestamps: the step of the regular index, e.g. "
                                          "1h, 15min, 1d or seconds (60).")]
StartOpt = Annotated[
    str | None, typer.Option("--start", help="With --dt: the time of the first row (ISO, UTC unless an offset is "
                                             "given; default 2000-01-01).")]
TsColumnOpt = Annotated[
    str | None, typer.Option("--ts-column", help="Timestamp column, when detection cannot decide.")]
AssetOpt = Annotated[
    str | None, typer.Option("--asset", help="Asset (series: system) name for a single file without an asset "
                                             "(system) column (default: file name).")]
TzOpt = Annotated[
    str | None, typer.Option("--tz", help="Timezone of naive timestamps (default UTC), e.g. America/New_York.")]
KeepExtraOpt = Annotated[bool, typer.Option("--keep-extra", help="Keep extra numeric columns such as 'Adj Close'.")]
MacroOpt = Annotated[
    list[str] | None,
    typer.Option("--macro", help="FRED, ALFRED vintage or CFTC COT CSV, optionally PATH@LAG (e.g. cpi.csv@45d); "
                                 "repeatable."),
]
CotMarketOpt = Annotated[str | None, typer.Option("--cot-market", help="COT market name (substring) or code.")]
SplitOpt = Annotated[
    str, typer.Option("--split", help="Shares 0.7,0.15,0.15; dates VAL_START,TEST_START; or walk-forward:K[,SHARE]."),
]
CalendarOpt = Annotated[
    str, typer.Option("--calendar", help="Bar calendar: auto (measured from the data), 24/7 or weekdays."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Seed of the embedded dataset (no --source).")]
SignalOpt = Annotated[
    float | None, typer.Option("--signal", help="Plant an edge of strength kappa >= 0 in the embedded dataset (no "
                                                "--source); the manifest records the oracle's Sharpe.")]


def ingest_config(*, source: list[str] | None, format: str = "auto", ts_column: str | None = None,
                  asset: str | None = None, tz: str | None = None, keep_extra: bool = False,
                  macro: list[str] | None = None, cot_market: str | None = None, split: str = "0.7,0.15,0.15",
                  calendar: str = "auto", seed: int | None = None, dt: str | None = None, start: str | None = None,
                  signal: float | None = None):
    """The ingest config the shared ingest options describe (`chaos ingest` and `chaos run`)."""
    import dataclasses
    import math

    from strates.core.config import choice
    from strates.core.errors import ConfigError
    from strates.data.config import CalendarKind, Config, MacroSource, SeriesSpec, parse_step
    from strates.data.embedded import EmbeddedSpec

    if seed is not None and source:
        raise ConfigError("--seed sets the embedded dataset, which is not used with --source", fix="drop --seed")
    if signal is not None and (source or format == "series"):
        raise ConfigError(f"--signal {signal:g} plants an edge in the embedded dataset, which is not used with "
                          "--source", fix="drop --signal, or drop --source to use the embedded dataset",
                          field="signal")
    if signal is not None and not (math.isfinite(signal) and signal >= 0):
        raise ConfigError(f"--signal must be a finite number >= 0, got {signal:g}",
                          fix="give kappa >= 0, e.g. --signal 0.1 (0: no planted edge)", field="signal")
    embedded = None
    if seed is not None or signal is not None:
        embedded = EmbeddedSpec(signal=signal or 0.0)
        embedded = dataclasses.replace(embedded, seed=seed) if seed is not None else embedded
    series = None
    if format == "series" or dt is not None or start is not None:
        series = SeriesSpec(step=parse_step(dt) if dt is not None else None,
                            start=_parse_start(start) if start is not None else None)
    return Config(
        sources=tuple(source or ()), format=format, ts_column=ts_column, asset=asset, tz=tz, keep_extra=keep_extra,
        macro=tuple(MacroSource.parse(m) for m in macro or ()), cot_market=cot_market, split=split,
        calendar=None if calendar == "auto" else choice(CalendarKind, calendar, "--calendar"),
        embedded=embedded, series=series,
    )


def _parse_start(text: str):
    import datetime as dt

    from strates.core.errors import ConfigError

    try:
        value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"cannot read --start {text!r} as a date or time", field="start",
                          fix="write it as ISO 8601, e.g. 2000-01-01 or 2024-01-31T14:30:00Z") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def ingest(
    ctx: typer.Context,
    source: SourceOpt = None,
    format: FormatOpt = "auto",
    ts_column: TsColumnOpt = None,
    asset: AssetOpt = None,
    tz: TzOpt = None,
    keep_extra: KeepExtraOpt = False,
    macro: MacroOpt = None,
    cot_market: CotMarketOpt = None,
    split: SplitOpt = "0.7,0.15,0.15",
    calendar: CalendarOpt = "auto",
    seed: SeedOpt = None,
    dt: DtOpt = None,
    start: StartOpt = None,
    signal: SignalOpt = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Validate bars (or generic series with --format series), join macro series as-of, split in time, and write
    a dataset artifact."""
    from strates.data.artifact import read, tables
    from strates.data.ingest import run

    env = env_from(ctx, workspace, json_)
    config = ingest_config(source=source, format=format, ts_column=ts_column, asset=asset, tz=tz,
                           keep_extra=keep_extra, macro=macro, cot_market=cot_market, split=split, calendar=calendar,
                           seed=seed, dt=dt, start=start, signal=signal)
    ws = env.workspace_obj()
    result = run(config, ws, force=force, reporter=env.reporter())
    extra = {"id": result.manifest.id, "summary": result.manifest.to_json()["summary"]} if env.json else {}
    print_stage_result(env, ws, result, tables(read(result.manifest)), verb="wrote",
                       next_hint=f"chaos tokenize --dataset {result.manifest.id}", **extra)
