"""COPA: correlative complementary patterns of max- and min-NSMs.

The paper shows max-NSMs and min-NSMs occupying complementary rows/columns
but gives no formula. Ours (METHODS.md, project decisions): per matrix and
probe, the Pearson correlation across rows (or columns) between the max-NSM
rate and the min-NSM rate. Complementary means significantly negative against
a permutation null that shuffles the min map's tiles within the matrix.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .frame import tile_map


def _axis_corr(a: np.ndarray, b: np.ndarray, axis: int) -> float:
    ra, rb = np.nanmean(a, axis=1 - axis), np.nanmean(b, axis=1 - axis)
    if np.nanstd(ra) == 0 or np.nanstd(rb) == 0:
        return float("nan")
    ok = ~(np.isnan(ra) | np.isnan(rb))
    return float(np.corrcoef(ra[ok], rb[ok])[0, 1])


def copa(frame: pd.DataFrame, n_perm: int = 999, seed: int = 0) -> pd.DataFrame:
    """One row per (probe, layer, matrix, axis): correlation, null mean, p-value (one-sided, low)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (probe, layer, matrix), m in frame[frame["kind"].isin(["max", "min"])].groupby(["probe_id", "layer", "matrix"]):
        mx, mn = m[m["kind"] == "max"], m[m["kind"] == "min"]
        if mx.empty or mn.empty:
            continue
        rows_idx, cols_idx = pd.Index(sorted(m["row"].unique())), pd.Index(sorted(m["col"].unique()))
        grid_max = tile_map(mx, rows=rows_idx, cols=cols_idx)[0]
        grid_min = tile_map(mn, rows=rows_idx, cols=cols_idx)[0]
        flat = grid_min.ravel()
        for axis_name, axis in (("row", 0), ("col", 1)):
            observed = _axis_corr(grid_max, grid_min, axis)
            if np.isnan(observed):
                rows.append((probe, layer, matrix, axis_name, observed, np.nan, np.nan))
                continue
            null = np.array([_axis_corr(grid_max, rng.permutation(flat).reshape(grid_min.shape), axis) for _ in range(n_perm)])
            null = null[~np.isnan(null)]
            p = (1 + np.sum(null <= observed)) / (1 + len(null))
            rows.append((probe, layer, matrix, axis_name, observed, float(null.mean()) if len(null) else np.nan, p))
    return pd.DataFrame(rows, columns=["probe_id", "layer", "matrix", "axis", "copa", "null_mean", "p_value"])
