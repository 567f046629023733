"""The report's statistics: which tables it computes, and the section that shows them.

The report recomputes its statistics from the site frame (so a report never
shows stale tables), with two bounds that keep a full-genome report quick:
COPA's permutation null (the costly statistic) runs on a dozen matrices, and
fewer permutations than ``mutascope analyze`` uses. The super-weight table
is the one exception: it needs the super-weights file, so it is read from
the results file when ``mutascope analyze --superweights`` stored it.
"""

from __future__ import annotations

import pandas as pd

from ..analysis import bias, copa, overlap, recurrent_axes, saturation, severity_distribution, writer_groups
from ..analysis.run import both_axes
from ..errors import MutascopeError
from .figures import top_matrices
from .payload import matrix_sort_key
from .tables import block, section, table_html


def top_effect_matrices(frame: pd.DataFrame, n: int) -> list[tuple[int, str]]:
    """The ``n`` matrices with the largest median effect (ties in layer/matrix order)."""
    measured = frame[frame["effect"].notna()]
    if measured.empty:
        return []
    med = measured.groupby(["layer", "matrix"], as_index=False)["effect"].median()
    med["_key"] = med["matrix"].map(matrix_sort_key)
    med = med.sort_values(["effect", "layer", "_key"], ascending=[False, True, True])
    return [(int(r.layer), str(r.matrix)) for r in med.head(n).itertuples()]


def _only(frame: pd.DataFrame, matrices: list[tuple[int, str]]) -> pd.DataFrame:
    keys = pd.MultiIndex.from_tuples(matrices, names=["layer", "matrix"]) if matrices else None
    if keys is None:
        return frame.iloc[0:0]
    return frame[pd.MultiIndex.from_frame(frame[["layer", "matrix"]]).isin(keys)]


