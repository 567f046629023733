"""COPA: correlative complementary patterns of max and min mutations.

The paper shows max-NSMs and min-NSMs occupying complementary rows/columns
but gives no formula. Ours (METHODS.md, project decisions): per matrix and
probe, the Pearson correlation across rows (or columns) between the max
profile and the min profile. Complementary means significantly negative
against a permutation null that shuffles the min map's tiles within the
matrix. The null is computed for all permutations at once (vectorised), so a
full-genome screen's ~200 matrices take seconds.

The profile depends on the readout (see :mod:`.stats`):

* ``nsm``: the NSM rate of each row (column);
* ``effect``: the mean, over the row's (column's) tiles, of each tile's
  effect-size rank within its matrix and kind (scaled to 0-1). Ranks make
  the correlation a Spearman-like one that a few huge effects cannot
  dominate, and negative effects need no special case; the permutation
  null is exact for any such per-kind transform.

q-values are Benjamini-Hochberg across the matrices of a probe, per axis.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .frame import tile_map
from .stats import bh_by, check_readout, effect_rows

COLUMNS = ["probe_id", "layer", "matrix", "axis", "copa", "null_mean", "p_value", "q_value"]


def _profile(grids: np.ndarray, axis: int) -> np.ndarray:
    """Mean value along rows (axis 0) or columns (axis 1) of (..., R, C) maps."""
    return np.nanmean(grids, axis=-1 if axis == 0 else -2)


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``a`` (n,) with each row of ``b`` (k, n); NaN where constant."""
    a = a - a.mean()
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum() * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (b @ a) / np.where(den > 0, den, 1), np.nan)


def _values(frame: pd.DataFrame, readout: str) -> pd.DataFrame:
    """Max/min rows with the per-tile ``value`` whose row/column means are the profiles."""
    sub = frame[frame["kind"].isin(["max", "min"])]
    if readout == "nsm":
        return sub.assign(value=sub["nsm"].astype(float))
    sub = effect_rows(sub)
    ranks = sub.groupby(["probe_id", "layer", "matrix", "kind"])["effect"].rank(pct=True)
    return sub.assign(value=ranks)


def copa(frame: pd.DataFrame, n_perm: int = 999, seed: int = 0, readout: str = "nsm") -> pd.DataFrame:
    """One row per (probe, layer, matrix, axis): correlation, null mean, p-value (one-sided, low), q."""
    check_readout(readout)
    rng = np.random.default_rng(seed)
    rows = []
    for (probe, layer, matrix), m in _values(frame, readout).groupby(["probe_id", "layer", "matrix"]):
        mx, mn = m[m["kind"] == "max"], m[m["kind"] == "min"]
        if mx.empty or mn.empty:
            continue
        row_idx, col_idx = pd.Index(sorted(m["row"].unique())), pd.Index(sorted(m["col"].unique()))
        grid_max = tile_map(mx, "value", rows=row_idx, cols=col_idx)[0]
        grid_min = tile_map(mn, "value", rows=row_idx, cols=col_idx)[0]
        flat = grid_min.ravel()
        shuffled = np.stack([rng.permutation(flat) for _ in range(n_perm)]).reshape(n_perm, *grid_min.shape)
        for axis_name, axis in (("row", 0), ("col", 1)):
            a, b = _profile(grid_max, axis), _profile(grid_min, axis)
            ok = ~(np.isnan(a) | np.isnan(b))
            observed = float(_corr(a[ok], b[ok][None])[0]) if ok.sum() > 2 else float("nan")
            if np.isnan(observed):
                rows.append((probe, layer, matrix, axis_name, observed, np.nan, np.nan))
                continue
            with warnings.catch_warnings():  # a shuffled row may hold only unmeasured tiles
                warnings.simplefilter("ignore", RuntimeWarning)
                null_profiles = _profile(shuffled, axis)
            null_ok = ~np.isnan(null_profiles).any(axis=0) & ok
            null = _corr(a[null_ok], null_profiles[:, null_ok])
            null = null[~np.isnan(null)]
            p = (1 + np.sum(null <= observed)) / (1 + len(null))
            rows.append((probe, layer, matrix, axis_name, observed, float(null.mean()) if len(null) else np.nan, p))
    out = pd.DataFrame(rows, columns=COLUMNS[:-1])
    out["q_value"] = bh_by(out, ["probe_id", "axis"])
    return out
