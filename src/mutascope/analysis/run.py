"""Run every analysis of a screen and keep the tables.

``analyze()`` reads a results file, computes each table, writes them back
into the file as ``analysis_<name>`` tables (replacing older ones) and, when
asked, as CSV files. Tables needing phenotypes are skipped until
``mutascope phenotype`` has been run.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import pandas as pd

from ..errors import MutascopeError
from ..outfiles import atomic_file, check_output_dir
from ..store import open_results, write_tables
from .bias import bias
from .copa import copa
from .counts import nsm_counts
from .enrichment import enrichment, recurrent_axes
from .frame import site_frame
from .overlap import overlap
from .reorder import reordered_table
from .severity import severity_distribution
from .writers import writer_groups


def analysis_tables(frame: pd.DataFrame, *, alpha: float = 0.05, n_perm: int = 999) -> dict[str, pd.DataFrame]:
    """Every analysis table of a site frame, by name."""
    enr = pd.concat([enrichment(frame, "row", alpha), enrichment(frame, "col", alpha)], ignore_index=True)
    tables = {
        "counts": nsm_counts(frame),
        "counts_by_matrix": nsm_counts(frame, by=("probe_id", "matrix", "kind")),
        "bias": bias(frame, alpha),
        "enrichment": enr,
        "recurrent_axes": recurrent_axes(enr),
        "copa": copa(frame, n_perm=n_perm),
        "overlap": overlap(frame),
    }
    tables["reordered_gate"] = reordered_table(frame, "gate")
    if {"severity", "first_word", "category"} <= set(frame.columns):
        tables["severity"] = severity_distribution(frame)
        tables["writers"] = writer_groups(frame)
    return tables


def analyze(
    path: str | os.PathLike,
    *,
    csv_dir: str | os.PathLike | None = None,
    alpha: float = 0.05,
    n_perm: int = 999,
    progress: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Compute all tables for the screen in ``path``; store them in the file (and CSV)."""
    if csv_dir is not None:
        check_output_dir(csv_dir, inputs=[path], what="--csv directory")
    with open_results(path) as results:
        frame = site_frame(results)
    if frame.empty:
        raise MutascopeError(f"{path} has no outcomes yet: run the screen first")
    if progress:
        progress("computing statistics")
    tables = analysis_tables(frame, alpha=alpha, n_perm=n_perm)
    write_tables(path, {f"analysis_{name}": table for name, table in tables.items()})
    if csv_dir is not None:
        directory = Path(csv_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            with atomic_file(directory / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
                table.to_csv(f, index=False)
    return tables
