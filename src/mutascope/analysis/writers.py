"""Writer mutations: NSMs grouped by their output's first word and category.

In Zephyr the paper found NSMs whose outputs begin with the same word (e.g.
"staring") sharing a row tile across matrices and layers. For each group we
count the most common row (column) among its members and ask how often a
random draw of as many NSMs of the same probe shares a row that much
(Monte Carlo p-value).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import MutascopeError


def _top_share(values: np.ndarray) -> int:
    return int(np.bincount(values).max()) if len(values) else 0


def writer_groups(frame: pd.DataFrame, min_size: int = 3, n_draws: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per (probe, first word, category) group of at least ``min_size`` NSMs."""
    if "first_word" not in frame.columns or "category" not in frame.columns:
        raise MutascopeError("this screen has no phenotypes yet: run `mutascope phenotype FILE` first")
    rng = np.random.default_rng(seed)
    rows = []
    nsm = frame[frame["nsm"] & frame["first_word"].notna()]
    for probe, pool in nsm.groupby("probe_id"):
        for (word, category), g in pool.groupby(["first_word", "category"]):
            if len(g) < min_size:
                continue
            rec = {"probe_id": probe, "first_word": word, "category": category, "nsm": len(g),
                   "matrices": ",".join(sorted(g["matrix"].unique())), "layers": ",".join(map(str, sorted(g["layer"].unique())))}
            for axis in ("row", "col"):
                values = g[axis].to_numpy()
                top = int(pd.Series(values).mode().iloc[0])
                observed = _top_share(values)
                all_values = pool[axis].to_numpy()
                draws = np.array([_top_share(rng.choice(all_values, len(g), replace=False)) for _ in range(n_draws)])
                rec[f"top_{axis}"] = top
                rec[f"top_{axis}_count"] = observed
                rec[f"p_{axis}"] = (1 + np.sum(draws >= observed)) / (1 + n_draws)
            rows.append(rec)
    cols = ["probe_id", "first_word", "category", "nsm", "matrices", "layers",
            "top_row", "top_row_count", "p_row", "top_col", "top_col_count", "p_col"]
    return pd.DataFrame(rows, columns=cols).sort_values("nsm", ascending=False, ignore_index=True)
