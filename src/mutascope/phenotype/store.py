"""Phenotypes of an existing screen, computed once and kept in its results file.

Three tables are added beside the screen's own (``outcomes`` is left as the
engine wrote it):

* ``phenotypes``     one row per (mutation_id, probe_id), like ``outcomes``:
                     similarity to WT and its severity band (text probes),
                     token edit distance, category, first word, the answer
                     letter and whether it is correct (choice probes), and
                     ``malignant`` (text probes of a screen with an MMLU21 set);
* ``choice_scores``  one row per (mutation_id, probe_group) of choice probes:
                     answers, ``a|b`` score, total, whether any answer changed;
* ``phenotype_runs`` one row: the embedding model and when it ran.

Why separate tables rather than new columns on ``outcomes``: a screen can be
resumed after it was phenotyped, and the store appends outcome rows
positionally, so extra columns there would break resuming; ``outcomes`` is
the measurement and stays byte-identical (resume and equality checks rely on
it), while phenotypes are an analysis that depends on a chosen embedding
model and can be thrown away and rebuilt. Recomputing drops and recreates the
three tables in one transaction: a failure leaves the previous phenotypes,
and a rerun replaces them, never duplicates (both primary keys enforce it).

Everything costly is computed per *distinct* output (the screen's
``phenotype_id`` already numbers distinct outputs per probe) and joined back
to the outcome rows in SQL, so millions of outcome rows need no Python loop.
If the screen is resumed afterwards, new outcomes have no phenotype rows
until this is rerun (:attr:`PhenotypeSummary.n_outcomes` says what was covered).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from ..probes.mmlu import answer_letter
from ..store import connect, open_results
from ..version import __version__
from .categories import categorize, first_word
from .choice import MALIGNANT_MAX_SCORE, MALIGNANT_MAX_SIMILARITY, NO_ANSWER
from .similarity import EmbeddingCache, as_embedder, severity_band, token_edit_distance

__all__ = ["PHENOTYPE_TABLES", "PhenotypeSummary", "has_phenotypes", "phenotype_results"]

PHENOTYPE_TABLES = ("phenotypes", "choice_scores", "phenotype_runs")
UNGROUPED = "choice"  # the group of choice probes that name none

_DDL = """
CREATE TABLE phenotypes (
    mutation_id INTEGER, probe_id VARCHAR,
    similarity DOUBLE, severity VARCHAR, edit_distance INTEGER,
    category VARCHAR, first_word VARCHAR,
    answer VARCHAR, correct BOOLEAN, malignant BOOLEAN,
    PRIMARY KEY (mutation_id, probe_id)
);
CREATE TABLE choice_scores (
    mutation_id INTEGER, probe_group VARCHAR, n_questions INTEGER,
    answers VARCHAR, wt_answers VARCHAR, correct_right INTEGER, correct_wrong INTEGER,
    score VARCHAR, total INTEGER, changed BOOLEAN, nsm BOOLEAN,
    PRIMARY KEY (mutation_id, probe_group)
);
CREATE TABLE phenotype_runs (
    embedding_model VARCHAR, batch_size INTEGER, n_outcomes INTEGER, n_distinct INTEGER,
    n_embedded INTEGER, mutascope_version VARCHAR, seconds DOUBLE,
    computed_at TIMESTAMP DEFAULT current_timestamp
);
"""

Progress = Callable[[int, int], None]


@dataclass
class PhenotypeSummary:
    """What :func:`phenotype_results` computed (NSM counts are over text probes)."""

    path: Path
    n_outcomes: int
    n_nsm: int
    n_distinct: int  # distinct (probe, output) pairs measured
    n_embedded: int  # texts that reached the embedder (each distinct text once)
    n_embed_calls: int  # batches sent to the embedder
    severity: dict[str, int] = field(default_factory=dict)  # text NSMs per severity band
    categories: dict[str, int] = field(default_factory=dict)  # text NSMs per category
    choice_changed: dict[str, int] = field(default_factory=dict)  # group -> mutants with an answer changed
    n_malignant: int | None = None  # None: the screen lacks a text probe or an MMLU21 set
    n_unfilled: int = 0  # NSMs of a calls-only screen without outputs yet (not phenotyped until filled)
    embedding_model: str = ""
    seconds: float = 0.0


def has_phenotypes(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a results file's connection holds computed phenotypes."""
    return (
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'phenotype_runs'").fetchall()[0][
            0
        ]
        > 0
    )


