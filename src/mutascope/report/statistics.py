"""The report's statistics: the tables of :data:`~mutascope.analysis.registry.STATISTICS`,
recomputed from the site frame, and the section that shows them.

The report recomputes its statistics (so a report never shows stale tables)
with one bound that keeps a full-genome report quick: COPA's permutation
null, the costly statistic, runs on a dozen matrices (the most NSMs, and the
largest median effects for the effect's COPA), said in its block. The
super-weight tables are the exception: they need the super-weights file, so
they are read from the results file when ``mutascope analyze
--superweights`` stored them. Every block opens with the table's unit,
family and test in one line.
"""

from __future__ import annotations

import pandas as pd

from ..analysis.registry import STATISTICS, Context, compute_all
from .figures import top_matrices
from .payload import matrix_sort_key
from .tables import block, section, table_html

STORED = ("superweight_tiles", "superweight_summary")  # read from the file, never recomputed here
SHOW_ALL = 60  # tables this small are shown whole; larger ones show the rows below the FDR
MISSING = {
    "phenotypes": "This screen has no phenotypes yet: run `mutascope phenotype FILE` first.",
    "superweights": "Needs the super weights of the screened model: `mutascope analyze FILE --superweights SW`.",
    "probes": "Needs two or more probes.",
    "predictions": "Needs predictions: `mutascope predict` with the screen's options and `--out FILE`.",
}


def top_effect_matrices(frame: pd.DataFrame, n: int) -> list[tuple[int, str]]:
    """The ``n`` matrices with the largest median effect (ties in layer/matrix order)."""
    measured = frame[frame["effect"].notna()]
    if measured.empty:
        return []
    med = measured.groupby(["layer", "matrix"], as_index=False)["effect"].median()
    med["_key"] = med["matrix"].map(matrix_sort_key)
    med = med.sort_values(["effect", "layer", "_key"], ascending=[False, True, True])
    return [(int(r.layer), str(r.matrix)) for r in med.head(n).itertuples()]


def report_tables(
    frame: pd.DataFrame,
    *,
    alpha: float,
    n_perm: int,
    copa_matrices: int,
    stored: dict[str, pd.DataFrame] | None = None,
    probes: pd.DataFrame | None = None,
    predictions: pd.DataFrame | None = None,
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The tables the report shows, by the names ``mutascope analyze`` stores them under, and
    for each COPA table the scope it was computed on (in words)."""
    n_all = frame.groupby(["layer", "matrix"]).ngroups if len(frame) else 0
    nsm_top, effect_top = top_matrices(frame, copa_matrices), top_effect_matrices(frame, copa_matrices)
    scope = {
        "copa": "every matrix" if len(nsm_top) >= n_all else f"the {len(nsm_top)} matrices (of {n_all}) with most NSMs",
        "effect_copa": (
            "every matrix"
            if len(effect_top) >= n_all
            else f"the {len(effect_top)} matrices (of {n_all}) with the largest median effect"
        ),
    }
    scope["residual_copa"] = scope["effect_copa"]
    ctx = Context(
        frame=frame,
        alpha=alpha,
        n_perm=n_perm,
        probes=probes,
        predictions=predictions,
        scope={"copa": nsm_top, "effect_copa": effect_top, "residual_copa": effect_top},
    )
    tables = compute_all(ctx)
    for name in STORED:
        if stored and name in stored:
            tables[name] = stored[name]
    return tables, scope


def _shown(table: pd.DataFrame, alpha: float) -> tuple[pd.DataFrame, str]:
    """The rows a block shows, and a sentence saying which."""
    q = [c for c in table.columns if c == "q_value" or c.startswith("q_")]
    if len(table) <= SHOW_ALL or not q:
        return table, f"{len(table)} rows."
    hits = table[(table[q].astype(float) < alpha).any(axis=1)].sort_values(q[0])
    return hits, f"{len(hits)} of {len(table)} rows with q below {alpha} shown."


def statistics_section(
    frame: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    scope: dict[str, str],
    *,
    alpha: float,
    n_perm: int,
    effect: str,
) -> str:
    """The "Statistics" section: every table, in the registry's order, each with its description."""
    if frame.empty:
        return section("statistics", "Statistics", '<p class="note">No outcomes yet.</p>')
    blocks = [
        f'<p class="note">The effect size is {effect}; q-values are Benjamini-Hochberg within each table\'s '
        "family, and p_floor is the smallest p a test could give. Effect sizes are summed over a probe's WT "
        "output; the per-token column and the probe's new_tokens and wt_logprob put probes of different "
        "lengths side by side.</p>"
    ]
    if tables.get("effect_enrichment") is not None and tables["effect_enrichment"].empty:
        blocks.append(
            '<p class="note">This screen has no effect sizes (screened with the reference engine, or by '
            "a mutascope before they were recorded): the effect-size statistics are empty.</p>"
        )
    for stat in STATISTICS:
        table = tables.get(stat.name)
        if table is None:
            if stat.needs in MISSING and not stat.name.startswith("residual_"):  # residual: no baseline, no note
                blocks.append(block(stat.title, MISSING[stat.needs], "", anchor=stat.name.replace("_", "-")))
            continue
        shown, which = _shown(table, alpha)
        where = f" Computed on {scope[stat.name]}." if stat.name in scope else ""
        blocks.append(
            block(
                stat.title, f"{stat.describe()}.{where} {which}", table_html(shown), anchor=stat.name.replace("_", "-")
            )
        )
    return section("statistics", "Statistics", "".join(blocks))


__all__ = ["report_tables", "statistics_section", "top_effect_matrices"]
