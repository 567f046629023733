"""Cross-probe overlap: Jaccard index of the NSM site sets of two probes.

A site here is one mutation (layer, matrix, tile, kind), as in the paper's
Figure 1b (e.g. Python0 vs Python10, Drosophila vs Newton).
"""

from __future__ import annotations

import itertools

import pandas as pd


def overlap(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ordered-once probe pair: sizes, intersection, union, Jaccard."""
    sets = {p: set(g.loc[g["nsm"], "mutation_id"]) for p, g in frame.groupby("probe_id")}
    rows = []
    for a, b in itertools.combinations(sorted(sets), 2):
        inter, union = len(sets[a] & sets[b]), len(sets[a] | sets[b])
        rows.append((a, b, len(sets[a]), len(sets[b]), inter, union, inter / union if union else float("nan")))
    return pd.DataFrame(rows, columns=["probe_a", "probe_b", "nsm_a", "nsm_b", "intersection", "union", "jaccard"])
