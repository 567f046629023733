"""The site frame every analysis starts from, and per-matrix tile maps.

Columns: ``probe_id, layer, matrix, row, col, kind, mutation_id, nsm`` plus,
when present, phenotype columns (``similarity, category, first_word`` ...).
A multiple-choice *set* (e.g. MMLU21) counts as one probe whose NSM is "any
answer changed", as in the paper.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SITE_KEYS = ["probe_id", "layer", "matrix", "row", "col", "kind"]


def site_frame(results) -> pd.DataFrame:
    """Build the site frame from an open :class:`~mutascope.store.Results`."""
    sites = results.sites()
    probes = results.probes[["probe_id", "kind", "probe_group"]].rename(columns={"kind": "probe_kind"})
    sites = sites.merge(probes, on="probe_id", how="left")
    choice = sites["probe_kind"] == "choice"
    text = sites[~choice].drop(columns=["probe_kind", "probe_group"])
    if not choice.any():
        return text.reset_index(drop=True)
    sets = (
        sites[choice]
        .assign(probe_id=lambda d: d["probe_group"])
        .groupby(["probe_id", "mutation_id", "layer", "matrix", "row", "col", "kind"], as_index=False)
        .agg(nsm=("nsm", "any"))
    )
    return pd.concat([text, sets], ignore_index=True)


def tile_map(
    frame: pd.DataFrame, value: str = "nsm", rows: pd.Index | None = None, cols: pd.Index | None = None
) -> tuple[np.ndarray, pd.Index, pd.Index]:
    """A 2-D array (tile rows x tile cols) of ``value`` for one matrix, probe and kind.

    Tiles without a mutation are NaN. ``rows``/``cols`` fix the labels (so maps
    of two kinds line up); by default the ones present. Returns the array and labels.
    """
    rows = pd.Index(sorted(frame["row"].unique())) if rows is None else rows
    cols = pd.Index(sorted(frame["col"].unique())) if cols is None else cols
    grid = np.full((len(rows), len(cols)), np.nan)
    grid[rows.get_indexer(frame["row"]), cols.get_indexer(frame["col"])] = frame[value].astype(float).to_numpy()
    return grid, rows, cols
