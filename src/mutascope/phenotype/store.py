"""Phenotypes of an existing screen, computed once and kept in its results file.

The tables are declared in :mod:`mutascope.store.schema` and read and written
by :mod:`mutascope.store.phenotypes` (the store owns persistence); this
module says what they mean and computes them.

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
from ..store.phenotypes import distinct_outputs, has_phenotypes, phenotype_counts, probe_sets, replace_phenotypes
from ..store.schema import PHENOTYPE_TABLES
from .categories import categorize, first_word
from .choice import MALIGNANT_MAX_SCORE, MALIGNANT_MAX_SIMILARITY, NO_ANSWER
from .similarity import EmbeddingCache, as_embedder, severity_band, token_edit_distance

__all__ = ["PHENOTYPE_TABLES", "PhenotypeSummary", "has_phenotypes", "phenotype_results"]

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
        rows = distinct_outputs(con)
        needs_model = any(kind != "choice" and text != wt for _, _, _, text, kind, _, _, wt in rows)
        # the default model is loaded only when some text output differs from WT's
        model = as_embedder(embedder) if (embedder is not None or needs_model) else _NoEmbedder()
        cache = EmbeddingCache(model, batch_size)
        measured = _measure(rows, cache, progress)
        has_mmlu21, has_text = probe_sets(con)
        model_name = getattr(model, "name", type(model).__name__)
        replace_phenotypes(
            con,
            measured,
            has_mmlu21=has_mmlu21,
            max_similarity=MALIGNANT_MAX_SIMILARITY,
            max_score=MALIGNANT_MAX_SCORE,
            embedding_model=model_name,
            batch_size=batch_size,
            n_distinct=len(rows),
            n_embedded=cache.n_embedded,
            start=start,
        )
        return _summarize(con, path, cache, len(rows), model_name, has_mmlu21 and has_text, start)
    finally:
        con.close()


def _summarize(con, path, cache, n_distinct, model_name, malignant_applies, start) -> PhenotypeSummary:
    counts = phenotype_counts(con, malignant=malignant_applies)
    return PhenotypeSummary(
        path=path,
        n_distinct=n_distinct,
        n_embedded=cache.n_embedded,
        n_embed_calls=cache.n_calls,
        embedding_model=model_name,
        seconds=time.perf_counter() - start,
        **counts,
    )
