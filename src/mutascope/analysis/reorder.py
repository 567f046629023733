"""The re-ordered view of a matrix used to show Gate's 2-D asymmetry.

The paper re-ordered rows and columns without saying how; we sort rows and
columns by their max-minus-min NSM balance, so max-sensitive rows/columns
gather at one corner and min-sensitive ones at the opposite corner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .frame import tile_map


def reordered_map(frame: pd.DataFrame, probe_id: str, layer: int, matrix: str) -> pd.DataFrame:
    """Balance (max NSM - min NSM) per tile, rows and columns sorted by balance (descending).

    Returned as a DataFrame indexed by the original tile row, columns by tile col.
    """
    m = frame[(frame["probe_id"] == probe_id) & (frame["layer"] == layer) & (frame["matrix"] == matrix)]
    if m.empty:
        raise ValueError(f"no outcomes for probe {probe_id!r}, layer {layer}, matrix {matrix!r}")
    rows, cols = pd.Index(sorted(m["row"].unique())), pd.Index(sorted(m["col"].unique()))
    grid_max = np.nan_to_num(tile_map(m[m["kind"] == "max"], rows=rows, cols=cols)[0])
    grid_min = np.nan_to_num(tile_map(m[m["kind"] == "min"], rows=rows, cols=cols)[0])
    balance = grid_max - grid_min
    row_order = np.argsort(-balance.sum(axis=1), kind="stable")
    col_order = np.argsort(-balance.sum(axis=0), kind="stable")
    return pd.DataFrame(balance[np.ix_(row_order, col_order)], index=rows[row_order], columns=cols[col_order])


def reordered_table(frame: pd.DataFrame, matrix: str = "gate") -> pd.DataFrame:
    """The re-ordered view of every ``matrix`` (per probe and layer) as a long table:
    tile row/col, their ranks in the sorted view, and the tile's max-min balance."""
    parts = []
    for (probe, layer), g in frame[frame["matrix"] == matrix].groupby(["probe_id", "layer"]):
        if not {"max", "min"} <= set(g["kind"]):
            continue
        view = reordered_map(g, probe, layer, matrix)
        ranks_r = {r: i for i, r in enumerate(view.index)}
        ranks_c = {c: i for i, c in enumerate(view.columns)}
        long = view.stack().rename("balance").reset_index()
        long.columns = ["row", "col", "balance"]
        long["row_rank"] = long["row"].map(ranks_r)
        long["col_rank"] = long["col"].map(ranks_c)
        long[["probe_id", "layer", "matrix"]] = [probe, layer, matrix]
        parts.append(long)
    cols = ["probe_id", "layer", "matrix", "row", "col", "row_rank", "col_rank", "balance"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
