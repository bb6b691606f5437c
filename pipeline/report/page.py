"""The HTML of ``report.html``: one self-contained page (inline CSS, SVG, data-URI images, a few lines of
vanilla JS to sort tables), no external URL, so it opens offline in any browser."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:.9em}td,th{padding:3px 8px;border-bottom:1px solid #eee;text-align:left}
th.sortable{cursor:pointer;background:#f4f4f4}th.sortable:after{content:" \\2195";color:#999}
.num{text-align:right}.cams{display:flex;flex-wrap:wrap;gap:14px}.cam{border:1px solid #ddd;padding:6px}
.cam img{display:block;max-width:480px}.strip{display:flex;gap:3px;align-items:flex-end}
.crop{height:96px;border-bottom:4px solid}
.chip{display:inline-block;padding:0 6px;margin:1px;color:#fff;border-radius:3px}
.bad{color:#b00}.ok{color:#070}.muted{color:#777}
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('th.sortable').forEach(function(th,i){th.addEventListener('click',function(){
  var rows=Array.from(t.tBodies[0].rows),asc=th.dataset.asc!=='1';th.dataset.asc=asc?'1':'0';
  var key=function(r){var c=r.cells[i],v=c.dataset.sort!==undefined?c.dataset.sort:c.textContent;
   var n=parseFloat(v);return isNaN(n)?v:n;};
  rows.sort(function(a,b){var x=key(a),y=key(b);return (x>y?1:x<y?-1:0)*(asc?1:-1);});
  rows.forEach(function(r){t.tBodies[0].appendChild(r);});});});});
"""


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], cls: str = "", sortable: bool = False,
          row_class: str = "") -> str:
    """An HTML table; cells are escaped unless given as :class:`Raw`, numbers right-aligned.

    A cell may be a ``(display, sort_key)`` tuple: the sort key goes to ``data-sort``.
    """
    sort_cls = " sortable" if sortable else ""
    head = "".join(f'<th class="{sort_cls.strip()}">{escape(h)}</th>' for h in headers)
    body = []
    for r in rows:
        cells = "".join(_cell(c) for c in r)
        body.append(f'<tr class="{row_class}">{cells}</tr>' if row_class else f"<tr>{cells}</tr>")
    return (f'<table class="{(cls + sort_cls).strip()}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


class Raw(str):
    """HTML that :func:`table` puts in a cell as it is (already escaped by its maker)."""


def _cell(c: Any) -> str:
    sort = ""
    if isinstance(c, tuple):
        c, key = c
        sort = f' data-sort="{escape(str(key))}"'
    if isinstance(c, Raw):
        return f"<td{sort}>{c}</td>"
    if isinstance(c, (int, float)) and not isinstance(c, bool):
        text = f"{c:.1f}" if isinstance(c, float) else str(c)
        return f'<td class="num"{sort}>{text}</td>'
    return f"<td{sort}>{escape('' if c is None else str(c))}</td>"


def page(title: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: ``sections`` are ``(html id, heading, body html)``."""
    nav = " · ".join(f'<a href="#{sid}">{escape(h)}</a>' for sid, h, _ in sections)
    body = "".join(f'<section id="{sid}"><h2>{escape(h)}</h2>{html}</section>' for sid, h, html in sections)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1><nav>{nav}</nav>{body}"
            f"<script>{SORT_JS}</script></body></html>")