def _distinct_outputs(con) -> list[tuple]:
    """Each probe's distinct outputs (phenotype ids), WT's (id 0) always among them."""
    return con.execute(
        "SELECT DISTINCT o.probe_id, o.phenotype_id, o.output_tokens, o.output_text, "
        "p.kind, p.answer, p.wt_tokens, p.wt_text "
        "FROM outcomes o JOIN probes p USING (probe_id) WHERE o.phenotype_id > 0 "
        "UNION ALL SELECT probe_id, 0, wt_tokens, wt_text, kind, answer, wt_tokens, wt_text FROM probes "
        "ORDER BY 1, 2"
    ).fetchall()


def _measure(rows: list[tuple], cache: EmbeddingCache, progress: Progress | None) -> pa.Table:
    """Measures of each distinct output: embeddings only for text probes' changed texts."""
    texts = []
    for _pid, _ph, _tokens, text, kind, _answer, _wt_tokens, wt_text in rows:
        if kind != "choice" and text != wt_text:
            texts += [wt_text, text]
    cache.add(texts, progress)
    cols: dict[str, list] = {
        k: []
        for k in (
            "probe_id",
            "phenotype_id",
            "similarity",
            "severity",
            "edit_distance",
            "category",
            "first_word",
            "answer",
            "correct",
            "wt_correct",
        )
    }
    for pid, ph, tokens, text, kind, answer, wt_tokens, wt_text in rows:
        cols["probe_id"].append(pid)
        cols["phenotype_id"].append(ph)
        cols["edit_distance"].append(token_edit_distance(tokens, wt_tokens))
        cols["category"].append(categorize(text))
        cols["first_word"].append(first_word(text))
        if kind == "choice":
            letter = answer_letter(text) or NO_ANSWER
            cols["similarity"].append(None)
            cols["severity"].append(None)
            cols["answer"].append(letter)
            cols["correct"].append(letter == answer)
            cols["wt_correct"].append(answer_letter(wt_text) == answer)
        else:
            sim = cache.similarity(text, wt_text)
            cols["similarity"].append(sim)
            cols["severity"].append(severity_band(sim))
            cols["answer"].append(None)
            cols["correct"].append(None)
            cols["wt_correct"].append(None)
    return pa.table(
        {
            "probe_id": pa.array(cols["probe_id"], pa.string()),
            "phenotype_id": pa.array(cols["phenotype_id"], pa.int32()),
            "similarity": pa.array(cols["similarity"], pa.float64()),
            "severity": pa.array(cols["severity"], pa.string()),
            "edit_distance": pa.array(cols["edit_distance"], pa.int32()),
            "category": pa.array(cols["category"], pa.string()),
            "first_word": pa.array(cols["first_word"], pa.string()),
            "answer": pa.array(cols["answer"], pa.string()),
            "correct": pa.array(cols["correct"], pa.bool_()),
            "wt_correct": pa.array(cols["wt_correct"], pa.bool_()),
        }
    )


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

_INSERT_PHENOTYPES = f"""
INSERT INTO phenotypes
SELECT o.mutation_id, o.probe_id, d.similarity, d.severity, d.edit_distance, d.category, d.first_word,
       d.answer, d.correct,
       CASE WHEN d.similarity IS NULL OR NOT $has_mmlu21 THEN NULL
            ELSE d.similarity <= {MALIGNANT_MAX_SIMILARITY} AND coalesce(s.worst <= {MALIGNANT_MAX_SCORE}, false) END
FROM outcomes o
JOIN _measured d ON d.probe_id = o.probe_id AND d.phenotype_id = o.phenotype_id
LEFT JOIN (SELECT mutation_id, min(total) AS worst FROM choice_scores
           WHERE probe_group LIKE 'mmlu21:%' GROUP BY mutation_id) s USING (mutation_id)
"""


class _NoEmbedder:
    """Stands in when nothing needs embedding (every text output equals WT's)."""

    name = "(none needed)"

    def __call__(self, texts):
        raise AssertionError("no text should need embedding")


def _connect_write(path: Path) -> duckdb.DuckDBPyConnection:
    open_results(path).close()  # one-line errors for a missing, foreign or locked file
    return connect(path)


