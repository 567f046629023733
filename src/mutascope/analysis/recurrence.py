"""Axes sensitive across probes: which they are, and whether there are more than chance.

``recurrent_axes`` lists the axes enriched (q below the FDR) in at least
``min_probes`` probes: a description, not a test. ``recurrence`` is the test.

**Unit**: the axis (a tile row or column of one matrix).
**Null**: the two probes' hit sets are independent *within each matrix and
axis*: given that probe A has a hits among the n rows of a matrix and probe B
has b, their overlap is hypergeometric(n, a, b). Stratifying by matrix and
axis keeps matrices that are sensitive to everything from counting as
recurrence. The observed number of shared hits is compared with the sum of
these independent overlaps, whose exact distribution is their convolution.
**Family**: one test per pair of probes and readout, BH over the pairs.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from .exact import bh, hypergeom_sum_tail

KEYS = ["layer", "matrix", "axis", "index"]
COLUMNS = [
    "probe_a",
    "probe_b",
    "axes",
    "hits_a",
    "hits_b",
    "shared",
    "expected",
    "ratio",
    "p_value",
    "p_floor",
    "q_value",
]


def recurrent_axes(table: pd.DataFrame, min_probes: int = 2) -> pd.DataFrame:
    """Rows/columns enriched in at least ``min_probes`` probes (an enrichment table of either readout)."""
    columns = KEYS + ["probes", "probe_ids"]
    hits = table[table["enriched"].astype(bool)] if len(table) else table
    if hits.empty:
        return pd.DataFrame(columns=columns)
    out = (
        hits.groupby(KEYS)
        .agg(probes=("probe_id", "nunique"), probe_ids=("probe_id", lambda s: ",".join(sorted(s))))
        .reset_index()
    )
    return (
        out[out["probes"] >= min_probes]
        .sort_values(["probes", "layer"], ascending=[False, True])
        .reset_index(drop=True)
    )


def recurrence(table: pd.DataFrame) -> pd.DataFrame:
    """One row per pair of probes: shared enriched axes, observed against expected."""
    if table.empty:
        return pd.DataFrame(columns=COLUMNS)
    probes = list(dict.fromkeys(table["probe_id"]))
    hit = table.assign(enriched=table["enriched"].astype(bool))
    rows = []
    for a, b in itertools.combinations(probes, 2):
        both = hit[hit["probe_id"] == a].merge(hit[hit["probe_id"] == b], on=KEYS, suffixes=("_a", "_b"))
        if both.empty:
            continue
        strata = [
            (len(g), int(g["enriched_a"].sum()), int(g["enriched_b"].sum()))
            for _, g in both.groupby(["layer", "matrix", "axis"])
        ]
        expected, tail = hypergeom_sum_tail(strata)
        shared = int((both["enriched_a"] & both["enriched_b"]).sum())
        ceiling = sum(min(x, y) for _, x, y in strata)
        rows.append(
            (
                a,
                b,
                len(both),
                int(both["enriched_a"].sum()),
                int(both["enriched_b"].sum()),
                shared,
                expected,
                shared / expected if expected > 0 else np.nan,
                float(tail[shared]) if shared < len(tail) else 0.0,
                float(tail[ceiling]) if ceiling < len(tail) else np.nan,
            )
        )
    out = pd.DataFrame(rows, columns=COLUMNS[:-1])
    out["q_value"] = bh(out["p_value"].to_numpy()) if len(out) else []
    return out
