"""A self-contained HTML report: headings, text, tables and PNG figures embedded as base64.

One file that opens anywhere, with no assets beside it, so a run folder can be mailed or
attached to an issue as it is.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from practicum.data.runstore import atomic_write_text

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:0.75rem 0;font-size:0.9rem}
th,td{border:1px solid #ccc;padding:0.25rem 0.6rem;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:0.5rem 0}
.note{color:#555;font-size:0.9rem}
"""


@dataclass
class Section:
    heading: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[list[dict[str, Any]]] = field(default_factory=list)
    figures: list[str | Path] = field(default_factory=list)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{_format(row.get(c, ''))}</td>" for c in columns) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(path: str | Path) -> str:
    path = Path(path)
    if not path.exists():
        return f'<p class="note">(figure {html.escape(path.name)} is missing)</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def write_report(path: str | Path, title: str, sections: list[Section], subtitle: str = "") -> Path:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    if subtitle:
        parts.append(f'<p class="note">{html.escape(subtitle)}</p>')
    for section in sections:
        parts.append(f"<h2>{html.escape(section.heading)}</h2>")
        parts.extend(f"<p>{html.escape(p)}</p>" for p in section.paragraphs)
        parts.extend(_table(t) for t in section.tables)
        parts.extend(_figure(f) for f in section.figures)
    parts.append("</body></html>\n")
    atomic_write_text(path, "".join(parts))
    return Path(path)
