"""A `Report` as text: one self-contained HTML page (inline CSS, figures as base64 PNG, no
script, no external resource) and a GitHub-flavoured Markdown page whose figures are
files beside it (`figures/<name>.png`). Every text from an artifact is escaped."""

from __future__ import annotations

import base64
import html

from strates.report.document import Code, Facts, Figure, Heading, Report, Section, Table, Text

CSS = """
:root { --fg: #1d2430; --muted: #5d6878; --line: #dde2ea; --zebra: #f5f7fa; --accent: #1f5fbf; --code: #f4f6f9; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--fg); background: #fff; line-height: 1.5; font-size: 15px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 28px 28px 72px; }
header { border-bottom: 2px solid var(--line); padding-bottom: 14px; margin-bottom: 8px; }
h1 { font-size: 28px; margin: 0 0 10px; letter-spacing: -0.01em; }
h2 { font-size: 22px; margin: 40px 0 12px; padding-top: 12px; border-top: 1px solid var(--line); }
h3 { font-size: 16.5px; margin: 26px 0 8px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
p { margin: 8px 0; max-width: 80ch; }
p.muted { color: var(--muted); font-size: 14px; }
.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; font-size: 14px; }
.meta dt { color: var(--muted); }
.meta dd { margin: 0; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 13px; }
nav.toc { background: var(--zebra); border: 1px solid var(--line); border-radius: 6px; padding: 10px 18px;
  margin: 18px 0 8px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; columns: 2; }
nav.toc li { margin: 2px 0; }
dl.facts { display: grid; grid-template-columns: minmax(150px, max-content) 1fr; gap: 4px 18px; margin: 10px 0 14px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
.table-wrap { overflow-x: auto; margin: 10px 0 18px; }
table { border-collapse: collapse; font-size: 13.5px; font-variant-numeric: tabular-nums; }
caption { caption-side: bottom; text-align: left; color: var(--muted); font-size: 13px; padding-top: 6px;
  max-width: 95ch; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
td.wrap { white-space: normal; min-width: 18em; }
p.table-title { font-weight: 600; font-size: 14px; margin: 0 0 4px; max-width: none; }
th { text-align: left; font-weight: 600; border-bottom: 2px solid #c9d0da; white-space: nowrap; }
td.num, th.num { text-align: right; }
tbody tr:nth-child(even) { background: var(--zebra); }
figure { margin: 14px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 6px; max-width: 95ch; }
details { margin: 6px 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; }
details > summary { cursor: pointer; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  font-size: 13px; }
pre { background: var(--code); padding: 10px 12px; overflow-x: auto; font-size: 12.5px; line-height: 1.4;
  border-radius: 4px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
footer { margin-top: 48px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); padding-top: 10px; }
@media (max-width: 700px) { main { padding: 16px; } nav.toc ol { columns: 1; }
  dl.facts { grid-template-columns: 1fr; } }
@media print { nav.toc { display: none; } h2 { break-before: page; } figure, table { break-inside: avoid; } }
"""


def _e(text: str) -> str:
    return html.escape(str(text), quote=True)


