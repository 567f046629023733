"""HTML pieces of the report's page: escaped text, sortable tables, sections.

Everything inserted into the page goes through :func:`esc` (probe prompts
and model outputs are arbitrary text, some of it hostile markup).
"""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

MAX_TABLE_ROWS = 200  # per statistics table; the full tables are one `mutascope analyze` call away


def esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def fmt(x) -> tuple[str, str | None, bool]:
    """Cell text, sort value, whether numeric."""
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return "", None, False
    if isinstance(x, (bool, np.bool_)):
        return ("yes" if x else "no"), None, False
    if isinstance(x, (int, np.integer)):
        return str(int(x)), str(int(x)), True
    if isinstance(x, (float, np.floating)):
        f = float(x)
        text = f"{f:.2e}" if f != 0 and abs(f) < 1e-3 else f"{f:.3g}" if abs(f) < 1e4 else f"{f:.0f}"
        return text, repr(f), True
    return str(x), None, False


def table_html(frame: pd.DataFrame, *, max_rows: int = MAX_TABLE_ROWS, total: int | None = None) -> str:
    """A sortable, escaped HTML table of at most ``max_rows`` rows, with a note if cut."""
    total = len(frame) if total is None else total
    if total == 0 or frame.empty:
        return '<p class="note">Nothing to show.</p>'
    shown = frame.head(max_rows)
    head = "".join(f"<th>{esc(c)}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for value in rec:
            text, key, numeric = fmt(value)
            attrs = (' class="num"' if numeric else "") + (f' data-v="{esc(key)}"' if key is not None else "")
            cells.append(f"<td{attrs}>{esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = f'<p class="note">Showing {len(shown)} of {total} rows.</p>' if total > len(shown) else ""
    return (
        f'<div class="tablebox"><table class="stats"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{note}"
    )


def section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{body}</section>'


def block(title: str, intro: str, body: str, anchor: str | None = None) -> str:
    ident = f' id="{esc(anchor)}"' if anchor else ""
    return f'<details open{ident}><summary>{esc(title)}</summary><p class="note">{esc(intro)}</p>{body}</details>'
