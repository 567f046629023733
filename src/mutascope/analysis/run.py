"""Run every analysis of a screen and keep the tables.

``analyze()`` reads a results file, computes each table, writes them back
into the file as ``analysis_<name>`` tables (replacing older ones) and, when
asked, as CSV files. Tables needing phenotypes are skipped until
``mutascope phenotype`` has been run.

Each statistic is computed twice, once per readout (see :mod:`.stats`): the
paper's NSM call (``bias``, ``enrichment``, ``copa``, ``recurrent_axes``) and
the effect size (``effect_bias``, ``effect_enrichment``, ``effect_copa``,
``effect_recurrent_axes``). A screen without effect sizes (the reference
engine) gets the effect tables empty, with their columns.
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
from .findings import findings
from .frame import DEFAULT_EFFECT, check_effect, site_frame
from .overlap import overlap
from .reorder import reordered_table
from .saturation import saturation
from .severity import severity_distribution
from .superweight_tiles import check_same_model, marked_axes, read_superweights, superweight_tiles
from .writers import writer_groups


def check_options(alpha: float, n_perm: int) -> None:
    """One-line errors for a false discovery rate outside (0, 1) or no permutations."""
    if not 0 < alpha < 1:
        raise MutascopeError(f"--alpha must be between 0 and 1 (exclusive), got {alpha}")
    if n_perm < 1:
        raise MutascopeError(f"--permutations must be at least 1, got {n_perm}")


def both_axes(frame: pd.DataFrame, alpha: float, readout: str) -> pd.DataFrame:
    """Row and column enrichment in one table."""
    return pd.concat([enrichment(frame, "row", alpha, readout), enrichment(frame, "col", alpha, readout)],
                     ignore_index=True)


def analysis_tables(frame: pd.DataFrame, *, alpha: float = 0.05, n_perm: int = 999,
                    marks: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Every analysis table of a site frame, by name.

    ``marks`` (from :func:`~.superweight_tiles.marked_axes`) adds the
    ``superweight_tiles`` table.
    """
    enr = both_axes(frame, alpha, "nsm")
    effect_enr = both_axes(frame, alpha, "effect")
    tables = {
        "counts": nsm_counts(frame),
        "counts_by_matrix": nsm_counts(frame, by=("probe_id", "matrix", "kind")),
        "bias": bias(frame, alpha),
        "enrichment": enr,
        "recurrent_axes": recurrent_axes(enr),
        "copa": copa(frame, n_perm=n_perm),
        "overlap": overlap(frame),
        "saturation": saturation(frame),
        "effect_bias": bias(frame, alpha, readout="effect"),
        "effect_enrichment": effect_enr,
        "effect_recurrent_axes": recurrent_axes(effect_enr),
        "effect_copa": copa(frame, n_perm=n_perm, readout="effect"),
    }
    tables["reordered_gate"] = reordered_table(frame, "gate")
    if {"severity", "first_word", "category"} <= set(frame.columns):
        tables["severity"] = severity_distribution(frame)
        tables["writers"] = writer_groups(frame)
    if marks is not None:
        tables["superweight_tiles"] = superweight_tiles(frame, marks, effect_enr)
    return tables


def screen_marks(results, frame: pd.DataFrame, superweights: str | os.PathLike) -> pd.DataFrame:
    """The axes of the screened matrices that ``superweights`` marks (refusing another model's file)."""
    sw = read_superweights(superweights)
    run = results.runs.iloc[0].to_dict()
    check_same_model(sw, run, results.path)
    matrices = frame[["layer", "matrix"]].drop_duplicates().itertuples(index=False, name=None)
    return marked_axes(sw, [(int(layer), str(m)) for layer, m in matrices], (int(run["tile_h"]), int(run["tile_w"])))


def analyze(
    path: str | os.PathLike,
    *,
    csv_dir: str | os.PathLike | None = None,
    alpha: float = 0.05,
    n_perm: int = 999,
    effect: str = DEFAULT_EFFECT,
    superweights: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Compute all tables for the screen in ``path``; store them in the file (and CSV).

    ``effect`` names the outcome column read as the effect size;
    ``superweights`` (a ``mutascope superweights`` DuckDB file or JSON
    export of the same model) adds ``analysis_superweight_tiles``.
    """
    check_options(alpha, n_perm)
    check_effect(effect)
    if csv_dir is not None:
        check_output_dir(csv_dir, inputs=[path] + ([superweights] if superweights else []), what="--csv directory")
    with open_results(path) as results:
        frame = site_frame(results, effect)
        marks = screen_marks(results, frame, superweights) if superweights is not None else None
    if frame.empty:
        raise MutascopeError(f"{path} has no outcomes yet: run the screen first")
    if progress:
        progress("computing statistics")
    tables = analysis_tables(frame, alpha=alpha, n_perm=n_perm, marks=marks)
    write_tables(path, {f"analysis_{name}": _storable(table) for name, table in tables.items()})
    if csv_dir is not None:
        directory = Path(csv_dir)
        directory.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            with atomic_file(directory / f"{name}.csv", "w", encoding="utf-8", newline="") as f:
                table.to_csv(f, index=False)
    return tables


def _storable(table: pd.DataFrame) -> pd.DataFrame:
    """An empty table with object columns typed as text, so DuckDB can create it."""
    if len(table):
        return table
    return table.astype({c: "string" for c in table.columns if table[c].dtype == object})


__all__ = ["analysis_tables", "analyze", "both_axes", "check_options", "findings", "screen_marks"]
