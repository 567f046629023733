"""The phenotype tables of a results file (``phenotypes``, ``choice_scores``, ``phenotype_runs``),
read and written; what they mean and how they are computed is :mod:`mutascope.phenotype.store`.

The tables are declared in :mod:`.schema` (:data:`~.schema.PHENOTYPE_DDL`). They are
rebuilt whole by each ``mutascope phenotype``, in one transaction, from the measures
of each distinct output (an Arrow table joined back to the outcome rows here, in SQL,
so millions of outcome rows need no Python loop): a failure or an interruption leaves
the previous phenotypes, and a rerun replaces them, never duplicates.
"""

from __future__ import annotations

import time

import duckdb
import pyarrow as pa

from ..version import __version__
from .db import has_table, table_columns, transaction
from .schema import PHENOTYPE_DDL, PHENOTYPE_TABLES, UNGROUPED

PHENOTYPE_COLUMNS = ("similarity", "severity", "category", "first_word")  # what the site frame joins

_INSERT_CHOICE = f"""
INSERT INTO choice_scores
SELECT o.mutation_id, coalesce(p.probe_group, '{UNGROUPED}') AS g, count(*),
       string_agg(d.answer, '' ORDER BY p.position),
       string_agg(w.answer, '' ORDER BY p.position),
       count(*) FILTER (WHERE d.correct AND d.wt_correct),
       count(*) FILTER (WHERE d.correct AND NOT d.wt_correct),
       CAST(count(*) FILTER (WHERE d.correct AND d.wt_correct) AS VARCHAR) || '|' ||
       CAST(count(*) FILTER (WHERE d.correct AND NOT d.wt_correct) AS VARCHAR),
       count(*) FILTER (WHERE d.correct),
       bool_or(d.answer <> w.answer), bool_or(o.nsm)
FROM outcomes o JOIN probes p USING (probe_id)
JOIN _measured d ON d.probe_id = o.probe_id AND d.phenotype_id = o.phenotype_id
JOIN _measured w ON w.probe_id = o.probe_id AND w.phenotype_id = 0
WHERE p.kind = 'choice'
GROUP BY o.mutation_id, g
"""

_INSERT_PHENOTYPES = """
INSERT INTO phenotypes
SELECT o.mutation_id, o.probe_id, d.similarity, d.severity, d.edit_distance, d.category, d.first_word,
       d.answer, d.correct,
       CASE WHEN d.similarity IS NULL OR NOT $has_mmlu21 THEN NULL
            ELSE d.similarity <= $max_similarity AND coalesce(s.worst <= $max_score, false) END
FROM outcomes o
JOIN _measured d ON d.probe_id = o.probe_id AND d.phenotype_id = o.phenotype_id
LEFT JOIN (SELECT mutation_id, min(total) AS worst FROM choice_scores
           WHERE probe_group LIKE 'mmlu21:%' GROUP BY mutation_id) s USING (mutation_id)
"""

# the text NSMs that have phenotypes: what the summary's counts are over
_TEXT_NSM = (
    "FROM phenotypes f JOIN outcomes o USING (mutation_id, probe_id) "
    "JOIN probes p USING (probe_id) WHERE p.kind <> 'choice' AND o.nsm"
)


