"""One self-contained HTML report of a screen.

Why one file with everything inline (CSS, script, data, figures as data:
URIs, a Content-Security-Policy that forbids any fetch): reports are mailed,
archived next to results and opened on machines without network; a report
that pulls a CDN script breaks offline and leaks that someone looked at it.

Why a canvas drawn from compact data rather than an SVG or a table per
matrix: a full-genome screen has ~26k tiles per probe and kind in SmolLM2
(1.6M in a 7B model); one DOM node per tile makes the page take seconds to
lay out. The page draws only the selected matrix, from the per-tile
phenotype ids and effect sizes of :mod:`.payload`, in one of two readouts:
the paper's NSM classes, or the effect size on a log colour scale (the view
that still shows structure where the NSM call is saturated, as it is on
small models).
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import re
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import pandas as pd

from ..analysis import findings, nsm_counts, saturation_note
from ..analysis.frame import DEFAULT_EFFECT, probe_context, site_frame
from ..analysis.run import control_frames
from ..analysis.sentences import UNITS
from ..files.outputs import check_output_dir, check_output_file, save_figure, write_text
from ..store import open_results, read_zoom
from ..store.db import no_progress_bar
from .figures import CONTINUOUS_CMAP, TILE_CLASSES, figure_set, png_bytes
from .payload import MATRIX_ORDER, ProbeInfo, build_payload, probe_infos, to_script_json
from .statistics import STORED, report_tables, statistics_section
from .tables import esc, section, table_html
from .zoom import zoom_section

Progress = Callable[[int, int], None]
STAGES = 5  # read, statistics, figures, payload, write
# the colours of the effect mode that are not on the log scale (see payload.effect_payload)
EFFECT_COLOURS = {"nonpositive": "#F4A6B8", "unmeasured": "#DDDDDD"}


def _plan_line(plan: dict) -> str:
    """The stored plan spec in words: ``None`` (every layer, matrix, row or column) reads ``all``."""

    def shown(value) -> str:
        if value is None:
            return "all"
        if isinstance(value, (list, tuple)):
            return ",".join(map(str, value))
        return str(value)

    return (
        ", ".join(
            f"{k}={'x'.join(map(str, v)) if k == 'tile' and isinstance(v, (list, tuple)) else shown(v)}"
            for k, v in plan.items()
        )
        or "(not recorded)"
    )


def _asset(name: str) -> str:
    return resources.files("mutascope.report").joinpath("assets", name).read_text(encoding="utf-8")


_esc = esc


def _filled_line(frame: pd.DataFrame) -> str:
    """How many NSMs have their output stored (a calls-only screen has none until ``mutascope fill``)."""
    nsm = frame[frame["nsm"]] if len(frame) else frame
    n, done = len(nsm), int(nsm["filled"].sum()) if len(nsm) else 0
    more = "; run `mutascope fill` for more" if done < n else ""
    return f"{done:,} of {n:,}{more}"


def _findings_html(tables: dict[str, pd.DataFrame], alpha: float, effect: str) -> str:
    sentences = findings(tables, alpha, effect)
    note = saturation_note(tables.get("saturation"))
    body = (
        f'<ul id="findings">{"".join(f"<li>{_esc(x)}</li>" for x in sentences)}</ul>'
        if sentences
        else f'<p class="note" id="findings">No test survives the false discovery rate {alpha}.</p>'
    )
    if note:
        body += f'<p class="notice" id="saturation-summary">{_esc(note)}</p>'
    return f"<h3>Findings (BH q &lt; {_esc(alpha)})</h3>" + body


# -- summary ------------------------------------------------------------------
def _summary(results, infos: list[ProbeInfo], frame: pd.DataFrame, findings_html: str) -> str:
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
        ("plan", _plan_line(config.get("plan") or {})),
        ("shard", run["shard"]),
        ("mutants done", f"{n_done} of {n_mut}" + (" (partial screen)" if n_done < n_mut else "")),
        ("NSMs with outputs", _filled_line(frame)),
        ("config hash", run["config_hash"]),
        ("created", run["created_at"]),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items())),
    ]
    facts_html = "<table>" + "".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in facts) + "</table>"
    probe_rows = "".join(
        f"<tr><td>{_esc(i.probe_id)}</td><td>{_esc(i.kind)}</td><td>{_esc(i.decoding)}</td>"
        f'<td>{_esc(i.max_new_tokens)}</td><td><pre class="out">{_esc(i.prompt)}</pre></td>'
        f'<td><pre class="out">{_esc(i.wt)}</pre></td></tr>'
        for i in infos
    )
    probes_html = (
        "<table><thead><tr><th>probe</th><th>kind</th><th>decoding</th><th>new tokens</th><th>input</th>"
        f"<th>WT output</th></tr></thead><tbody>{probe_rows}</tbody></table>"
        '<p class="note">A multiple-choice set is one probe: its WT output is the answer of each question in order, '
        "and an NSM is any changed answer.</p>"
    )
    counts = nsm_counts(frame, by=("probe_id", "kind")) if len(frame) else pd.DataFrame()
    return section(
        "summary",
        "Run summary",
        facts_html
        + findings_html
        + "<h3>Probes</h3>"
        + probes_html
        + "<h3>NSM counts by probe and kind</h3>"
        + table_html(counts),
    )


def _figures(
    frame: pd.DataFrame,
    top_n: int,
    tables: dict[str, pd.DataFrame],
    alpha: float,
    figures_dir: Path | None = None,
    predictions: pd.DataFrame | None = None,
) -> str:
    parts = []
    for stem, caption, fig in figure_set(frame, top_n, tables, alpha, predictions):
        if figures_dir is not None:
            save_figure(fig, figures_dir / f"{stem}.png")
        data = base64.b64encode(png_bytes(fig)).decode("ascii")
        parts.append(
            f'<figure id="fig-{_esc(stem)}"><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>"
        )
    note = (
        f'<p class="note">The overview, the overlap and the {top_n} matrices with the most enriched axes '
        "(effect size where measured), each as a map and an enrichment profile, and the re-ordered gate with "
        "its order learnt on held-out data (the other probe, or the other half of the tiles): sorting a map "
        "by its own balance draws a gradient from pure noise. Where the file has predictions "
        "(`mutascope predict`), the predicted against the exact effect of every mutant, and how much of the "
        "exact top 1 % a screen finds in predicted, plan and random order. Every matrix is in the "
        "interactive maps above.</p>"
    )
    return section("figures", "Figures", note + ("".join(parts) or '<p class="note">No outcomes yet.</p>'))


def _cmap_lut(n: int = 33) -> list[str]:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    cm = colormaps[CONTINUOUS_CMAP]
    return [to_hex(cm(i / (n - 1))) for i in range(n)]


def check_report(
    results_path: str | Path,
    out_path: str | Path | None = None,
    *,
    figures_dir: str | Path | None = None,
    controls: Sequence[str | Path] = (),
) -> Path:
    """Everything ``mutascope report`` can refuse before any work, one line each: the HTML file
    (default: beside the results, ``.html``) and the figures directory may be written, and
    the results file and every control open. Returns the HTML file's path."""
    results_path = Path(results_path)
    target = Path(out_path) if out_path is not None else results_path.with_suffix(".html")
    check_output_file(target, inputs=[results_path], what="report")
    if figures_dir is not None:
        check_output_dir(figures_dir, inputs=[results_path], what="--figures directory")
    for path in [results_path, *controls]:
        open_results(path).close()  # one line if it is missing, foreign or in use
    return target


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
    figures_dir: str | Path | None = None,
    controls: Sequence[str | Path] = (),
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
            first, and largest median effect first for the effect's COPA);
            its permutation null is the costly statistic.
        figures_dir: also write the report's static figures there as PNG files.
        controls: control screens of the same model, probes and tiles whose kinds
            join the statistics (as ``mutascope analyze --control``).

    The effect size is ``logprob_drop`` (the default of ``mutascope
    analyze``); super-weight markers come from the
    ``analysis_superweight_tiles`` table when ``mutascope analyze
    --superweights`` has stored it.
    """
    results_path = Path(results_path)
    out = check_output_file(
        out_path if out_path is not None else results_path.with_suffix(".html"), inputs=[results_path], what="report"
    )
    step = 0

    def advance():
        nonlocal step
        step += 1
        if progress:
            progress(step, STAGES)

    with open_results(results_path) as results:
        no_progress_bar(results.con)  # library code never prints
        infos = probe_infos(results.con)
        frame = site_frame(results, DEFAULT_EFFECT)
        names = results.table_names()
        stored = {name: results.table(f"analysis_{name}") for name in STORED if f"analysis_{name}" in names}
        predicted = results.predictions
        advance()
        tables, scope = _statistics(
            results, frame, stored, controls, predicted, alpha=alpha, n_perm=n_perm, copa=copa_matrices
        )
        sections = {
            "SUMMARY": _summary(results, infos, frame, _findings_html(tables, alpha, DEFAULT_EFFECT)),
            "STATISTICS": statistics_section(frame, tables, scope, alpha=alpha, n_perm=n_perm, effect=DEFAULT_EFFECT),
        }
        advance()
        if figures_dir is not None:
            Path(figures_dir).mkdir(parents=True, exist_ok=True)
        sections["FIGURES"] = _figures(
            frame, top_n, tables, alpha, Path(figures_dir) if figures_dir is not None else None, predicted
        )
        advance()
        payload = _payload(results, infos, frame, stored.get("superweight_tiles"), max_texts, max_chars)
        model = results.runs.iloc[0]["model_id"]
        sections["ZOOM"] = zoom_section(read_zoom(results.con))
        advance()
    write_text(out, _page(model, results_path, sections, payload))
    advance()
    return out


def _statistics(
    results,
    frame: pd.DataFrame,
    stored: dict,
    controls,
    predicted: pd.DataFrame | None,
    *,
    alpha: float,
    n_perm: int,
    copa: int,
) -> tuple[dict[str, pd.DataFrame], dict]:
    """The report's statistics tables, computed or read where ``analyze`` stored them, with the
    controls' kinds joined to the screen's frame (a control adds kinds, never sites)."""
    with_controls = (
        pd.concat([frame, *control_frames(results, controls, DEFAULT_EFFECT, frame)], ignore_index=True)
        if controls
        else frame
    )
    return report_tables(
        with_controls,
        alpha=alpha,
        n_perm=n_perm,
        copa_matrices=copa,
        stored=stored,
        probes=probe_context(results),
        predictions=predicted,
    )


def _payload(results, infos, frame: pd.DataFrame, marks, max_texts: int, max_chars: int) -> dict:
    """The interactive maps' data (read by report.js), with what the page needs to draw them: the
    effect's name and unit, the colours, the tile classes and the matrices in canonical order."""
    payload = build_payload(results.con, infos, max_texts=max_texts, max_chars=max_chars, frame=frame, marks=marks)
    payload["file"] = str(results.path)
    payload["effect_name"] = DEFAULT_EFFECT
    payload["effect_unit"] = UNITS[DEFAULT_EFFECT]
    payload["effect_colours"] = EFFECT_COLOURS
    payload["classes"] = [list(c) for c in TILE_CLASSES]
    payload["cmap"] = _cmap_lut()
    payload["matrix_order"] = list(MATRIX_ORDER) + sorted(
        {m["matrix"] for m in payload["matrices"]} - set(MATRIX_ORDER)
    )
    return payload


def _page(model: str, results_path: Path, sections: dict[str, str], payload: dict) -> str:
    """The one HTML file: the template's fields filled in a single pass, so text inserted (probe
    prompts, outputs) is never scanned for fields."""
    title = f"mutascope report: {model}"
    subtitle = f"{results_path.name} · written {_dt.datetime.now().isoformat(timespec='seconds')}"
    values = {
        "TITLE": _esc(title),
        "SUBTITLE": _esc(subtitle),
        "CSS": _asset("report.css"),
        "JS": _asset("report.js"),
        **sections,
        "ZOOMNAV": '<a href="#zoom">Zoomed tiles</a>' if sections["ZOOM"] else "",
        "DATA": to_script_json(payload),
    }
    return re.sub(r"@@([A-Z]+)@@", lambda m: values[m.group(1)], _asset("template.html"))
