"""What the HTML report reads from a results file, in SQL, lean: the probes as the report
shows them, each outcome's phenotype id by site, each matrix's extent, and the texts and
measures of the distinct outputs it keeps (:mod:`mutascope.report.payload` encodes them).

A full-genome screen has millions of outcome rows but each probe's *distinct* outputs
are what the page shows, so texts are read per phenotype id, never per outcome.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from .phenotypes import phenotype_columns
from .schema import UNGROUPED


def report_probes(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Every probe in screen order: ``(probe_id, kind, text, wt_text, decoding, max_new_tokens,
    probe_group, answer)``."""
    return con.execute(
        "SELECT probe_id, kind, text, wt_text, decoding, max_new_tokens, probe_group, answer "
        "FROM probes ORDER BY position"
    ).fetchall()


def text_outcomes(con: duckdb.DuckDBPyConnection, unfilled: int) -> pd.DataFrame:
    """One row per (mutation, text probe): ``probe_id, mutation_id, layer, matrix, row, col, kind,
    ph``, the phenotype id (0: silent; -1: an NSM without one; ``unfilled``: an NSM whose output
    is not stored, a calls-only screen)."""
    return con.execute(
        "SELECT o.probe_id, o.mutation_id, m.layer, m.matrix, m.row, m.col, m.kind, "
        f"CASE WHEN o.output_tokens IS NULL AND o.nsm THEN {int(unfilled)} "
        "ELSE coalesce(o.phenotype_id, CASE WHEN o.nsm THEN -1 ELSE 0 END) END AS ph "
        "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
        "WHERE p.kind <> 'choice'"
    ).df()


def choice_answers(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per (mutation, multiple-choice set): ``probe_id`` (the set), ``mutation_id``, the
    site and kind, ``answers`` (each question's stripped answer in screen order, spaces as ``_``,
    an empty one as ``∅``, joined by spaces) and ``unfilled`` (some question's output not stored)."""
    return con.execute(
        f"SELECT coalesce(p.probe_group, '{UNGROUPED}') AS probe_id, o.mutation_id, m.layer, m.matrix, "
        "m.row, m.col, m.kind, "
        "string_agg(CASE WHEN trim(coalesce(o.output_text, '')) = '' THEN '∅' "
        "ELSE replace(trim(o.output_text), ' ', '_') END, ' ' ORDER BY p.position) AS answers, "
        "bool_or(o.nsm AND o.output_tokens IS NULL) AS unfilled "
        "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
        "WHERE p.kind = 'choice' GROUP BY ALL"
    ).df()


def matrix_extents(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per mutated (layer, matrix): the extent of its mutated tiles (``nrows``, ``ncols``) and
    of their elements (``height``, ``width``)."""
    return con.execute(
        "SELECT layer, matrix, max(row) + 1 AS nrows, max(col) + 1 AS ncols, "
        "max(r0 + height) AS height, max(c0 + width) AS width FROM mutations GROUP BY layer, matrix"
    ).df()


def screened_kinds(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The kinds the screen has (unordered)."""
    return con.execute("SELECT DISTINCT kind FROM mutations").df()["kind"].tolist()


def output_measures(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per (probe, phenotype id): divergence and, when present, similarity, category, severity."""
    cols = [c for c in phenotype_columns(con) if c in ("similarity", "category", "severity")]
    sel = "".join(f", any_value(f.{c}) AS {c}" for c in cols)
    join = "LEFT JOIN phenotypes f ON f.mutation_id = o.mutation_id AND f.probe_id = o.probe_id" if cols else ""
    return con.execute(
        f"SELECT o.probe_id, o.phenotype_id AS ph, min(o.divergence) AS divergence{sel} "
        f"FROM outcomes o {join} WHERE o.phenotype_id > 0 GROUP BY o.probe_id, o.phenotype_id"
    ).df()


def output_texts(con: duckdb.DuckDBPyConnection, probe_id: str, phenotype_ids: list[int]) -> list[tuple]:
    """``(phenotype_id, text)`` of the given distinct outputs of one probe."""
    return con.execute(
        "SELECT phenotype_id, any_value(output_text) FROM outcomes "
        "WHERE probe_id = ? AND phenotype_id IN (SELECT unnest(?)) GROUP BY phenotype_id",
        [probe_id, phenotype_ids],
    ).fetchall()
