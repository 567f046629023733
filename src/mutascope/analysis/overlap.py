"""Cross-probe overlap: Jaccard index of the NSM sets of two probes, with its baselines.

A site here is one mutation (layer, matrix, tile, kind) of the screen's main
kinds (max and min), as in the paper's Figure 1b (e.g. Python0 vs Python10,
Drosophila vs Newton). A Jaccard index
alone is not comparable across screens: two probes with NSM rates of 0.95
and 0.71 overlap at 0.68 if their NSMs are independent, and at most 0.745.
So each pair carries

* ``expected_jaccard``: the Jaccard index if the two NSM sets were
  independent given each matrix's NSM rates (expected intersection and union
  summed over matrices, stratified so that matrices sensitive to everything
  do not count as agreement);
* ``max_jaccard``: the largest Jaccard index the two set sizes allow
  (min / max);
* ``phi`` (the correlation of the two calls over mutants) and the
  ``odds_ratio`` with its 95 % interval (Woolf, 0.5 added to every cell
  when one is empty), and Fisher's exact two-sided p of independence;
* ``odds_ratio_mh``, the odds ratio *within* each layer x matrix pooled
  (Mantel-Haenszel) with its 95 % interval (Robins, Breslow and Greenland's
  variance). The pooled odds ratio and phi also count the matrices'
  different NSM rates (two probes that both call everything in one matrix
  and little in another look associated), which the Jaccard baseline
  already removes; the stratified one measures the association beyond them,
  so it is the figure to read.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy.stats import fisher_exact, norm

from .tile_scores import main_kinds

COLUMNS = [
    "probe_a",
    "probe_b",
    "mutants",
    "nsm_a",
    "nsm_b",
    "intersection",
    "union",
    "jaccard",
    "expected_jaccard",
    "max_jaccard",
    "phi",
    "odds_ratio",
    "odds_ratio_low",
    "odds_ratio_high",
    "p_value",
    "odds_ratio_mh",
    "odds_ratio_mh_low",
    "odds_ratio_mh_high",
]


def overlap(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per pair of probes (screen order): sizes, Jaccard and its baselines."""
    frame = frame[frame["kind"].isin(main_kinds(frame))] if len(frame) else frame
    probes = list(dict.fromkeys(frame["probe_id"]))
    calls = (
        frame.pivot_table(
            index=["mutation_id", "layer", "matrix"], columns="probe_id", values="nsm", aggfunc="first"
        ).reset_index()
        if len(frame)
        else pd.DataFrame()
    )
    rows = []
    for a, b in itertools.combinations(probes, 2):
        both = calls[["layer", "matrix", a, b]].dropna()
        x, y = both[a].astype(bool).to_numpy(), both[b].astype(bool).to_numpy()
        inter, union = int((x & y).sum()), int((x | y).sum())
        rates = (
            both.assign(x=x, y=y).groupby(["layer", "matrix"]).agg(n=("x", "size"), px=("x", "mean"), py=("y", "mean"))
        )
        e_inter = float((rates["n"] * rates["px"] * rates["py"]).sum())
        e_union = float((rates["n"] * (rates["px"] + rates["py"] - rates["px"] * rates["py"])).sum())
        n11, n10, n01 = inter, int((x & ~y).sum()), int((~x & y).sum())
        n00 = len(x) - n11 - n10 - n01
        rows.append(
            (
                a,
                b,
                len(x),
                int(x.sum()),
                int(y.sum()),
                inter,
                union,
                inter / union if union else np.nan,
                e_inter / e_union if e_union else np.nan,
                min(x.sum(), y.sum()) / max(x.sum(), y.sum()) if max(x.sum(), y.sum()) else np.nan,
                _phi(n11, n10, n01, n00),
                *_odds_ratio(n11, n10, n01, n00),
                float(fisher_exact([[n11, n10], [n01, n00]]).pvalue) if len(x) else np.nan,
                *mantel_haenszel(both.assign(x=x, y=y).groupby(["layer", "matrix"])),
            )
        )
    return pd.DataFrame(rows, columns=COLUMNS)


def mantel_haenszel(strata) -> tuple[float, float, float]:
    """The common odds ratio of the strata's 2x2 tables (``x`` and ``y`` booleans per stratum) and
    its 95 % interval from the Robins-Breslow-Greenland variance of its log; strata of one row, or
    with one margin empty, carry no information and add nothing. NaN where no stratum informs it."""
    r_sum = s_sum = pr = ps_qr = qs = 0.0
    for _, g in strata:
        x, y = g["x"].to_numpy(bool), g["y"].to_numpy(bool)
        n = len(x)
        if n < 2:
            continue
        a, b, c, d = (x & y).sum(), (x & ~y).sum(), (~x & y).sum(), (~x & ~y).sum()
        r, s = a * d / n, b * c / n
        p, q = (a + d) / n, (b + c) / n
        r_sum, s_sum = r_sum + r, s_sum + s
        pr, ps_qr, qs = pr + p * r, ps_qr + p * s + q * r, qs + q * s
    if r_sum == 0 or s_sum == 0:
        return float("nan"), float("nan"), float("nan")
    estimate = r_sum / s_sum
    se = math.sqrt(pr / (2 * r_sum**2) + ps_qr / (2 * r_sum * s_sum) + qs / (2 * s_sum**2))
    z = norm.ppf(0.975)
    return estimate, estimate * math.exp(-z * se), estimate * math.exp(z * se)


def _phi(n11: int, n10: int, n01: int, n00: int) -> float:
    den = math.sqrt(float(n11 + n10) * (n01 + n00) * (n11 + n01) * (n10 + n00))
    return (n11 * n00 - n10 * n01) / den if den else float("nan")


def _odds_ratio(n11: int, n10: int, n01: int, n00: int) -> tuple[float, float, float]:
    cells = np.array([n11, n10, n01, n00], dtype=float)
    if (cells == 0).any():
        cells = cells + 0.5
    log_or = math.log(cells[0] * cells[3] / (cells[1] * cells[2]))
    se = math.sqrt(float(np.sum(1 / cells)))
    z = norm.ppf(0.975)
    return math.exp(log_or), math.exp(log_or - z * se), math.exp(log_or + z * se)
