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
* ``pruning_perplexity``     dense, uniform and layer-wise Wanda perplexity.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from mutascope.subject import Subject

__all__ = ["TABLES", "run_frame", "write_tables"]

TABLES = ("activation_runs", "activation_inputs", "activation_fractions", "activation_similarity",
          "activation_pairs", "activation_findings", "activation_tiles", "activation_screen",
          "pruning_layers", "pruning_perplexity")


def run_frame(subject: Subject, settings: dict) -> pd.DataFrame:
    """One row describing the run: model, its content hash, and every setting as JSON."""
    return pd.DataFrame([dict(
        model_id=subject.model_id, content_hash=subject.content_hash(), family=subject.anatomy.family,
        dtype=str(subject.dtype).removeprefix("torch."), settings=json.dumps(settings, default=str, sort_keys=True),
    )])


def write_tables(path: str | os.PathLike, tables: dict[str, pd.DataFrame]) -> Path:
    """Write the given tables (names from :data:`TABLES`) into the DuckDB file, replacing them."""
    from mutascope.superweights.store import write_results

    unknown = set(tables) - set(TABLES)
    if unknown:  # pragma: no cover - a programming error, not a user one
        raise ValueError(f"unknown activation tables: {sorted(unknown)}")
    return write_results(path, tables)
