"""Row and column enrichment: do sensitive tiles line up along axes of a matrix?

**Unit**: the tile (its kinds reduced to one score, :mod:`.tile_scores`).
**Test**: a stratified rank-sum test, exact. For a tile row, the tiles of
each tile column are ranked by score; the row's statistic is the sum of its
tiles' ranks over the columns. The null permutes rows *within* each column
(so a sensitive column cannot make every row look enriched), which makes the
row's rank in each column a uniform draw from that column's ranks,
independently across columns: the exact null is their convolution
(:func:`.exact.rank_sum_tail`), ties included. Columns are tested the same
way with rows and columns swapped. One-sided: the axis's tiles rank high.
The same test serves both readouts: the NSM call (a tile's score is the
fraction of its kinds that are NSMs) and the effect size (the mean of its
kinds' effect percentiles).

**Effect size**: ``score``, the mean percentile of the axis's tiles within
their strata (0.5 under the null, 1 = the top tile of every stratum), with a
95 % percentile-bootstrap interval over the strata (1,000 resamples, seeded).
``median_effect``/``median_rest`` (effect readout) and ``nsm``/``expected``
(NSM readout) describe the mutants behind it.

**Family**: every axis (rows and columns) of every matrix in the frame, per
probe and readout; ``q_value`` is Benjamini-Hochberg over that family, so a
count of enriched axes is FDR-controlled as a set. ``p_floor`` is the
smallest p the axis's strata allow (the axis on top of every stratum).

Axes enriched in several probes, and whether there are more of them than the
two probes' hit rates alone would give, are :mod:`.recurrence`'s.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .exact import bh, rank_sum_tail
from .readouts import check_readout, effect_rows
from .tile_scores import MATRIX_KEYS, kind_scores, main_kinds, tile_scores

AXES = ("row", "col")
OTHER = {"row": "col", "col": "row"}
COMMON = MATRIX_KEYS + ["axis", "index", "tiles", "mutants"]
TAIL = ["score", "ci_low", "ci_high", "p_value", "p_floor", "q_value", "enriched"]
NSM_COLUMNS = COMMON + ["nsm", "expected"] + TAIL
EFFECT_COLUMNS = COMMON + ["median_effect", "median_rest", "median_per_token"] + TAIL
BOOTSTRAP = 1000


def enrichment(
    frame: pd.DataFrame, readout: str = "nsm", alpha: float = 0.05, axes=AXES, seed: int = 0
) -> pd.DataFrame:
    """One row per (probe, layer, matrix, axis, index), both axes by default; BH over every
    axis of every matrix of a probe (see the module docstring)."""
    check_readout(readout)
    columns = NSM_COLUMNS if readout == "nsm" else EFFECT_COLUMNS
    source = frame if readout == "nsm" else effect_rows(frame, readout)
    kinds = main_kinds(source)
    tiles = tile_scores(source, readout, kinds)
    mutants = kind_scores(source, readout, kinds)
    rng = np.random.default_rng(seed)
    by_matrix = dict(list(mutants.groupby(MATRIX_KEYS, sort=False)))
    parts = []
    for axis in axes:
        if axis not in AXES:
            raise ValueError(f"axis must be 'row' or 'col', not {axis!r}")
        for key, t in tiles.groupby(MATRIX_KEYS, sort=True):
            parts.append(_axis_tests(key, t, by_matrix[key], axis, readout, rng))
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    out["q_value"] = np.nan
    for _, idx in out.groupby("probe_id", sort=False).indices.items():
        out.loc[out.index[idx], "q_value"] = bh(out["p_value"].to_numpy()[idx])
    out["enriched"] = out["q_value"] < alpha
    return out[columns]


def _axis_tests(
    key: tuple, t: pd.DataFrame, m: pd.DataFrame, axis: str, readout: str, rng: np.random.Generator
) -> pd.DataFrame:
    """Every index of one matrix along ``axis``: exact stratified rank-sum tests."""
    stratum = OTHER[axis]
    scores = t["score"].to_numpy(dtype=float)
    strata = t[stratum].to_numpy()
    index = t[axis].to_numpy()
    doubled = np.zeros(len(t), dtype=np.int64)
    percent = np.full(len(t), 0.5)
    by_stratum: dict[int, np.ndarray] = {}
    for s in np.unique(strata):
        inside = np.flatnonzero(strata == s)
        ranks = pd.Series(scores[inside]).rank(method="average").to_numpy()
        doubled[inside] = np.rint(2 * ranks).astype(np.int64)
        by_stratum[int(s)] = doubled[inside]
        if len(inside) > 1:
            percent[inside] = (ranks - 1) / (len(inside) - 1)
    labels = np.unique(index)
    tails: dict[tuple, np.ndarray] = {}
    rows = []
    for i in labels:
        inside = index == i
        own = tuple(sorted(int(s) for s in strata[inside]))
        tail = tails.get(own)
        if tail is None:
            tail = tails[own] = rank_sum_tail([by_stratum[s] for s in own])
        s_obs = int(doubled[inside].sum())
        rows.append(
            (
                int(i),
                int(inside.sum()),
                float(tail[s_obs]) if s_obs < len(tail) else 0.0,
                float(tail[-1]),
                float(percent[inside].mean()),
            )
        )
    out = pd.DataFrame(rows, columns=["index", "tiles", "p_value", "p_floor", "score"])
    out["ci_low"], out["ci_high"] = _bootstrap(percent, index, labels, rng)
    for name, value in zip(MATRIX_KEYS, key):
        out[name] = value
    out["axis"] = axis
    _describe(out, m, axis, readout)
    return out


def _bootstrap(
    percent: np.ndarray, index: np.ndarray, labels: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """95 % percentile-bootstrap interval of each index's mean percentile, over its strata."""
    low, high = np.full(len(labels), np.nan), np.full(len(labels), np.nan)
    groups: dict[int, list[int]] = {}
    values = [percent[index == i] for i in labels]
    for j, v in enumerate(values):
        groups.setdefault(len(v), []).append(j)
    for k, members in groups.items():
        if k < 2:
            continue
        draws = rng.integers(0, k, size=(BOOTSTRAP, k))
        stacked = np.stack([values[j] for j in members])  # (members, k)
        means = stacked[:, draws].mean(axis=-1)  # (members, BOOTSTRAP)
        low[members], high[members] = np.quantile(means, [0.025, 0.975], axis=1)
    return low, high


