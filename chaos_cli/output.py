"""Where things are printed: logs and progress on stderr, results (and `--json`) on stdout."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console

from strates.core.errors import ChaosError, InvalidInput
from strates.core.progress import Update, ignore_update


@dataclasses.dataclass
class Env:
    """What the global options resolved to; kept on the typer context."""

    workspace: str | None = None
    json: bool = False
    verbosity: int = 0  # -1 quiet, 0 normal, 1+ verbose

    @property
    def stdout(self) -> Console:
        return Console(file=sys.stdout, soft_wrap=True)

    @property
    def stderr(self) -> Console:
        return Console(file=sys.stderr, soft_wrap=True)

    def workspace_obj(self):
        from strates.core.workspace import Workspace

        return Workspace(self.workspace)

    def log(self, message: str) -> None:
        if self.verbosity >= 0:
            self.stderr.print(message, highlight=False)

    def reporter(self) -> CliReporter:
        return CliReporter(self)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinite float replaced by None: strict JSON has no NaN or
    Infinity (jq and most parsers refuse them), and "no finite value" reads as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def print_json(data: Any) -> None:
    """`data` as strict JSON on stdout (non-finite numbers as null)."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, default=_json_default, sort_keys=False,
                                allow_nan=False) + "\n")
    sys.stdout.flush()


def print_tables(env: Env, tables: Any) -> None:
    """Tables defined by a strate (`strates.core.table.Table`), drawn with rich on stdout."""
    from rich.table import Table as RichTable

    for t in tables:
        rich = RichTable(title=t.title or None, title_justify="left", caption=t.caption or None,
                         caption_justify="left")
        for i, col in enumerate(t.columns):
            # a word too long for its column folds onto the next line, in every column
            rich.add_column(col, justify="left" if i < t.left else "right", overflow="fold")
        for row in t.rows:
            rich.add_row(*row)
        env.stdout.print(rich)


def print_stage_result(env: Env, ws: Any, result: Any, tables: Any = (), *, verb: str = "built",
                       next_hint: str | None = None, **extra: Any) -> None:
    """A stage's result: with --json `{ok, reused, ref, uri, metrics, **extra}` on stdout;
    else its tables, one line saying what was built or reused (and where), and the next
    command."""
    m = result.manifest
    if env.json:
        print_json({"ok": True, "reused": result.reused, "ref": m.ref, "uri": ws.uri(m.stage, m.id),
                    "metrics": m.to_json()["metrics"], **extra})
        return
    print_tables(env, tables)
    seconds = m.metrics.get("seconds")
    took = f" in {seconds} s" if seconds is not None and not result.reused else ""
    env.stdout.print(f"{'reused' if result.reused else verb} [bold]{m.ref}[/]{took} at {ws.uri(m.stage, m.id)}",
                     highlight=False)
    if next_hint:
        env.stdout.print(f"next: {next_hint}", highlight=False)


def print_error(env: Env, err: ChaosError) -> None:
    console = env.stderr
    from rich.markup import escape

    console.print(f"[bold red]error:[/] {escape(err.message)}", highlight=False, soft_wrap=True)
    if err.fix:
        console.print(f"[bold]fix:[/] {escape(err.fix)}", highlight=False, soft_wrap=True)
    if env.json:
        payload: dict[str, Any] = {
            "ok": False,
            "error": {"type": type(err).__name__, "message": err.message, "fix": err.fix, "exit_code": err.exit_code},
        }
        if isinstance(err, InvalidInput):
            payload["error"].update(rule=err.rule, file=err.file, row=err.row, column=err.column)
        print_json(payload)


class CliReporter:
    """Rich progress bars when stderr is a terminal; plain timestamped lines otherwise."""

    def __init__(self, env: Env):
        self.env = env
        self.console = env.stderr
        self.live = self.console.is_terminal and env.verbosity >= 0

    def info(self, message: str) -> None:
        if self.env.verbosity >= 0:
            self.console.print(f"  {message}", highlight=False, markup=False)

    @contextlib.contextmanager
    def task(self, description: str, total: float | None = None) -> Iterator[Update]:
        if self.env.verbosity < 0:
            yield ignore_update
            return
        if not self.live:
            start = time.perf_counter()
            print(f"[chaos] {description} ...", file=sys.stderr, flush=True)

            def plain(amount: float = 1, *, status: str | None = None) -> None:
                if status:
                    print(f"[chaos] {description}: {status}", file=sys.stderr, flush=True)

            yield plain
            print(f"[chaos] {description}: done in {time.perf_counter() - start:.2f}s", file=sys.stderr, flush=True)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
        if total is not None:
            columns.append(MofNCompleteColumn())
        columns += [TimeElapsedColumn(), TextColumn("{task.fields[status]}")]
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total, status="")

            def rich_update(amount: float = 1, *, status: str | None = None) -> None:
                if status is None:
                    progress.update(task, advance=amount)
                else:
                    progress.update(task, advance=amount, status=status)

            yield rich_update
            progress.update(task, completed=total if total is not None else 1, total=total or 1)
