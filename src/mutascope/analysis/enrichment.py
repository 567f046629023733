"""Row and column enrichment: do sensitive tiles line up along axes of a matrix?

Two readouts (see :mod:`.stats`), both one-sided and both with
Benjamini-Hochberg q-values across the rows (columns) of each matrix:

* ``nsm``: a tile row's (column's) NSM count against the matrix-wide NSM
  rate, exact binomial test;
* ``effect``: the effect sizes of that row's (column's) mutants against those
  of every other mutant of the matrix, all kinds pooled, by a Mann-Whitney U
  test (alternative: the row's are larger). A rank test because effects span
  orders of magnitude and can be negative; the U test needs neither a log
  nor normality, and it still works where the NSM call is saturated (every
  tile an NSM) and the binomial test has nothing to count.

Axes enriched in several probes are the paper's "sensitive across probes"
axes (:func:`recurrent_axes`, for either readout).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binom, mannwhitneyu, norm, rankdata

from .stats import bh_adjust, check_readout, effect_rows

AXES = ("row", "col")
KEYS = ["probe_id", "layer", "matrix"]
NSM_COLUMNS = KEYS + ["axis", "index", "mutants", "nsm", "expected", "p_value", "q_value", "enriched"]
EFFECT_COLUMNS = KEYS + ["axis", "index", "n", "median_effect", "median_rest", "p_value", "q_value", "enriched"]


def enrichment(frame: pd.DataFrame, axis: str = "col", alpha: float = 0.05, readout: str = "nsm") -> pd.DataFrame:
    """One row per (probe, layer, matrix, index along ``axis``)."""
    if axis not in AXES:
        raise ValueError(f"axis must be 'row' or 'col', not {axis!r}")
    check_readout(readout)
    source = frame if readout == "nsm" else effect_rows(frame)
    test = _nsm_axes if readout == "nsm" else _effect_axes
    columns = NSM_COLUMNS if readout == "nsm" else EFFECT_COLUMNS
    parts: list[dict[str, np.ndarray]] = []
    keys: list[tuple] = []
    for key, m in source.groupby(KEYS):
        g = test(m, axis)
        g["q_value"] = bh_adjust(g["p_value"])
        parts.append(g)
        keys.append(key)
    if not parts:
        return pd.DataFrame(columns=columns)
    lengths = [len(g["index"]) for g in parts]
    out = pd.DataFrame({name: np.concatenate([g[name] for g in parts]) for name in parts[0]})
    for i, name in enumerate(KEYS):
        out[name] = np.repeat(np.array([k[i] for k in keys], dtype=object), lengths)
    out["axis"] = axis
    out["enriched"] = out["q_value"] < alpha
    return out[columns]


def _nsm_axes(m: pd.DataFrame, axis: str) -> dict[str, np.ndarray]:
    nsm = m["nsm"].to_numpy(dtype=bool)
    index, codes = np.unique(m[axis].to_numpy(), return_inverse=True)
    mutants = np.bincount(codes, minlength=len(index))
    hits = np.bincount(codes, weights=nsm, minlength=len(index)).astype(int)
    rate = nsm.mean()
    p = binom.sf(hits - 1, mutants, rate) if 0 < rate < 1 else np.ones(len(index))
    return {"index": index.astype(int), "mutants": mutants, "nsm": hits, "expected": mutants * rate,
            "p_value": np.asarray(p, dtype=float)}


def _effect_axes(m: pd.DataFrame, axis: str) -> dict[str, np.ndarray]:
    """Mann-Whitney U of each index's effects against the rest of the matrix, all indices at once.

    The normal approximation with tie and continuity corrections (scipy's
    ``method="asymptotic"``), computed from one ranking of the matrix;
    groups too small for it (both sides at most 8) get scipy's exact test.
    """
    values = m["effect"].to_numpy(dtype=float)
    index, codes = np.unique(m[axis].to_numpy(), return_inverse=True)
    ranks = rankdata(values)
    total = len(values)
    n1 = np.bincount(codes, minlength=len(index)).astype(float)
    n2 = total - n1
    u1 = np.bincount(codes, weights=ranks, minlength=len(index)) - n1 * (n1 + 1) / 2
    _, ties = np.unique(values, return_counts=True)
    tie_term = float(np.sum(ties ** 3 - ties)) / (total * (total - 1)) if total > 1 else 0.0
    var = n1 * n2 / 12 * ((total + 1) - tie_term)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (u1 - n1 * n2 / 2 - 0.5) / np.sqrt(var)
    p = np.where((n2 > 0) & (var > 0), norm.sf(z), np.nan)
    for i in np.flatnonzero((n1 <= 8) & (n2 <= 8) & (n2 > 0)):
        inside = codes == i
        p[i] = mannwhitneyu(values[inside], values[~inside], alternative="greater", method="exact").pvalue
    order = np.argsort(codes, kind="stable")
    split = np.split(values[order], np.cumsum(n1.astype(int))[:-1])
    median_in = np.array([np.median(x) for x in split])
    median_rest = np.array([np.median(values[codes != i]) if n2[i] else np.nan for i in range(len(index))])
    return {"index": index.astype(int), "n": n1.astype(int), "median_effect": median_in,
            "median_rest": median_rest, "p_value": p}


def recurrent_axes(table: pd.DataFrame, min_probes: int = 2) -> pd.DataFrame:
    """Rows/columns enriched in at least ``min_probes`` probes (an enrichment table of either readout)."""
    columns = ["layer", "matrix", "axis", "index", "probes", "probe_ids"]
    hits = table[table["enriched"].astype(bool)] if len(table) else table
    if hits.empty:
        return pd.DataFrame(columns=columns)
    out = (
        hits.groupby(["layer", "matrix", "axis", "index"])
        .agg(probes=("probe_id", "nunique"), probe_ids=("probe_id", lambda s: ",".join(sorted(s))))
        .reset_index()
    )
    return out[out["probes"] >= min_probes].sort_values(["probes", "layer"], ascending=[False, True]).reset_index(drop=True)
