"""One self-contained HTML report of a screen.

Why one file with everything inline (CSS, script, data, figures as data:
URIs, a Content-Security-Policy that forbids any fetch): reports are mailed,
archived next to results and opened on machines without network; a report
that pulls a CDN script breaks offline and leaks that someone looked at it.

Why a canvas drawn from compact data rather than an SVG or a table per
matrix: a full-genome screen has ~26k tiles per probe and kind in SmolLM2
(1.6M in a 7B model); one DOM node per tile makes the page take seconds to
lay out. The page draws only the selected matrix, from the per-tile
phenotype ids of :mod:`.payload`.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..analysis import (
    bias,
    copa,
    enrichment,
    nsm_counts,
    overlap,
    recurrent_axes,
    severity_distribution,
    writer_groups,
)
from ..errors import MutascopeError
from ..outfiles import check_output_file, write_text
from ..store import open_results
from .figures import CONTINUOUS_CMAP, TILE_CLASSES, figure_set, png_bytes, top_matrices
from ..analysis.frame import site_frame
from .payload import MATRIX_ORDER, ProbeInfo, build_payload, probe_infos, to_script_json

Progress = Callable[[int, int], None]
STAGES = 5  # read, statistics, figures, payload, write
MAX_TABLE_ROWS = 200  # per statistics table; the full tables are one `mutascope` analysis call away


def _asset(name: str) -> str:
    return resources.files("mutascope.report").joinpath("assets", name).read_text(encoding="utf-8")


def _esc(x) -> str:
    return html.escape("" if x is None else str(x), quote=True)


def _fmt(x) -> tuple[str, str | None, bool]:
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
    head = "".join(f"<th>{_esc(c)}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for value in rec:
            text, key, numeric = _fmt(value)
            attrs = (' class="num"' if numeric else "") + (f' data-v="{_esc(key)}"' if key is not None else "")
            cells.append(f"<td{attrs}>{_esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    note = f'<p class="note">Showing {len(shown)} of {total} rows.</p>' if total > len(shown) else ""
    return (f'<div class="tablebox"><table class="stats"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>{note}')


def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_esc(title)}</h2>{body}</section>'


def _block(title: str, intro: str, body: str) -> str:
    return f"<details open><summary>{_esc(title)}</summary><p class=\"note\">{_esc(intro)}</p>{body}</details>"


# -- summary ------------------------------------------------------------------
def _summary(results, infos: list[ProbeInfo], frame: pd.DataFrame) -> str:
    run = results.runs.iloc[0]
    config = results.config
    n_done = results.query("SELECT count(DISTINCT mutation_id) AS n FROM outcomes")["n"].iloc[0]
    n_mut = int(run["n_mutations"])
    versions = json.loads(run["versions"]) if isinstance(run["versions"], str) else {}
    facts = [
        ("model", run["model_id"]),
        ("model hash", run["model_hash"]),
        ("dtype / device", f"{run['dtype']} / {run['device']}"),
        ("decoding", run["decoding"]),
        ("tile", f"{run['tile_h']} x {run['tile_w']}"),
        ("plan", ", ".join(f"{k}={v}" for k, v in (config.get("plan") or {}).items()) or "(not recorded)"),
        ("shard", run["shard"]),
        ("mutants done", f"{n_done} of {n_mut}" + (" (partial screen)" if n_done < n_mut else "")),
        ("config hash", run["config_hash"]),
        ("created", run["created_at"]),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]
    facts_html = "<table>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts) + "</table>"
    probe_rows = "".join(
        f"<tr><td>{_esc(i.probe_id)}</td><td>{_esc(i.kind)}</td><td>{_esc(i.decoding)}</td>"
        f"<td>{_esc(i.max_new_tokens)}</td><td><pre class=\"out\">{_esc(i.prompt)}</pre></td>"
        f"<td><pre class=\"out\">{_esc(i.wt)}</pre></td></tr>"
        for i in infos
    )
    probes_html = (
        "<table><thead><tr><th>probe</th><th>kind</th><th>decoding</th><th>new tokens</th><th>input</th>"
        f"<th>WT output</th></tr></thead><tbody>{probe_rows}</tbody></table>"
        '<p class="note">A multiple-choice set is one probe: its WT output is the answer of each question in order, '
        "and an NSM is any changed answer.</p>"
    )
    counts = nsm_counts(frame, by=("probe_id", "kind")) if len(frame) else pd.DataFrame()
    return _section(
        "summary",
        "Run summary",
        facts_html + "<h3>Probes</h3>" + probes_html + "<h3>NSM counts by probe and kind</h3>" + table_html(counts),
    )


# -- statistics ---------------------------------------------------------------
def _statistics(frame: pd.DataFrame, *, alpha: float, n_perm: int, copa_matrices: int) -> str:
    blocks = []
    if frame.empty:
        return _section("statistics", "Statistics", '<p class="note">No outcomes yet.</p>')
    b = bias(frame, alpha=alpha)
    called = b[b["bias"] != "none"].sort_values("q_value")
    blocks.append(_block(
        "Max/min bias",
        f"Matrices whose NSMs come mostly from max or from min (two-sided binomial, BH q < {alpha}); "
        f"{len(called)} of {len(b)} probe x matrix pairs.",
        table_html(called, total=len(called)),
    ))
    enr = pd.concat([enrichment(frame, "row", alpha), enrichment(frame, "col", alpha)], ignore_index=True)
    hits = enr[enr["enriched"]].sort_values("q_value")
    blocks.append(_block(
        "Row and column enrichment",
        f"Tile rows/columns with more NSMs than their matrix's rate (one-sided binomial, BH q < {alpha} within "
        f"the matrix); {len(hits)} of {len(enr)} axes.",
        table_html(hits.drop(columns="enriched"), total=len(hits)),
    ))
    if frame["probe_id"].nunique() >= 2:
        rec = recurrent_axes(enr, min_probes=2)
        blocks.append(_block("Recurrent axes", "Rows/columns enriched in at least two probes.", table_html(rec)))
    # COPA's permutation null costs ~0.1 s per matrix and probe: bounded to the matrices with most NSMs
    chosen = top_matrices(frame, copa_matrices)
    keys = pd.MultiIndex.from_tuples(chosen, names=["layer", "matrix"])
    in_top = pd.MultiIndex.from_frame(frame[["layer", "matrix"]]).isin(keys)
    cp = copa(frame[in_top], n_perm=n_perm)
    n_all = frame.groupby(["layer", "matrix"]).ngroups
    scope = "every matrix" if len(chosen) >= n_all else f"the {len(chosen)} matrices (of {n_all}) with most NSMs"
    if len(cp):
        cp = cp.sort_values(["p_value", "copa"], na_position="last")
        n_sig = int((cp["p_value"] < alpha).sum())
        blocks.append(_block(
            "COPA (complementary max/min patterns)",
            f"Correlation across rows (columns) of the max-NSM and min-NSM rates; p from {n_perm} within-matrix "
            f"permutations (low = complementary), for {scope}. {n_sig} of {len(cp)} below {alpha}.",
            table_html(cp),
        ))
    if frame["probe_id"].nunique() >= 2:
        blocks.append(_block("Cross-probe overlap", "Jaccard index of NSM mutation sets.",
                             table_html(overlap(frame).sort_values("jaccard", ascending=False))))
    for title, intro, fn in (
        ("Writer groups", "NSMs grouped by their output's first word and category, with the most shared row/column.",
         lambda: writer_groups(frame, n_draws=999)),
        ("Severity", "NSMs per similarity band to the WT output.", lambda: severity_distribution(frame)),
    ):
        try:
            table = fn()
        except MutascopeError as exc:
            blocks.append(_block(title, str(exc), ""))
            continue
        blocks.append(_block(title, intro, table_html(table)))
    return _section("statistics", "Statistics", "".join(blocks))


def _figures(frame: pd.DataFrame, top_n: int) -> str:
    parts = []
    for stem, caption, fig in figure_set(frame, top_n):
        data = base64.b64encode(png_bytes(fig)).decode("ascii")
        parts.append(
            f'<figure id="fig-{_esc(stem)}"><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )
    note = (f'<p class="note">The overview, the overlap and the {top_n} matrices with most NSMs; '
            "every matrix is in the interactive maps above.</p>")
    return _section("figures", "Figures", note + ("".join(parts) or '<p class="note">No outcomes yet.</p>'))


def _cmap_lut(n: int = 33) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cm = colormaps[CONTINUOUS_CMAP]
    return [to_hex(cm(i / (n - 1))) for i in range(n)]


def write_report(
    results_path: str | Path,
    out_path: str | Path | None = None,
    *,
    progress: Progress | None = None,
    top_n: int = 6,
    max_texts: int = 2000,
    max_chars: int = 600,
    alpha: float = 0.05,
    n_perm: int = 199,
    copa_matrices: int = 12,
) -> Path:
    """Write the screen's report as one offline HTML file; returns its path.

    Args:
        results_path: the screen's DuckDB results file (read only).
        out_path: where to write; default: beside the results, ``.html``.
        progress: ``progress(done, total)`` after each of the five stages.
        top_n: matrices (most NSMs) that get static map and enrichment figures.
        max_texts: distinct outputs kept per probe (most frequent first); the
            rest show as "not embedded" so huge sampled screens stay small.
        max_chars: each kept output is cut to this many characters.
        alpha: the q/p threshold used in the statistics tables and figures.
        n_perm: permutations of the COPA null (fewer than the analysis
            default, to keep full-genome reports quick).
        copa_matrices: COPA is computed for this many matrices (most NSMs
            first); its permutation null is the costly statistic.
    """
    results_path = Path(results_path)
    out = check_output_file(out_path if out_path is not None else results_path.with_suffix(".html"),
                            inputs=[results_path], what="report")
    step = 0

    def advance():
        nonlocal step
        step += 1
        if progress:
            progress(step, STAGES)

    with open_results(results_path) as results:
        results.con.execute("SET enable_progress_bar = false")  # library code never prints
        infos = probe_infos(results.con)
        frame = site_frame(results)
        advance()
        summary = _summary(results, infos, frame)
        statistics = _statistics(frame, alpha=alpha, n_perm=n_perm, copa_matrices=copa_matrices)
        advance()
        figures = _figures(frame, top_n)
        advance()
        payload = build_payload(results.con, infos, max_texts=max_texts, max_chars=max_chars)
        payload["classes"] = [list(c) for c in TILE_CLASSES]
        payload["cmap"] = _cmap_lut()
        payload["matrix_order"] = list(MATRIX_ORDER) + sorted(
            {m["matrix"] for m in payload["matrices"]} - set(MATRIX_ORDER))
        model = results.runs.iloc[0]["model_id"]
        advance()
    title = f"mutascope report: {model}"
    subtitle = f"{results_path.name} · written {_dt.datetime.now().isoformat(timespec='seconds')}"
    values = {
        "TITLE": _esc(title),
        "SUBTITLE": _esc(subtitle),
        "CSS": _asset("report.css"),
        "JS": _asset("report.js"),
        "SUMMARY": summary,
        "STATISTICS": statistics,
        "FIGURES": figures,
        "DATA": to_script_json(payload),
    }
    # one pass over the template only: text inserted (probe prompts, outputs) is never scanned for fields
    page = re.sub(r"@@([A-Z]+)@@", lambda m: values[m.group(1)], _asset("template.html"))
    write_text(out, page)
    advance()
    return out