def has_phenotypes(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a results file's connection holds computed phenotypes."""
    return has_table(con, "phenotype_runs")


def phenotype_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The phenotype columns this file has (none before ``mutascope phenotype`` ran)."""
    if not has_table(con, "phenotypes"):
        return []
    have = table_columns(con, "phenotypes")
    return [c for c in PHENOTYPE_COLUMNS if c in have]


def distinct_outputs(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """Each probe's distinct outputs (phenotype ids), WT's (id 0) always among them: rows of
    ``(probe_id, phenotype_id, output_tokens, output_text, kind, answer, wt_tokens, wt_text)``."""
    return con.execute(
        "SELECT DISTINCT o.probe_id, o.phenotype_id, o.output_tokens, o.output_text, "
        "p.kind, p.answer, p.wt_tokens, p.wt_text "
        "FROM outcomes o JOIN probes p USING (probe_id) WHERE o.phenotype_id > 0 "
        "UNION ALL SELECT probe_id, 0, wt_tokens, wt_text, kind, answer, wt_tokens, wt_text FROM probes "
        "ORDER BY 1, 2"
    ).fetchall()


def probe_sets(con: duckdb.DuckDBPyConnection) -> tuple[bool, bool]:
    """Whether the screen has an MMLU21 choice set, and whether it has a text probe (malignancy
    needs both)."""
    has_mmlu21 = con.execute(
        "SELECT count(*) > 0 FROM probes WHERE kind = 'choice' AND probe_group LIKE 'mmlu21:%'"
    ).fetchall()[0][0]
    has_text = con.execute("SELECT count(*) > 0 FROM probes WHERE kind <> 'choice'").fetchall()[0][0]
    return bool(has_mmlu21), bool(has_text)


def replace_phenotypes(
    con: duckdb.DuckDBPyConnection,
    measured: pa.Table,
    *,
    has_mmlu21: bool,
    max_similarity: float,
    max_score: int,
    embedding_model: str,
    batch_size: int,
    n_distinct: int,
    n_embedded: int,
    start: float,
) -> None:
    """Drop and rebuild the three phenotype tables in one transaction, from ``measured`` (one row per
    distinct output: ``probe_id, phenotype_id`` and its measures, WT's being id 0).

    ``malignant`` is set where the screen has an MMLU21 set: a text output at most
    ``max_similarity`` from WT's while the mutant scores at most ``max_score`` on some MMLU21
    set. The ``phenotype_runs`` row records the run, its seconds counted from ``start``
    (``time.perf_counter()``) to the end of the writes.
    """
    con.register("_measured", measured)
    try:
        with transaction(con):
            for name in PHENOTYPE_TABLES:
                con.execute(f"DROP TABLE IF EXISTS {name}")
            con.execute(PHENOTYPE_DDL)
            con.execute(_INSERT_CHOICE)
            con.execute(
                _INSERT_PHENOTYPES,
                {"has_mmlu21": has_mmlu21, "max_similarity": max_similarity, "max_score": max_score},
            )
            n_outcomes = con.execute("SELECT count(*) FROM phenotypes").fetchall()[0][0]
            seconds = time.perf_counter() - start
            con.execute(
                "INSERT INTO phenotype_runs (embedding_model, batch_size, n_outcomes, n_distinct, n_embedded,"
                " mutascope_version, seconds) VALUES (?,?,?,?,?,?,?)",
                [embedding_model, batch_size, n_outcomes, n_distinct, n_embedded, __version__, seconds],
            )
    finally:
        con.unregister("_measured")


def phenotype_counts(con: duckdb.DuckDBPyConnection, *, malignant: bool) -> dict:
    """What the stored phenotypes cover, for the summary a run prints: ``n_outcomes`` (rows),
    over text NSMs ``n_nsm``, ``severity`` and ``categories`` (counts per band and category),
    ``choice_changed`` (per set, mutants with an answer changed), ``n_unfilled`` (NSMs without
    outputs yet) and ``n_malignant`` (malignant mutants; None unless ``malignant`` applies)."""
    counts = {
        "n_outcomes": con.execute("SELECT count(*) FROM phenotypes").fetchall()[0][0],
        "n_nsm": con.execute(f"SELECT count(*) {_TEXT_NSM}").fetchall()[0][0],
        "severity": dict(con.execute(f"SELECT f.severity, count(*) {_TEXT_NSM} GROUP BY 1 ORDER BY 1").fetchall()),
        "categories": dict(
            con.execute(f"SELECT f.category, count(*) {_TEXT_NSM} GROUP BY 1 ORDER BY 2 DESC, 1").fetchall()
        ),
        "choice_changed": dict(
            con.execute(
                "SELECT probe_group, count(*) FILTER (WHERE changed) FROM choice_scores GROUP BY 1 ORDER BY 1"
            ).fetchall()
        ),
        "n_unfilled": con.execute("SELECT count(*) FROM outcomes WHERE nsm AND output_tokens IS NULL").fetchall()[0][0],
        "n_malignant": None,
    }
    if malignant:
        counts["n_malignant"] = con.execute(
            "SELECT count(DISTINCT mutation_id) FROM phenotypes WHERE malignant"
        ).fetchall()[0][0]
    return counts


def mutant_phenotypes(con: duckdb.DuckDBPyConnection, mutation_id: int) -> dict[str, tuple]:
    """One mutant's stored ``(similarity, severity, malignant)`` by probe id (empty before
    ``mutascope phenotype`` ran)."""
    if not has_phenotypes(con):
        return {}
    return {
        pid: tuple(rest)
        for pid, *rest in con.execute(
            "SELECT probe_id, similarity, severity, malignant FROM phenotypes WHERE mutation_id = ?", [mutation_id]
        ).fetchall()
    }
