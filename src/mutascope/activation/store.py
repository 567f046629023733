"""Results of an activation run as DuckDB tables (replaced on every run).

* ``activation_runs``        model id and hash, settings, memory estimate;
* ``activation_inputs``      one row per input: domain, tokens, predicted token, D;
* ``activation_fractions``   activated count/fraction per (domain, layer, matrix, gamma);
                             ``matrix='all'`` is the layer total, ``domain='all'`` every input;
* ``activation_similarity``  mean cosine per layer within / across domains
                             (``within`` / ``across`` summary rows included);
* ``activation_pairs``       every kept pair's cosine per layer;
* ``activation_findings``    shallow vs deep numbers for the paper's findings;
* ``activation_tiles``       mean A per tile (joins a screen's ``mutations`` on layer, matrix, row, col);
* ``activation_screen``      Spearman rho of tile activation vs NSM rate (with ``--screen``);
* ``pruning_layers``         N_i, N'_i and the uniform / layer-wise ratio per layer;
* ``pruning_perplexity``     dense, uniform and layer-wise Wanda perplexity;
* ``activation_calibration_transfer``  (``--prune-calibration``) perplexity (and MC accuracy for
                             MMLU domains) of every calibration domain x evaluation domain x method,
                             with the dense model's rows (``method='dense'``);
* ``activation_calibration_summary``   per method and evaluation domain: the diagonal against the
                             other calibration domains (``eval_domain='all'`` pools them);
* ``activation_calibration_layers``    the layer-wise ratios each calibration domain's counts gave;
* ``activation_semantic_pairs``        (``--semantic-pairs``) per layer: Spearman rho of the pairs'
                             pattern cosine vs their score, permutation p-value;
* ``activation_semantic_cosines``      every pair's cosine per layer, with its score.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from ..model.subject import Subject
from ..store import replace_tables

__all__ = ["TABLES", "run_frame", "write_tables"]

TABLES = (
    "activation_runs",
    "activation_inputs",
    "activation_fractions",
    "activation_similarity",
    "activation_pairs",
    "activation_findings",
    "activation_tiles",
    "activation_screen",
    "pruning_layers",
    "pruning_perplexity",
    "activation_calibration_transfer",
    "activation_calibration_summary",
    "activation_calibration_layers",
    "activation_semantic_pairs",
    "activation_semantic_cosines",
)


def run_frame(subject: Subject, settings: dict) -> pd.DataFrame:
    """One row describing the run: model, its content hash, and every setting as JSON."""
    return pd.DataFrame(
        [
            dict(
                model_id=subject.model_id,
                content_hash=subject.content_hash(),
                family=subject.anatomy.family,
                dtype=str(subject.dtype).removeprefix("torch."),
                settings=json.dumps(settings, default=str, sort_keys=True),
            )
        ]
    )


def write_tables(path: str | os.PathLike, tables: dict[str, pd.DataFrame]) -> Path:
    """Write the given tables (names from :data:`TABLES`) into the DuckDB file, replacing them."""
    unknown = set(tables) - set(TABLES)
    if unknown:  # pragma: no cover - a programming error, not a user one
        raise ValueError(f"unknown activation tables: {sorted(unknown)}")
    return replace_tables(path, tables, owned=TABLES)
