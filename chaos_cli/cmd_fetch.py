"""`chaos fetch`: download market data from public exchange APIs into files `chaos ingest`
reads. `chaos fetch bybit`: klines from Bybit's v5 REST API (`strates.data.fetch_bybit`).

Progress and retries go to stderr; stdout gets what was written (with `--json`:
`{"ok": true, "fetch": {...}}`, or with `--ingest` the dataset's JSON as `chaos ingest
--json` prints it, plus `fetch`)."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json, print_stage_result

app = typer.Typer(help="Download market data from public exchange APIs into files chaos ingest reads.",
                  no_args_is_help=True)


@app.command("bybit")
def bybit(
    ctx: typer.Context,
    symbol: Annotated[str, typer.Option("--symbol", help="Bybit symbol, e.g. BTCUSDT (upper-cased).")],
    interval: Annotated[str, typer.Option(
        "--interval", help="Kline interval: 1 3 5 15 30 60 120 240 360 720 (minutes), D, W (from Monday) or M.")],
    start: Annotated[str, typer.Option(
        "--start", help="First kline start: ISO date or time (UTC unless an offset is given) or epoch ms.")],
    end: Annotated[str, typer.Option(
        "--end", help="End, exclusive: klines starting before it (same forms as --start).")],
    category: Annotated[str, typer.Option("--category", help="spot, linear or inverse.")] = "linear",
    out: Annotated[str | None, typer.Option(
        "--out", "-o", help="Output file.", show_default="./bybit-{symbol}-{interval}-{start}-{end}.json")] = None,
    ingest: Annotated[bool, typer.Option(
        "--ingest", help="Then ingest the file into a dataset (as chaos ingest --source FILE).")] = False,
    limit: Annotated[int, typer.Option("--limit", help="Klines per request, 1..1000.")] = 1000,
    base_url: Annotated[str, typer.Option(
        "--base-url", envvar="CHAOS_BYBIT_URL", help="Bybit API root.")] = "https://api.bybit.com",
    attempts: Annotated[int, typer.Option(
        "--attempts", envvar="CHAOS_FETCH_ATTEMPTS", help="Tries per request before giving up (exit 5).")] = 5,
    backoff: Annotated[float, typer.Option(
        "--backoff", envvar="CHAOS_FETCH_BACKOFF",
        help="First wait between tries, seconds; doubled at each retry, with jitter.")] = 0.5,
    timeout: Annotated[float, typer.Option("--timeout", help="Read timeout per request, seconds.")] = 30.0,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Page Bybit's public v5 kline endpoint over [--start, --end) into a JSON file that chaos
    ingest reads; rerunning an interrupted fetch resumes where it stopped.

    Exit 2: a bad option, or Bybit refusing the request (retCode, e.g. 10001 for an unknown
    symbol) or sending a page that breaks a rule; exit 5: the network, the server or its
    rate limit still failing after --attempts tries (rerun to resume), or the file not
    writable. Nothing is written at --out unless every page arrived."""
    from strates.data.bybit_client import Http
    from strates.data.fetch_bybit import Request, fetch, iso, parse_time

    env = env_from(ctx, workspace, json_)
    request = Request(symbol=symbol, interval=interval, category=category,
                      start_ms=parse_time(start, "start"), end_ms=parse_time(end, "end"))
    http = Http(attempts=attempts, backoff_s=backoff, read_s=timeout)
    result = fetch(request, out, base_url=base_url, limit=limit, http=http, reporter=env.reporter())
    summary = result.to_json()
    if not ingest:
        if env.json:
            print_json({"ok": True, "fetch": summary})
            return
        env.stdout.print(f"wrote {result.klines} klines of {request.symbol} {request.interval} "
                         f"({iso(result.first_ms)} .. {iso(result.last_ms)}; {result.pages} pages, "
                         f"{result.resumed} resumed) to {result.path}", highlight=False)
        env.stdout.print(f"next: chaos ingest --source {result.path}", highlight=False)
        return
    from chaos_cli.cmd_ingest import ingest_config
    from strates.data.artifact import read, tables
    from strates.data.ingest import run

    if not env.json:
        env.stdout.print(f"wrote {result.klines} klines to {result.path}", highlight=False)
    ws = env.workspace_obj()
    done = run(ingest_config(source=[result.path], format="bybit-json"), ws, force=force, reporter=env.reporter())
    extra = {"id": done.manifest.id, "summary": done.manifest.to_json()["summary"], "fetch": summary} if env.json \
        else {}
    print_stage_result(env, ws, done, tables(read(done.manifest)), verb="wrote",
                       next_hint=f"chaos tokenize --dataset {done.manifest.id}", **extra)
