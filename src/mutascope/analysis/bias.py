"""Max/min bias: is a matrix sensitive mostly to ``max`` or to ``min``?

Per matrix and probe, among NSMs of the two kinds, the share caused by
``max`` is compared with the share of ``max`` among the mutants (0.5 for a
plain max,min screen) by a two-sided exact binomial test; q-values are
Benjamini-Hochberg across matrices of a probe.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

from .stats import bh_adjust


def bias(frame: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per (probe, layer, matrix): counts, max share, p, q and the call."""
    sub = frame[frame["kind"].isin(["max", "min"])]
    counts = sub.groupby(["probe_id", "layer", "matrix", "kind"])["nsm"].agg(["size", "sum"]).unstack("kind", fill_value=0)
    rows = []
    for (probe, layer, matrix), r in counts.iterrows():
        n_max, n_min = int(r.get(("size", "max"), 0)), int(r.get(("size", "min"), 0))
        k_max, k_min = int(r.get(("sum", "max"), 0)), int(r.get(("sum", "min"), 0))
        total = k_max + k_min
        expected = n_max / (n_max + n_min) if n_max + n_min else np.nan
        p = binomtest(k_max, total, expected).pvalue if total and 0 < expected < 1 else np.nan
        rows.append((probe, layer, matrix, n_max, k_max, n_min, k_min, k_max / total if total else np.nan, p))
    out = pd.DataFrame(rows, columns=["probe_id", "layer", "matrix", "max_mutants", "max_nsm", "min_mutants", "min_nsm", "max_share", "p_value"])
    out["q_value"] = np.nan
    for probe, idx in out.groupby("probe_id").groups.items():
        out.loc[idx, "q_value"] = bh_adjust(out.loc[idx, "p_value"].to_numpy())
    expected = out["max_mutants"] / (out["max_mutants"] + out["min_mutants"])
    out["bias"] = np.where(out["q_value"] < alpha, np.where(out["max_share"] > expected, "max", "min"), "none")
    return out
