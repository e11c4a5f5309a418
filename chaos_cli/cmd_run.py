"""`chaos run`: the whole pipeline, reusing every stage whose inputs and config are unchanged."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.cmd_ingest import (
    CalendarOpt,
    DtOpt,
    FormatOpt,
    MacroOpt,
    SeedOpt,
    SignalOpt,
    SourceOpt,
    SplitOpt,
    StartOpt,
    TzOpt,
    ingest_config,
)
from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json

RunSetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override one stage's config: KIND.section.field=value, KIND one of tokenizer, jepa, "
                               "cfm, agent, multiverse, report (repeatable)."),
]


def stage_overrides(items: list[str] | None) -> dict[str, list[str]]:
    """`--set jepa.train.steps=10` -> {"jepa": ["train.steps=10"]}; an unknown stage is a ConfigError."""
    from strates.core.errors import ConfigError
    from strates.pipeline import STAGES

    out: dict[str, list[str]] = {}
    for item in items or []:
        kind, _, rest = item.partition(".")
        if kind not in STAGES[1:] or not rest:
            raise ConfigError(f"--set {item!r} does not start with a stage", field="set",
                              fix=f"write KIND.section.field=value with KIND one of {', '.join(STAGES[1:])}, "
                                  "e.g. --set jepa.train.steps=200")
        out.setdefault(kind, []).append(rest)
    return out


def run(
    ctx: typer.Context,
    preset: PresetOpt = None,
    set_: RunSetOpt = None,
    source: SourceOpt = None,
    format_: FormatOpt = "auto",
    dt: DtOpt = None,
    start: StartOpt = None,
    macro: MacroOpt = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", "-d", help="Start from this dataset (reference) instead of ingesting; "
                                                         "`chaos ingest` has every reading option.")
    ] = None,
    split: SplitOpt = "0.7,0.15,0.15",
    calendar: CalendarOpt = "auto",
    tz: TzOpt = None,
    seed: SeedOpt = None,
    signal: SignalOpt = None,
    universes: Annotated[
        int | None, typer.Option("--universes", "-m", help="M universes for Multiverse Crossing.")] = None,
    fit: Annotated[
        bool, typer.Option("--fit/--no-fit", help="Shrink windows too long for a short history (and say so).")
    ] = True,
    until: Annotated[
        str | None, typer.Option("--until", help="Stop after this stage: dataset, tokenizer, tokens, jepa, cfm, "
                                                 "agent, multiverse or report.")] = None,
    force: ForceOpt = False,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """ingest → tokenize → train-jepa → train-cfm → train-agent → multiverse → report: on the embedded data, your
    files (--source) or an existing dataset (--dataset); --until stops after a stage. On a generic series
    (--format series) the agent is skipped and the multiverse runs futures-only."""
    from strates.core.errors import ConfigError
    from strates.pipeline import run as pipeline

    env = env_from(ctx, workspace, json_)
    ingest_given = bool(source or macro or seed is not None or split != "0.7,0.15,0.15" or calendar != "auto" or tz
                        or format_ != "auto" or dt or start or signal is not None)
    if dataset is not None and ingest_given:
        raise ConfigError("--dataset starts from an existing dataset; the ingest options describe a new one",
                          fix="drop --dataset, or drop --source/--format/--dt/--start/--macro/--split/--calendar/--tz/"
                              "--seed/--signal")
    config = ingest_config(source=source, format=format_, dt=dt, start=start, tz=tz, macro=macro, split=split,
                           calendar=calendar, seed=seed, signal=signal)
    ws = env.workspace_obj()
    adapted = []
    steps = pipeline(ws, presets=preset, force=force, universes=universes, ingest_config=config, dataset=dataset,
                     overrides=stage_overrides(set_), fit=fit, reporter=env.reporter(), on_adapt=adapted.append,
                     until=until)
    html = ws.uri(steps[-1].ref, "report.html") if steps[-1].stage == "report" else None
    if env.json:
        print_json({"ok": True, "stages": [s.__dict__ for s in steps], "report": html,
                    "adapted": [a.__dict__ for a in adapted]})
        return
    from chaos_cli.output import print_tables
    from strates.core.table import table

    rows = [(s.stage, s.ref, "reused" if s.reused else "built", f"{s.seconds:.1f}") for s in steps]
    print_tables(env, [table(("stage", "artifact", "", "seconds"), rows, left=3, title="chaos run")])
    for a in adapted:
        env.stdout.print(f"fitted to the data: {a.kind} --set {a.override} ({a.reason})", highlight=False)
    if html is None:
        return
    env.stdout.print(f"report: {html}", highlight=False)
    env.stdout.print(f"next: open {html}", highlight=False)
