"""Max/min bias: is a matrix sensitive mostly to ``max`` or to ``min``?

Two readouts (see :mod:`.stats`):

* ``nsm``: among NSMs of the two kinds, the share caused by ``max`` is
  compared with the share of ``max`` among the mutants (0.5 for a plain
  max,min screen) by a two-sided exact binomial test;
* ``effect``: the max and min mutants of the same tile form a pair, and a
  Wilcoxon signed-rank test asks whether their effect sizes differ. Pairing
  by site removes what the two kinds share (how sensitive that tile is), so
  what is left is the kind; ranks keep a few huge effects from deciding it.

q-values are Benjamini-Hochberg across the matrices of a probe; ``bias`` is
the call (``max``, ``min`` or ``none``) at the given FDR.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import binomtest, rankdata, wilcoxon

from .stats import bh_by, check_readout, effect_rows

KEYS = ["probe_id", "layer", "matrix"]
NSM_COLUMNS = KEYS + ["max_mutants", "max_nsm", "min_mutants", "min_nsm", "max_share", "p_value"]
EFFECT_COLUMNS = KEYS + ["pairs", "median_max", "median_min", "median_difference", "signed_rank_sum", "p_value"]


def bias(frame: pd.DataFrame, alpha: float = 0.05, readout: str = "nsm") -> pd.DataFrame:
    """One row per (probe, layer, matrix): the test's inputs, p, q and the call."""
    check_readout(readout)
    sub = frame[frame["kind"].isin(["max", "min"])]
    if readout == "nsm":
        out = _nsm_bias(sub)
        expected = out["max_mutants"] / (out["max_mutants"] + out["min_mutants"])
        direction = np.where(out["max_share"] > expected, "max", "min")
    else:
        out = _effect_bias(sub)
        direction = np.where(out["signed_rank_sum"] > 0, "max", "min")
    out["q_value"] = bh_by(out, ["probe_id"])
    out["bias"] = np.where(out["q_value"] < alpha, direction, "none")
    return out


def _nsm_bias(sub: pd.DataFrame) -> pd.DataFrame:
    counts = sub.groupby(KEYS + ["kind"])["nsm"].agg(["size", "sum"]).unstack("kind", fill_value=0)
    rows = []
    for (probe, layer, matrix), r in counts.iterrows():
        n_max, n_min = int(r.get(("size", "max"), 0)), int(r.get(("size", "min"), 0))
        k_max, k_min = int(r.get(("sum", "max"), 0)), int(r.get(("sum", "min"), 0))
        total = k_max + k_min
        expected = n_max / (n_max + n_min) if n_max + n_min else np.nan
        p = binomtest(k_max, total, expected).pvalue if total and 0 < expected < 1 else np.nan
        rows.append((probe, layer, matrix, n_max, k_max, n_min, k_min, k_max / total if total else np.nan, p))
    return pd.DataFrame(rows, columns=NSM_COLUMNS)


def _effect_bias(sub: pd.DataFrame) -> pd.DataFrame:
    sub = effect_rows(sub)
    rows = []
    if not sub.empty:
        paired = sub.pivot_table(index=KEYS + ["row", "col"], columns="kind", values="effect", aggfunc="first")
        if {"max", "min"} <= set(paired.columns):
            paired = paired[["max", "min"]].dropna()
            for (probe, layer, matrix), g in paired.groupby(level=[0, 1, 2], sort=True):
                mx, mn = g["max"].to_numpy(), g["min"].to_numpy()
                rows.append((probe, layer, matrix, len(g), float(np.median(mx)), float(np.median(mn)),
                             *_signed_rank(mx - mn)))
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def _signed_rank(d: np.ndarray) -> tuple[float, float, float]:
    """Median difference, the sum of signed ranks (> 0: max larger) and the two-sided p-value."""
    median = float(np.median(d))
    nonzero = d[d != 0]
    if len(nonzero) < 2:
        return median, 0.0, np.nan
    signed = float(np.sum(np.sign(nonzero) * rankdata(np.abs(nonzero))))
    return median, signed, float(wilcoxon(nonzero).pvalue)
