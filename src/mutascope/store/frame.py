"""The rows of the site frame (:mod:`mutascope.analysis.frame`), read from a results file in SQL.

A full-genome screen has millions of outcome rows and no analysis needs their
texts, so the frame is built here without output texts or tokens: one query
for text probes (one row per mutation and probe) and one for multiple-choice
sets (one row per mutation and set: NSM if any answer changed, the effect
summed over the questions, null unless every question has one, filled when
every question is). Files of older schemas lack some columns: an effect a
file predates reads as null, and ``filled`` is ``output_tokens IS NOT NULL``,
which means the same in every version.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from .db import table_columns
from .phenotypes import phenotype_columns
from .schema import UNGROUPED


def effect_sql(con: duckdb.DuckDBPyConnection, column: str) -> str:
    """SQL for the effect-size ``column`` of outcome ``o`` (NULL in files that predate it); the
    column must be one of :data:`~.schema.EFFECT_COLUMNS` (the caller checks the user's choice)."""
    return f"o.{column}" if column in table_columns(con, "outcomes") else "CAST(NULL AS DOUBLE)"


def site_rows(con: duckdb.DuckDBPyConnection, effect: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The site frame's rows of text probes and of multiple-choice sets (module docstring), each
    in plan order: ``probe_id, layer, matrix, row, col, kind, value, mutation_id, nsm, effect,
    effect_per_token, filled`` and, for text probes, the phenotype columns the file has."""
    eff = effect_sql(con, effect)
    per_token = effect_sql(con, "logprob_drop_per_token")
    summed = effect_sql(con, "logprob_drop")
    ph = phenotype_columns(con)
    ph_select = "".join(f", f.{c}" for c in ph)
    ph_join = "LEFT JOIN phenotypes f ON f.mutation_id = o.mutation_id AND f.probe_id = o.probe_id" if ph else ""
    text = con.execute(
        f"SELECT o.probe_id, m.layer, m.matrix, m.row, m.col, m.kind, m.value, o.mutation_id, o.nsm, "
        f"{eff} AS effect, {per_token} AS effect_per_token, o.output_tokens IS NOT NULL AS filled{ph_select} "
        f"FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) {ph_join} "
        "WHERE p.kind <> 'choice' ORDER BY o.mutation_id, p.position"
    ).df()
    sets = con.execute(
        f"SELECT coalesce(p.probe_group, '{UNGROUPED}') AS probe_id, m.layer, m.matrix, m.row, m.col, m.kind, "
        f"m.value, o.mutation_id, bool_or(o.nsm) AS nsm, "
        f"CASE WHEN count({eff}) = count(*) THEN sum({eff}) END AS effect, "
        f"CASE WHEN count({per_token}) = count(*) THEN sum({summed}) / sum(len(p.wt_tokens)) END "
        "AS effect_per_token, "
        "bool_and(o.output_tokens IS NOT NULL) AS filled "
        "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
        "WHERE p.kind = 'choice' GROUP BY ALL ORDER BY o.mutation_id, probe_id"
    ).df()
    return text, sets


def probe_context(results) -> pd.DataFrame:
    """Per probe of the site frame (a multiple-choice set as one): the length of its WT
    output (``new_tokens``, summed over a set's questions) and the WT output's own
    log-likelihood under the unmutated model (``wt_logprob``; null in files written
    before it was recorded). Effect sizes of probes with different lengths or
    likelihoods are not on one scale: the tables carry these beside their effects."""
    con = getattr(results, "con", results)
    wt = "p.wt_logprob" if "wt_logprob" in table_columns(con, "probes") else "CAST(NULL AS DOUBLE)"
    return (
        con.execute(
            f"SELECT CASE WHEN p.kind = 'choice' THEN coalesce(p.probe_group, '{UNGROUPED}') ELSE p.probe_id END "
            f"AS probe_id, sum(len(p.wt_tokens)) AS new_tokens, "
            f"CASE WHEN count({wt}) = count(*) THEN sum({wt}) END AS wt_logprob, min(p.position) AS _pos "
            "FROM probes p GROUP BY 1 ORDER BY _pos"
        )
        .df()
        .drop(columns="_pos")
    )