def _describe(out: pd.DataFrame, m: pd.DataFrame, axis: str, readout: str) -> None:
    """The mutants behind each index: counts (NSM readout) or median effects (effect readout)."""
    codes = m[axis].to_numpy()
    counts = pd.Series(codes).value_counts()
    out["mutants"] = out["index"].map(counts).fillna(0).astype(int)
    if readout == "nsm":
        nsm = m["nsm"].to_numpy(dtype=bool)
        hits = pd.Series(nsm, index=codes).groupby(level=0).sum()
        out["nsm"] = out["index"].map(hits).fillna(0).astype(int)
        out["expected"] = out["mutants"] * (nsm.mean() if len(nsm) else np.nan)
        return
    effect = m["effect"].to_numpy(dtype=float)
    per_token = m["effect_per_token"].to_numpy(dtype=float) if "effect_per_token" in m else np.full(len(m), np.nan)
    med, rest, tok = [], [], []
    for i in out["index"]:
        inside = codes == i
        med.append(float(np.median(effect[inside])) if inside.any() else np.nan)
        rest.append(float(np.median(effect[~inside])) if (~inside).any() else np.nan)
        tok.append(float(np.nanmedian(per_token[inside])) if np.isfinite(per_token[inside]).any() else np.nan)
    out["median_effect"], out["median_rest"], out["median_per_token"] = med, rest, tok