def phenotype_results(
    path: str | os.PathLike,
    *,
    embedder=None,
    batch_size: int = 64,
    progress: Progress | None = None,
) -> PhenotypeSummary:
    """(Re)compute the phenotypes of a finished or partial screen, without rerunning it.

    Args:
        path: the screen's DuckDB results file (written in place).
        embedder: a :class:`~mutascope.phenotype.similarity.TextEmbedder`, a
            sentence-transformers model, or None for all-MiniLM-L6-v2 (loaded
            only if some text output differs from WT).
        batch_size: texts per embedder call.
        progress: ``progress(done, total)`` over the distinct texts to embed.
    """
    start = time.perf_counter()
    path = Path(path)
    con = _connect_write(path)
    try:
        rows = _distinct_outputs(con)
        needs_model = any(kind != "choice" and text != wt for _, _, _, text, kind, _, _, wt in rows)
        # the default model is loaded only when some text output differs from WT's
        model = as_embedder(embedder) if (embedder is not None or needs_model) else _NoEmbedder()
        cache = EmbeddingCache(model, batch_size)
        measured = _measure(rows, cache, progress)
        has_mmlu21 = con.execute(
            "SELECT count(*) > 0 FROM probes WHERE kind = 'choice' AND probe_group LIKE 'mmlu21:%'"
        ).fetchall()[0][0]
        has_text = con.execute("SELECT count(*) > 0 FROM probes WHERE kind <> 'choice'").fetchall()[0][0]
        model_name = getattr(model, "name", type(model).__name__)
        con.register("_measured", measured)
        con.begin()
        try:
            for name in PHENOTYPE_TABLES:
                con.execute(f"DROP TABLE IF EXISTS {name}")
            con.execute(_DDL)
            con.execute(_INSERT_CHOICE)
            con.execute(_INSERT_PHENOTYPES, {"has_mmlu21": bool(has_mmlu21)})
            n_outcomes = con.execute("SELECT count(*) FROM phenotypes").fetchall()[0][0]
            seconds = time.perf_counter() - start
            con.execute(
                "INSERT INTO phenotype_runs (embedding_model, batch_size, n_outcomes, n_distinct, n_embedded,"
                " mutascope_version, seconds) VALUES (?,?,?,?,?,?,?)",
                [model_name, batch_size, n_outcomes, len(rows), cache.n_embedded, __version__, seconds],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        finally:
            con.unregister("_measured")
        return _summarize(con, path, cache, len(rows), model_name, bool(has_mmlu21 and has_text), start)
    finally:
        con.close()


def _summarize(con, path, cache, n_distinct, model_name, malignant_applies, start) -> PhenotypeSummary:
    text_nsm = (
        "FROM phenotypes f JOIN outcomes o USING (mutation_id, probe_id) "
        "JOIN probes p USING (probe_id) WHERE p.kind <> 'choice' AND o.nsm"
    )
    n_outcomes = con.execute("SELECT count(*) FROM phenotypes").fetchall()[0][0]
    n_nsm = con.execute(f"SELECT count(*) {text_nsm}").fetchall()[0][0]
    severity = dict(con.execute(f"SELECT f.severity, count(*) {text_nsm} GROUP BY 1 ORDER BY 1").fetchall())
    categories = dict(con.execute(f"SELECT f.category, count(*) {text_nsm} GROUP BY 1 ORDER BY 2 DESC, 1").fetchall())
    changed = dict(
        con.execute(
            "SELECT probe_group, count(*) FILTER (WHERE changed) FROM choice_scores GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    n_unfilled = con.execute("SELECT count(*) FROM outcomes WHERE nsm AND output_tokens IS NULL").fetchall()[0][0]
    n_malignant = None
    if malignant_applies:
        n_malignant = con.execute("SELECT count(DISTINCT mutation_id) FROM phenotypes WHERE malignant").fetchall()[0][0]
    return PhenotypeSummary(
        path=path,
        n_outcomes=n_outcomes,
        n_nsm=n_nsm,
        n_distinct=n_distinct,
        n_embedded=cache.n_embedded,
        n_embed_calls=cache.n_calls,
        severity=severity,
        categories=categories,
        choice_changed=changed,
        n_malignant=n_malignant,
        n_unfilled=n_unfilled,
        embedding_model=model_name,
        seconds=time.perf_counter() - start,
    )