def report_tables(frame: pd.DataFrame, *, alpha: float, n_perm: int, copa_matrices: int,
                  superweight_tiles: pd.DataFrame | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """The tables the report shows, by the names ``mutascope analyze`` stores them under, and
    for each COPA table the scope it was computed on (in words)."""
    n_all = frame.groupby(["layer", "matrix"]).ngroups
    nsm_top = top_matrices(frame, copa_matrices)
    effect_top = top_effect_matrices(frame, copa_matrices)
    scope = {
        "copa": "every matrix" if len(nsm_top) >= n_all else f"the {len(nsm_top)} matrices (of {n_all}) with most NSMs",
        "effect_copa": ("every matrix" if len(effect_top) >= n_all
                        else f"the {len(effect_top)} matrices (of {n_all}) with the largest median effect"),
    }
    enr, effect_enr = both_axes(frame, alpha, "nsm"), both_axes(frame, alpha, "effect")
    tables = {
        "bias": bias(frame, alpha),
        "enrichment": enr,
        "recurrent_axes": recurrent_axes(enr),
        "copa": copa(_only(frame, nsm_top), n_perm=n_perm),
        "effect_bias": bias(frame, alpha, readout="effect"),
        "effect_enrichment": effect_enr,
        "effect_recurrent_axes": recurrent_axes(effect_enr),
        "effect_copa": copa(_only(frame, effect_top), n_perm=n_perm, readout="effect"),
        "saturation": saturation(frame),
    }
    if superweight_tiles is not None:
        tables["superweight_tiles"] = superweight_tiles
    return tables, scope


def _hits(table: pd.DataFrame, alpha: float, column: str = "q_value") -> pd.DataFrame:
    return table[table[column].astype(float) < alpha].sort_values(column) if len(table) else table


def statistics_section(frame: pd.DataFrame, tables: dict[str, pd.DataFrame], scope: dict[str, str], *,
                       alpha: float, n_perm: int, effect: str) -> str:
    """The "Statistics" section: NSM statistics, effect-size statistics, saturation, super weights, phenotypes."""
    if frame.empty:
        return section("statistics", "Statistics", '<p class="note">No outcomes yet.</p>')
    blocks = ['<h3>The NSM call (the paper\'s readout)</h3>']
    b = tables["bias"]
    called = b[b["bias"] != "none"].sort_values("q_value")
    blocks.append(block(
        "Max/min bias",
        f"Matrices whose NSMs come mostly from max or from min (two-sided binomial, BH q < {alpha}); "
        f"{len(called)} of {len(b)} probe x matrix pairs.",
        table_html(called, total=len(called))))
    enr = tables["enrichment"]
    hits = enr[enr["enriched"].astype(bool)].sort_values("q_value") if len(enr) else enr
    blocks.append(block(
        "Row and column enrichment",
        f"Tile rows/columns with more NSMs than their matrix's rate (one-sided binomial, BH q < {alpha} within "
        f"the matrix); {len(hits)} of {len(enr)} axes.",
        table_html(hits.drop(columns="enriched"), total=len(hits))))
    multi = frame["probe_id"].nunique() >= 2
    if multi:
        blocks.append(block("Recurrent axes", "Rows/columns enriched in at least two probes.",
                            table_html(tables["recurrent_axes"])))
    blocks.append(_copa_block(tables["copa"], "COPA (complementary max/min patterns)",
                              "the max-NSM and min-NSM rates", scope["copa"], alpha, n_perm))

    blocks.append(f'<h3 id="effect-statistics">The effect size ({effect})</h3>')
    effect_enr = tables["effect_enrichment"]
    if effect_enr.empty:
        blocks.append('<p class="note">This screen has no effect sizes (screened with the reference engine, or by '
                      "a mutascope before they were recorded): the effect-size statistics are empty.</p>")
    else:
        blocks.append(
            '<p class="note">Effect sizes span orders of magnitude and can be negative (a mutant can make the WT '
            "output more likely), so every test here is rank-based: no log transform, no normality, and the few "
            "largest effects cannot decide a result alone.</p>")
        eb = tables["effect_bias"]
        called = eb[eb["bias"] != "none"].sort_values("q_value")
        blocks.append(block(
            "Max/min bias of the effect",
            f"Max against min effect of the same tiles (Wilcoxon signed-rank, two-sided, BH q < {alpha} across the "
            f"matrices of a probe); {len(called)} of {len(eb)} probe x matrix pairs.",
            table_html(called, total=len(called)), anchor="effect-bias"))
        hits = effect_enr[effect_enr["enriched"].astype(bool)].sort_values("q_value")
        blocks.append(block(
            "Row and column enrichment of the effect",
            f"Tile rows/columns whose mutants have larger effects than the rest of the matrix (Mann-Whitney U, "
            f"one-sided, max and min pooled, BH q < {alpha} within the matrix); {len(hits)} of {len(effect_enr)} axes.",
            table_html(hits.drop(columns="enriched"), total=len(hits)), anchor="effect-enrichment"))
        if multi:
            blocks.append(block("Recurrent effect axes", "Rows/columns with enriched effects in at least two probes.",
                                table_html(tables["effect_recurrent_axes"])))
        blocks.append(_copa_block(tables["effect_copa"], "COPA of the effect",
                                  "the max and min effect ranks", scope["effect_copa"], alpha, n_perm,
                                  anchor="effect-copa"))
    sat = tables["saturation"]
    flagged = sat[sat["saturated"].astype(bool)] if len(sat) else sat
    blocks.append(block(
        "Saturation of the NSM call",
        f"Probe x matrix pairs whose max/min NSM rate is above 0.9 or below 0.1: there the NSM map is nearly "
        f"flat and the NSM statistics have little to find; use the effect colour mode and the effect-size tables. "
        f"{len(flagged)} of {len(sat)} pairs.",
        table_html(flagged, total=len(flagged)), anchor="saturation"))
    if "superweight_tiles" in tables:
        sw = tables["superweight_tiles"].sort_values(["effect_percentile"], ascending=False, na_position="last")
        blocks.append(block(
            "Super-weight tiles",
            "Axes that touch a super weight or a super-activation channel (from `mutascope analyze --superweights`), "
            "with their median effect and NSM rate ranked among the axes of their matrix (percentile 100 = the "
            "most sensitive).",
            table_html(sw), anchor="superweight-tiles"))
    if multi:
        blocks.append(block("Cross-probe overlap", "Jaccard index of NSM mutation sets.",
                            table_html(overlap(frame).sort_values("jaccard", ascending=False))))
    for title, intro, fn in (
        ("Writer groups", "NSMs grouped by their output's first word and category, with the most shared row/column.",
         lambda: writer_groups(frame, n_draws=999)),
        ("Severity", "NSMs per similarity band to the WT output.", lambda: severity_distribution(frame)),
    ):
        try:
            table = fn()
        except MutascopeError as exc:
            blocks.append(block(title, str(exc), ""))
            continue
        blocks.append(block(title, intro, table_html(table)))
    return section("statistics", "Statistics", "".join(blocks))


def _copa_block(cp: pd.DataFrame, title: str, what: str, scope: str, alpha: float, n_perm: int,
                anchor: str | None = None) -> str:
    if cp.empty:
        return block(title, "Needs max and min mutants of the same matrix.", table_html(cp), anchor=anchor)
    cp = cp.sort_values(["p_value", "copa"], na_position="last")
    n_sig = int((cp["q_value"] < alpha).sum())
    return block(
        title,
        f"Correlation across rows (columns) of {what}; p from {n_perm} within-matrix permutations (low = "
        f"complementary), BH across matrices, for {scope}. {n_sig} of {len(cp)} with q below {alpha}.",
        table_html(cp), anchor=anchor)
