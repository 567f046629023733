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