# -- HTML ------------------------------------------------------------------------------------
def to_html(report: Report) -> str:
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{_e(report.title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>", "<main>",
             "<header>", f"<h1>{_e(report.title)}</h1>", '<dl class="meta">']
    parts += [f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in report.meta]
    parts += ["</dl>", "</header>", '<nav class="toc"><strong>Contents</strong><ol>']
    parts += [f'<li><a href="#{_e(s.id)}">{_e(s.title)}</a></li>' for s in report.sections]
    parts += ["</ol></nav>"]
    for i, section in enumerate(report.sections, 1):
        parts.append(_html_section(section, i))
    parts += [f"<footer>{_e(report.title)} · generated from artifacts; no external resources.</footer>",
              "</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def _html_section(section: Section, number: int) -> str:
    out = [f'<section id="{_e(section.id)}">', f"<h2>{number}. {_e(section.title)}</h2>",
           *(_html_block(block) for block in section.blocks), "</section>"]
    return "\n".join(out)


def _html_block(block) -> str:
    if isinstance(block, Text):
        return f'<p class="muted">{_e(block.text)}</p>' if block.muted else f"<p>{_e(block.text)}</p>"
    if isinstance(block, Heading):
        return f"<h3>{_e(block.text)}</h3>"
    if isinstance(block, Facts):
        items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in block.items)
        return f'<dl class="facts">{items}</dl>'
    if isinstance(block, Table):
        return table_html(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure id="fig-{_e(block.name)}"><img src="data:image/png;base64,{data}" alt="{_e(block.caption)}">'
                f"<figcaption>{_e(block.caption)}</figcaption></figure>")
    if isinstance(block, Code):
        return (f"<details><summary>{_e(block.summary)}</summary><pre><code>{_e(block.code)}</code></pre></details>")
    raise TypeError(f"cannot render a {type(block).__name__}")


def _cls(i: int, t: Table, cell: bool = False) -> str:
    names = ([] if i < t.left else ["num"]) + (["wrap"] if cell and i == t.wrap else [])
    return f' class="{" ".join(names)}"' if names else ""


def table_html(t: Table) -> str:
    head = "".join(f"<th{_cls(i, t)}>{_e(c)}</th>" for i, c in enumerate(t.columns))
    body = "".join("<tr>" + "".join(f"<td{_cls(i, t, True)}>{_e(c)}</td>" for i, c in enumerate(row)) + "</tr>"
                   for row in t.rows)
    caption = f"<caption>{_e(t.caption)}</caption>" if t.caption else ""
    title = f'<p class="table-title">{_e(t.title)}</p>' if t.title else ""
    return (f'<div class="table-wrap">{title}<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
            "</table></div>")


# -- Markdown --------------------------------------------------------------------------------
def _md(text: str) -> str:
    """Plain text for Markdown: no raw HTML, no accidental emphasis or links."""
    out = html.escape(str(text), quote=False).replace("\\", "\\\\")
    for ch in "*_`[]":
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", " ")


def _md_cell(text: str) -> str:
    return _md(text).replace("|", "\\|")


def to_markdown(report: Report) -> str:
    lines = [f"# {_md(report.title)}", ""]
    lines += [f"- **{_md(k)}:** {_md(v)}" for k, v in report.meta]
    lines += ["", "## Contents", ""]
    lines += [f"{i}. [{_md(s.title)}](#{s.id})" for i, s in enumerate(report.sections, 1)]
    for i, section in enumerate(report.sections, 1):
        lines += ["", f'<a id="{_e(section.id)}"></a>', "", f"## {i}. {_md(section.title)}", ""]
        for block in section.blocks:
            lines += _md_block(block)
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _md_block(block) -> list[str]:
    if isinstance(block, Text):
        return [f"_{_md(block.text)}_" if block.muted else _md(block.text)]
    if isinstance(block, Heading):
        return [f"### {_md(block.text)}"]
    if isinstance(block, Facts):
        return [f"- **{_md(k)}:** {_md(v)}" for k, v in block.items]
    if isinstance(block, Table):
        out = [f"**{_md(block.title)}**", ""] if block.title else []
        out += ["| " + " | ".join(_md_cell(c) for c in block.columns) + " |",
               "|" + "|".join("---" if i < block.left else "---:" for i in range(len(block.columns))) + "|"]
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        if block.caption:
            out += ["", f"_{_md(block.caption)}_"]
        return out
    if isinstance(block, Figure):
        return [f"![{_md(block.name)}](figures/{block.name}.png)", "", f"_{_md(block.caption)}_"]
    if isinstance(block, Code):
        fence = "```"
        while fence in block.code:
            fence += "`"
        return [f"**{_md(block.summary)}**", "", f"{fence}{block.language}", block.code.rstrip("\n"), fence]
    raise TypeError(f"cannot render a {type(block).__name__}")
