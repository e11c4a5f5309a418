"""`chaos report`: one self-contained HTML page (and a Markdown twin) from the artifacts."""

from __future__ import annotations

from typing import Annotated

import typer

from chaos_cli.options import ForceOpt, JsonOpt, PresetOpt, SetOpt, WorkspaceOpt, env_from
from chaos_cli.output import print_json


def report(
    ctx: typer.Context,
    multiverse: Annotated[str, typer.Option("--multiverse", help="Multiverse reference (latest, id or prefix).")] = "latest",
    preset: PresetOpt = None,
    set_: SetOpt = None,
    force: ForceOpt = False,
    out: Annotated[str | None, typer.Option(
        "--out", help="Also copy report.html to PATH (a .html file or a folder), report.md and figures/ beside it.",
    )] = None,
    workspace: WorkspaceOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Build the report: data, Strates I-IV, Multiverse Crossing and provenance, from artifacts alone."""
    from strates.core.config import apply_overrides, merge_presets
    from strates.report import PRESETS, Config, run
    from strates.report.config import DEFAULT_PRESET
    from strates.report.stage import HTML, MARKDOWN, export

    env = env_from(ctx, workspace, json_)
    config = apply_overrides(merge_presets(Config(), PRESETS, preset or [DEFAULT_PRESET]), set_ or [])
    ws = env.workspace_obj()
    result = run(config, ws, multiverse=multiverse, force=force, reporter=env.reporter())
    m = result.manifest
    copied = export(ws, m, out) if out else None
    html, markdown = ws.uri(m.stage, m.id, HTML), ws.uri(m.stage, m.id, MARKDOWN)
    if env.json:
        payload = {"ok": True, "reused": result.reused, "ref": m.ref, "uri": ws.uri(m.stage, m.id), "html": html,
                   "markdown": markdown, "sections": m.metrics.get("sections", []), "figures": m.metrics.get("figures")}
        if copied:
            payload["out"] = copied
        print_json(payload)
        return
    o = env.stdout
    verb = "reused" if result.reused else "built"
    o.print(f"{verb} [bold]{m.ref}[/]: {len(m.metrics.get('sections', []))} sections, "
            f"{m.metrics.get('figures', 0)} figures", highlight=False)
    for problem in m.summary.get("problems", []):
        o.print(f"[yellow]note:[/] {problem}", highlight=False)
    o.print(f"html:     {html}", highlight=False, markup=False)
    o.print(f"markdown: {markdown}", highlight=False, markup=False)
    if copied:
        o.print(f"copied:   {copied['html']} and {copied['markdown']}", highlight=False, markup=False)
    o.print(f"next: open {copied['html'] if copied else html} in a browser (it needs no network)", highlight=False,
            markup=False)
