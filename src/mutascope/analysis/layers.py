"""Claims about a matrix *type* ("`gate` columns are complementary", "`gate` is
min-biased") tested across layers, not layer by layer.

A per-layer test of a weak but consistent effect fails in every layer, and a
count of per-layer hits is not a test. Here the unit is the layer: each
layer of a matrix type contributes the sign of its statistic (a COPA
correlation, a bias's rank-biserial correlation), and an exact two-sided
sign test asks whether one sign dominates over the layers. **Family**: every
matrix type x axis (or kind pair) x probe of the table, BH over it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exact import bh, mcnemar

COLUMNS = ["layers", "positive", "negative", "median", "p_value", "p_floor", "q_value"]


def sign_test_over_layers(table: pd.DataFrame, value: str, by: list[str]) -> pd.DataFrame:
    """One row per group of ``by`` (e.g. probe, matrix, axis): the signs of ``value`` over its layers."""
    if table.empty:
        return pd.DataFrame(columns=by + COLUMNS)
    rows = []
    for key, g in table.groupby(by, sort=False):
        v = g[value].to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        pos, neg = int((v > 0).sum()), int((v < 0).sum())
        p, floor = mcnemar(pos, neg)
        rows.append((*np.atleast_1d(key), len(v), pos, neg, float(np.median(v)) if len(v) else np.nan, p, floor))
    out = pd.DataFrame(rows, columns=by + COLUMNS[:-1])
    out["q_value"] = bh(out["p_value"].to_numpy())
    return out


def bias_by_type(bias_table: pd.DataFrame) -> pd.DataFrame:
    """Bias per matrix type over layers, with how often the larger value was the first kind."""
    if bias_table.empty:
        return pd.DataFrame(columns=["probe_id", "matrix", "pair"] + COLUMNS)
    stat = "rank_biserial" if "rank_biserial" in bias_table else "_balance"
    t = bias_table
    if stat == "_balance":
        t = t.assign(_balance=(t["a_only"] - t["b_only"]).astype(float))
    out = sign_test_over_layers(t, stat, ["probe_id", "matrix", "pair"])
    calls = t.assign(
        _larger=t["size_ratio"] > 1,
        _a=t["bias"] == t["kind_a"],
        _b=t["bias"] == t["kind_b"],
        _against=(t["bias"] != "none") & (t["larger"] != "equal") & (t["bias"] != t["larger"]),
    )
    counts = (
        calls.groupby(["probe_id", "matrix", "pair"], sort=False)
        .agg(
            a_larger=("_larger", "sum"),
            called_a=("_a", "sum"),
            called_b=("_b", "sum"),
            called_against_size=("_against", "sum"),
        )
        .reset_index()
    )
    return out.merge(counts, on=["probe_id", "matrix", "pair"], how="left")
