"""COPA: correlative complementary patterns of max and min mutations.

The paper shows max-NSMs and min-NSMs occupying complementary rows/columns
but gives no formula. Ours (docs/methods.md, "COPA"): per matrix and probe,
the Pearson correlation across tile rows (or columns) between the max
profile and the min profile; complementary = significantly negative.

**Profiles**: the mean per-kind score along each row (column), by readout
(:mod:`.tile_scores`): the NSM rate, or the mean effect percentile within
the matrix and kind (a Spearman-like correlation that a few huge effects
cannot dominate; the permutation null is exact for any per-kind transform).
**Null**: whole tiles permuted *within columns* for the row profile
(within rows for the column profile): a tile's max and min move together,
so the null keeps the pairing inside each tile and scrambles only the axis
under test. A tile whose max and min are (anti)correlated, with no row or
column structure, is then no complementary axis: permuting the min map alone
(this module's first null) broke that pairing and called 63 % of such tests
in every draw. ``null_mean`` and ``null_median`` are where the tiles' own
pairing puts the correlation; ``excess`` = ``copa`` - ``null_median`` is what
the axes add. The median, not the mean: a correlation's null is skewed near
+-1 (tiles whose kinds correlate), and only the median makes a positive and a
negative excess equally likely in a layer without axis structure, which the
sign test over layers needs. **Permutations**: chosen
from the family (:func:`.exact.permutations_for`: at least 4 m / alpha for
m tests, so that a test at the floor survives BH on its own), and stated in
``permutations`` with the floor ``p_floor`` = 1 / (permutations + 1).
**Family**: every matrix x axis of a probe, per readout.

Claims about a matrix type over layers are :func:`copa_by_type`'s, on the sign of
``excess``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .exact import bh, permutations_for
from .frame import tile_map
from .layers import sign_test_over_layers
from .readouts import check_readout
from .tile_scores import MATRIX_KEYS, kind_scores

COLUMNS = MATRIX_KEYS + [
    "axis",
    "copa",
    "null_mean",
    "null_median",
    "excess",
    "permutations",
    "p_value",
    "p_floor",
    "q_value",
]
BLOCK = 2000  # permutations drawn at once (bounds memory on large grids)


def _profile(grids: np.ndarray, axis: int) -> np.ndarray:
    """Mean value along rows (axis 0) or columns (axis 1) of (..., R, C) maps."""
    with warnings.catch_warnings():  # a row may hold only unmeasured tiles
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(grids, axis=-1 if axis == 0 else -2)


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of ``a`` (n,) with each row of ``b`` (k, n); NaN where constant."""
    a = a - a.mean()
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum() * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (b @ a) / np.where(den > 0, den, 1), np.nan)


def _permuted(grids: tuple[np.ndarray, ...], axis: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """``n`` copies of each of ``grids`` (same shape) with tiles shuffled along ``axis``
    independently in each line across it (axis 0: rows shuffled within each column), the
    same shuffle for every grid: a tile's values in the grids stay together."""
    shape = grids[0].shape
    order = np.argsort(rng.random((n, *shape)), axis=1 + axis)
    if axis == 0:
        return tuple(g[order, np.arange(shape[1])[None, None, :]] for g in grids)
    return tuple(g[np.arange(shape[0])[None, :, None], order] for g in grids)


def _corr_pairs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` (k, n) with the same row of ``b``; NaN where constant."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=-1) * (b * b).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=-1) / np.where(den > 0, den, 1), np.nan)


def _matrices(scored: pd.DataFrame):
    for key, m in scored.groupby(MATRIX_KEYS, sort=True):
        mx, mn = m[m["kind"] == "max"], m[m["kind"] == "min"]
        if mx.empty or mn.empty:
            continue
        rows, cols = pd.Index(sorted(m["row"].unique())), pd.Index(sorted(m["col"].unique()))
        yield key, tile_map(mx, "score", rows=rows, cols=cols)[0], tile_map(mn, "score", rows=rows, cols=cols)[0]


def copa(
    frame: pd.DataFrame, n_perm: int = 999, seed: int = 0, readout: str = "nsm", alpha: float = 0.05
) -> pd.DataFrame:
    """One row per (probe, layer, matrix, axis): correlation, null mean, p (one-sided, low), q.

    ``n_perm`` is the least number of permutations; the family may ask for more.
    """
    check_readout(readout)
    rng = np.random.default_rng(seed)
    scored = kind_scores(frame, readout, ["max", "min"])
    matrices = list(_matrices(scored))
    per_probe = pd.Series([k[0] for k, _, _ in matrices]).value_counts()
    rows = []
    for (probe, layer, matrix), grid_max, grid_min in matrices:
        n = permutations_for(2 * int(per_probe[probe]), alpha, n_perm)
        for axis_name, axis in (("row", 0), ("col", 1)):
            a, b = _profile(grid_max, axis), _profile(grid_min, axis)
            ok = ~(np.isnan(a) | np.isnan(b))
            observed = float(_corr(a[ok], b[ok][None])[0]) if ok.sum() > 2 else float("nan")
            if np.isnan(observed):
                rows.append((probe, layer, matrix, axis_name, observed, np.nan, np.nan, np.nan, n, np.nan, np.nan))
                continue
            below, total, nulls = 0, 0, []
            for start in range(0, n, BLOCK):
                perm_max, perm_min = _permuted((grid_max, grid_min), axis, min(BLOCK, n - start), rng)
                null_a, null_b = _profile(perm_max, axis), _profile(perm_min, axis)
                null_ok = ~(np.isnan(null_a).any(axis=0) | np.isnan(null_b).any(axis=0)) & ok
                null = _corr_pairs(null_a[:, null_ok], null_b[:, null_ok])
                null = null[~np.isnan(null)]
                below += int(np.sum(null <= observed + 1e-12))
                total += len(null)
                nulls.append(null)
            p = (1 + below) / (1 + total)
            everything = np.concatenate(nulls) if nulls else np.array([])
            null_mean = float(everything.mean()) if total else np.nan
            null_median = float(np.median(everything)) if total else np.nan
            rows.append(
                (
                    probe,
                    layer,
                    matrix,
                    axis_name,
                    observed,
                    null_mean,
                    null_median,
                    observed - null_median,
                    n,
                    p,
                    1 / (1 + total),
                )
            )
    out = pd.DataFrame(rows, columns=COLUMNS[:-1])
    out["q_value"] = np.nan
    for _, idx in out.groupby("probe_id", sort=False).indices.items():
        out.loc[out.index[idx], "q_value"] = bh(out["p_value"].to_numpy()[idx])
    return out


def copa_by_type(table: pd.DataFrame) -> pd.DataFrame:
    """Per probe, matrix type and axis: the sign of the COPA correlation's excess over its
    null over layers (negative = more complementary than the tiles' own max/min pairing
    explains), sign test against an AR(1) across layers (:mod:`.layers`), BH over the
    table's groups. ``median`` is the median excess."""
    value = "excess" if "excess" in table else "copa"  # tables written before the excess column
    return sign_test_over_layers(table, value, ["probe_id", "matrix", "axis"])
