"""Row and column enrichment: do NSMs line up along axes of a matrix?

For each tile row (column) of a matrix, its NSM count is tested against the
matrix-wide NSM rate with a one-sided binomial test; q-values are
Benjamini-Hochberg across the rows (columns) of that matrix. Rows enriched in
several probes are the paper's "sensitive across probes" axes.
"""

from __future__ import annotations

import pandas as pd
from scipy.stats import binom

from .stats import bh_adjust

AXES = ("row", "col")


def enrichment(frame: pd.DataFrame, axis: str = "col", alpha: float = 0.05) -> pd.DataFrame:
    """One row per (probe, layer, matrix, index along ``axis``)."""
    if axis not in AXES:
        raise ValueError(f"axis must be 'row' or 'col', not {axis!r}")
    parts = []
    for key, m in frame.groupby(["probe_id", "layer", "matrix"]):
        rate = m["nsm"].mean()
        g = m.groupby(axis)["nsm"].agg(["size", "sum"]).reset_index()
        g.columns = ["index", "mutants", "nsm"]
        g["expected"] = g["mutants"] * rate
        g["p_value"] = binom.sf(g["nsm"] - 1, g["mutants"], rate) if 0 < rate < 1 else 1.0
        g["q_value"] = bh_adjust(g["p_value"].to_numpy())
        g[["probe_id", "layer", "matrix"]] = list(key)
        parts.append(g)
    cols = ["probe_id", "layer", "matrix", "index", "mutants", "nsm", "expected", "p_value", "q_value"]
    if not parts:
        return pd.DataFrame(columns=cols + ["axis", "enriched"])
    out = pd.concat(parts, ignore_index=True)[cols]
    out["nsm"] = out["nsm"].astype(int)
    out.insert(3, "axis", axis)
    out["enriched"] = out["q_value"] < alpha
    return out


def recurrent_axes(table: pd.DataFrame, min_probes: int = 2) -> pd.DataFrame:
    """Rows/columns enriched in at least ``min_probes`` probes."""
    hits = table[table["enriched"]]
    out = (
        hits.groupby(["layer", "matrix", "axis", "index"])
        .agg(probes=("probe_id", "nunique"), probe_ids=("probe_id", lambda s: ",".join(sorted(s))))
        .reset_index()
    )
    return out[out["probes"] >= min_probes].sort_values(["probes", "layer"], ascending=[False, True]).reset_index(drop=True)
