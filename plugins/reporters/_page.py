"""The report as one self-contained HTML page and as Markdown, from the same sections.

The HTML embeds every picture as a data URI and sorts tables with a few lines of inline script
(click a header; numbers sort as numbers), so it opens anywhere without a network. Tables fit the
page (1200 px at most) rather than scroll sideways: headers and cells wrap at spaces, a strategy's
long name anywhere; the scroll box is only a last resort for a table of very many columns. Markdown links
the PNG files written next to it.
"""
from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

__all__ = ["Figure", "Section", "Table", "to_html", "to_markdown"]


@dataclass
class Table:
    """``display`` holds the formatted text; ``keys`` (same shape) the values to sort on."""

    display: pd.DataFrame
    keys: pd.DataFrame | None = None


@dataclass
class Figure:
    png: Path
    caption: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    bullets: list[str] = field(default_factory=list)
    anchor: str = ""


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:12px;margin:.6em 0;max-width:100%}.scroll{overflow-x:auto;max-width:100%}
td,th{border:1px solid #ccc;padding:3px 5px;text-align:right;white-space:normal}
td:first-child,th:first-child{text-align:left;overflow-wrap:anywhere;min-width:8em}
th{background:#f3f3f3;cursor:pointer;user-select:none;vertical-align:bottom}th:hover{background:#e6e6e6}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#555;max-width:900px}
#verdict{background:#f4f8ff;border:1px solid #b9cdf0;padding:.6em 1.2em;border-radius:6px}
#verdict li{margin:.25em 0}#verdict h2{margin-top:.4em}
"""

_SCRIPT = """
document.querySelectorAll('table.sortable th').forEach(function(th){
  th.addEventListener('click',function(){
    var table=th.closest('table'),body=table.tBodies[0],i=th.cellIndex;
    var up=th.dataset.dir!=='asc';th.dataset.dir=up?'asc':'desc';
    var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v,nx=parseFloat(x),ny=parseFloat(y);
      var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:String(x).localeCompare(String(y));
      return up?c:-c;});
    rows.forEach(function(r){body.appendChild(r);});});});
"""


def _html_table(table: Table) -> str:
    keys = table.keys if table.keys is not None else table.display
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.display.columns)
    body = []
    for (_, shown), (_, key) in zip(table.display.iterrows(), keys.iterrows()):
        cells = "".join(f'<td data-v="{html.escape(_key(k))}">{html.escape(str(v))}</td>' for v, k in zip(shown, key))
        body.append(f"<tr>{cells}</tr>")
    return (f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _key(value: object) -> str:
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def to_html(title: str, sections: list[Section]) -> str:
    parts = [(f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
              f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>")]
    for section in sections:
        anchor = f' id="{section.anchor}"' if section.anchor else ""
        parts.append(f"<section{anchor}><h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in section.paragraphs]
        if section.bullets:
            parts.append("<ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in section.bullets) + "</ul>")
        parts += [_html_table(t) for t in section.tables]
        for figure in section.figures:
            data = base64.b64encode(figure.png.read_bytes()).decode()
            parts.append(f'<figure><img alt="{html.escape(figure.png.stem)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")
        parts.append("</section>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>\n")
    return "".join(parts)


def _md_table(table: Table) -> str:
    frame = table.display
    lines = ["| " + " | ".join(str(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(v).replace("|", "/") for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(title: str, sections: list[Section]) -> str:
    parts = [f"# {title}"]
    for section in sections:
        parts.append(f"## {section.title}")
        parts += section.paragraphs
        if section.bullets:
            parts.append("\n".join(f"- {b}" for b in section.bullets))
        parts += [_md_table(t) for t in section.tables]
        parts += [f"![{f.png.stem}]({f.png.name})\n\n*{f.caption}*" for f in section.figures]
    return "\n\n".join(parts) + "\n"
