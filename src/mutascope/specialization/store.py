"""Results of a specialization run as DuckDB tables (replaced on every run).

* ``specialization_runs``     one row per model: id, weight hash, sizes, accuracy, settings;
* ``specialization_scores``   one row per model, concept, k and mask (top, or random draw):
                              accuracies before/after and PSS;
* ``specialization_vectors``  per model and concept, the top ``max(k)`` value vectors
                              (rank, layer, index, mean |a| on concept / controls, diff);
* ``specialization_summary``  per model and k: accuracy, mean PSS, random baseline.

A fine-tuning run (``--finetune``, :mod:`.causal`) writes its own tables instead:

* ``finetune_runs``     one row per model: id, weight hash, sizes, base accuracy, settings;
* ``finetune_arms``     one row per model, concept, repeat, k and arm: accuracies before/after
                        on the train, held-out and control questions, hallucination, losses;
* ``finetune_vectors``  the value vectors of every arm (concept, repeat, k, arm, layer, index);
* ``finetune_summary``  per model, k and arm: the means over concepts and repeats;
* ``finetune_tests``    the paired comparisons of the arms over concepts, with q-values.

Each kind of run owns only its own tables, so a PSS run and a fine-tuning run
can share one file.

Written with :func:`mutascope.store.replace_tables` (one transaction,
tables replaced; a table of this method the run did not produce is dropped).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..store import replace_tables
from .causal import FinetuneResult, arm_table, comparisons, rows_frame
from .score import ModelResult, summary

TABLES = ("specialization_runs", "specialization_scores", "specialization_vectors", "specialization_summary")
FINETUNE_TABLES = ("finetune_runs", "finetune_arms", "finetune_vectors", "finetune_summary", "finetune_tests")


def frames(results: Sequence[ModelResult], settings: dict | None = None) -> dict[str, pd.DataFrame]:
    """Every table as a DataFrame (empty tables keep their columns)."""
    runs = [
        dict(
            model_id=r.model_id,
            family=r.family,
            content_hash=r.content_hash,
            method=r.method,
            n_layers=r.n_layers,
            d_ff=r.d_ff,
            accuracy=r.accuracy,
            settings=json.dumps(settings or {}, default=str),
        )
        for r in results
    ]
    score_cols = [
        "model_id",
        "concept",
        "k",
        "mask",
        "draw",
        "concept_before",
        "general_before",
        "concept_after",
        "general_after",
        "pss",
    ]
    scores = [dict(model_id=r.model_id, **asdict(s)) for r in results for s in r.scores]
    vec_cols = ["model_id", "concept", "rank", "layer", "index", "concept_coef", "control_coef", "diff"]
    vectors = []
    for r in results:
        depth = max((s.k for s in r.scores), default=0)
        for concept, ranking in r.rankings.items():
            n = min(depth, len(ranking.diff))
            vectors += [
                dict(
                    model_id=r.model_id,
                    concept=concept,
                    rank=i + 1,
                    layer=int(ranking.layers[i]),
                    index=int(ranking.indices[i]),
                    concept_coef=float(ranking.concept[i]),
                    control_coef=float(ranking.control[i]),
                    diff=float(ranking.diff[i]),
                )
                for i in range(n)
            ]
    run_cols = ["model_id", "family", "content_hash", "method", "n_layers", "d_ff", "accuracy", "settings"]
    return {
        "specialization_runs": pd.DataFrame(runs, columns=run_cols),
        "specialization_scores": pd.DataFrame(scores, columns=score_cols),
        "specialization_vectors": pd.DataFrame(vectors, columns=vec_cols),
        "specialization_summary": summary(results),
    }


def write_results(path: str | os.PathLike, results: Sequence[ModelResult], settings: dict | None = None) -> Path:
    """Write all tables of ``results`` into the DuckDB file at ``path`` (created if needed)."""
    return replace_tables(path, frames(results, settings), owned=TABLES)


def finetune_frames(results: Sequence[FinetuneResult], settings: dict | None = None) -> dict[str, pd.DataFrame]:
    """Every table of a fine-tuning run as a DataFrame (empty tables keep their columns)."""
    run_cols = ["model_id", "family", "content_hash", "method", "n_layers", "d_ff", "accuracy", "settings"]
    runs = [
        dict(
            model_id=r.model_id,
            family=r.family,
            content_hash=r.content_hash,
            method=r.method,
            n_layers=r.n_layers,
            d_ff=r.d_ff,
            accuracy=r.accuracy,
            settings=json.dumps(settings or {}, default=str),
        )
        for r in results
    ]
    vec_cols = ["model_id", "concept", "repeat", "k", "arm", "layer", "index"]
    return {
        "finetune_runs": pd.DataFrame(runs, columns=run_cols),
        "finetune_arms": rows_frame(results),
        "finetune_vectors": pd.DataFrame([v for r in results for v in r.vectors], columns=vec_cols),
        "finetune_summary": arm_table(results),
        "finetune_tests": comparisons(results),
    }


def write_finetune(path: str | os.PathLike, results: Sequence[FinetuneResult], settings: dict | None = None) -> Path:
    """Write a fine-tuning run's tables into the DuckDB file at ``path`` (created if needed)."""
    return replace_tables(path, finetune_frames(results, settings), owned=FINETUNE_TABLES)
