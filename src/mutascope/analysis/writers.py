"""Writer mutations: NSMs grouped by their output's first word and category.

In Zephyr the paper found NSMs whose outputs begin with the same word (e.g.
"staring") sharing a row tile across matrices and layers. For each group
(probe, first word, category) of at least ``min_size`` NSMs we count its
most common row (column) tile.

**Null**: as many NSMs of the same probe drawn at random *with the group's
composition of matrix types* (a group of nine ``down`` NSMs is compared with
nine random ``down`` NSMs), because the number of row tiles differs between
matrix types (3 in SmolLM2's ``k``, 9 in ``down``, 24 in ``gate``) and a
type with few rows shares rows by chance. **Draws**: chosen from the family
(:func:`.exact.permutations_for`), stated in ``draws``, with the floor
1 / (draws + 1). **Family**: every group x axis of every probe; ``q_row`` and
``q_col`` are BH over it. Only filled NSMs have a first word.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import ResultsFileError
from .exact import bh, permutations_for

COLUMNS = [
    "probe_id",
    "first_word",
    "category",
    "nsm",
    "matrices",
    "layers",
    "draws",
    "top_row",
    "top_row_count",
    "p_row",
    "q_row",
    "top_col",
    "top_col_count",
    "p_col",
    "q_col",
    "p_floor",
]


def _top_counts(values: np.ndarray) -> np.ndarray:
    """The largest count of one value in each row of a (draws, size) array of non-negative ints."""
    width = int(values.max()) + 1 if values.size else 1
    offsets = np.arange(values.shape[0])[:, None] * width
    counts = np.bincount((values + offsets).ravel(), minlength=values.shape[0] * width)
    return counts.reshape(values.shape[0], width).max(axis=1)


def _draw_without_replacement(pool_size: int, size: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` uniform draws of ``size`` distinct positions among ``pool_size`` (rejection where
    repeats occur, which is exact: distinct i.i.d. draws are uniform without replacement)."""
    if size * size > pool_size:  # a draw would often repeat (birthday bound): shuffle, in blocks of draws
        return np.concatenate(
            [np.argsort(rng.random((min(2000, n - i), pool_size)), axis=1)[:, :size] for i in range(0, n, 2000)]
        )
    out = rng.integers(0, pool_size, size=(n, size))
    while True:
        s = np.sort(out, axis=1)
        bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1)) if size > 1 else np.array([], int)
        if not len(bad):
            return out
        out[bad] = rng.integers(0, pool_size, size=(len(bad), size))


def writer_groups(
    frame: pd.DataFrame, min_size: int = 3, n_draws: int = 999, seed: int = 0, alpha: float = 0.05
) -> pd.DataFrame:
    """One row per (probe, first word, category) group of at least ``min_size`` NSMs."""
    if "first_word" not in frame.columns or "category" not in frame.columns:
        raise ResultsFileError("this screen has no phenotypes yet: run `mutascope phenotype FILE` first")
    rng = np.random.default_rng(seed)
    nsm = frame[frame["nsm"] & frame["first_word"].notna()]
    groups = [
        (probe, key, g)
        for probe, pool in nsm.groupby("probe_id")
        for key, g in pool.groupby(["first_word", "category"])
        if len(g) >= min_size
    ]
    draws = permutations_for(2 * len(groups), alpha, n_draws)
    pools = {
        probe: {m: pool[pool["matrix"] == m] for m in pool["matrix"].unique()}
        for probe, pool in nsm.groupby("probe_id")
    }
    rows = []
    for probe, (word, category), g in groups:
        rec = {
            "probe_id": probe,
            "first_word": word,
            "category": category,
            "nsm": len(g),
            "draws": draws,
            "matrices": ",".join(sorted(g["matrix"].unique())),
            "layers": ",".join(map(str, sorted(g["layer"].unique()))),
        }
        composition = g["matrix"].value_counts()
        for axis in ("row", "col"):
            values = g[axis].to_numpy()
            rec[f"top_{axis}"] = int(pd.Series(values).mode().iloc[0])
            observed = int(np.bincount(values).max())
            # the group's matrix types drawn from that type's NSMs, then pooled: one null draw per row
            parts = [
                pools[probe][m][axis].to_numpy()[_draw_without_replacement(len(pools[probe][m]), k, draws, rng)]
                for m, k in composition.items()
            ]
            null = _top_counts(np.concatenate(parts, axis=1))
            rec[f"top_{axis}_count"] = observed
            rec[f"p_{axis}"] = (1 + int(np.sum(null >= observed))) / (1 + draws)
        rec["p_floor"] = 1 / (1 + draws)
        rows.append(rec)
    out = pd.DataFrame(rows, columns=[c for c in COLUMNS if not c.startswith("q_")])
    q = bh(np.concatenate([out["p_row"].to_numpy(dtype=float), out["p_col"].to_numpy(dtype=float)]))
    out["q_row"], out["q_col"] = q[: len(out)], q[len(out) :]
    return out[COLUMNS].sort_values("nsm", ascending=False, ignore_index=True)
