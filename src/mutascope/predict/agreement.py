"""How well each cheap score predicts what the exact screen finds.

For every score of :data:`~.scores.SCORES` (and ``|predicted|``, ``|local|``), probe and
matrix type (and all matrices together), over the mutants that have both:

* ``spearman``: Spearman's correlation with the exact ``logprob_drop``;
* ``auc``: the area under the ROC curve of the score for the NSM call (the
  chance that an NSM scores higher than a silent mutant; 0.5 = no skill);
* ``mutants``/``screened``: the mutants the row rests on (those with both the
  score and an exact effect), of all with an exact effect: predictions can
  cover part of a screen (shards merged where only some were predicted), and
  every sentence that quotes the agreement says so;
* ``recall_1``/``recall_10``: of the exact top 1 % (10 %) of mutants by
  ``logprob_drop``, the share that the score's own top 1 % (10 %) holds
  (1 % and 10 % by chance).

Each comes with a 95 % percentile-bootstrap interval over **tiles** (a tile's
kinds are resampled together, as one unit; 200 resamples, seeded).

:func:`recall_curve` is the question a screen in predicted order answers:
having screened a given share of the genome in some order, what share of the
exact top 1 % has it found?
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata

BOOTSTRAP = 200
COLUMNS = [
    "score",
    "probe_id",
    "matrix",
    "mutants",
    "screened",
    "spearman",
    "spearman_low",
    "spearman_high",
    "auc",
    "auc_low",
    "auc_high",
    "recall_1",
    "recall_1_low",
    "recall_1_high",
    "recall_10",
    "recall_10_low",
    "recall_10_high",
]
ALL = "all"


def _metrics(score: np.ndarray, effect: np.ndarray, nsm: np.ndarray) -> tuple[float, float, float, float]:
    rs, re = rankdata(score), rankdata(effect)
    rho = float(np.corrcoef(rs, re)[0, 1]) if np.ptp(rs) > 0 and np.ptp(re) > 0 else math.nan
    n1, n0 = int(nsm.sum()), int((~nsm).sum())
    auc = float((rs[nsm].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)) if n1 and n0 else math.nan
    return rho, auc, _recall(score, effect, 0.01), _recall(score, effect, 0.10)


def _recall(score: np.ndarray, effect: np.ndarray, share: float) -> float:
    """Share of the exact top ``share`` (by effect) inside the score's top ``share``."""
    k = max(1, math.ceil(share * len(score)))
    if len(score) < 2:
        return math.nan
    top_effect = np.argpartition(-effect, k - 1)[:k]
    top_score = np.argpartition(-score, k - 1)[:k]
    return len(np.intersect1d(top_effect, top_score, assume_unique=True)) / k


def agreement(frame: pd.DataFrame, predictions: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """One row per (score, probe, matrix type or ``all``); see the module docstring.

    ``frame`` is the site frame (the exact screen), ``predictions`` the predictions table.
    """
    if frame.empty or predictions is None or predictions.empty:
        return pd.DataFrame(columns=COLUMNS)
    measured = frame[frame["effect"].notna()]
    screened = {
        **measured.groupby("probe_id").size().to_dict(),
        **measured.groupby(["probe_id", "matrix"]).size().to_dict(),
    }
    joined = frame[["mutation_id", "probe_id", "layer", "matrix", "row", "col", "nsm", "effect"]].merge(
        predictions, on=["mutation_id", "probe_id"]
    )
    joined = joined[joined["effect"].notna()].assign(predicted_abs=lambda d: d["predicted"].abs())
    if "local" in joined.columns:
        joined = joined.assign(local_abs=joined["local"].abs())
    scores = [
        c
        for c in (
            "predicted",
            "predicted_abs",
            "local",
            "local_abs",
            "magnitude",
            "change",
            "wanda",
            "activation",
            "superweight",
        )
        if c in joined.columns and joined[c].notna().any()
    ]
    rng = np.random.default_rng(seed)
    rows = []
    for probe, p in joined.groupby("probe_id", sort=False):
        for matrix, g in [(ALL, p), *p.groupby("matrix", sort=False)]:
            tiles = g.groupby(["layer", "matrix", "row", "col"], sort=False).ngroup().to_numpy()
            n_tiles = int(tiles.max()) + 1
            members = [np.flatnonzero(tiles == t) for t in range(n_tiles)] if n_tiles < 2000 else None
            draws = [_resample(tiles, n_tiles, members, rng) for _ in range(BOOTSTRAP)]
            effect, nsm = g["effect"].to_numpy(dtype=float), g["nsm"].to_numpy(dtype=bool)
            for name in scores:
                s = g[name].to_numpy(dtype=float)
                ok = np.isfinite(s)
                point = _metrics(s[ok], effect[ok], nsm[ok])
                boot = np.array([_metrics(s[d][ok[d]], effect[d][ok[d]], nsm[d][ok[d]]) for d in draws])
                low, high = np.nanquantile(boot, 0.025, axis=0), np.nanquantile(boot, 0.975, axis=0)
                n_screened = screened[probe] if matrix == ALL else screened[(probe, matrix)]
                rows.append(
                    (
                        name,
                        probe,
                        matrix,
                        int(ok.sum()),
                        int(n_screened),
                        *[v for i in range(4) for v in (point[i], low[i], high[i])],
                    )
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def _resample(tiles: np.ndarray, n_tiles: int, members, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a bootstrap sample of whole tiles (all kinds of each drawn tile)."""
    chosen = rng.integers(0, n_tiles, n_tiles)
    if members is not None:
        return np.concatenate([members[t] for t in chosen])
    counts = np.bincount(chosen, minlength=n_tiles)
    return np.repeat(np.arange(len(tiles)), counts[tiles])


def recall_curve(effect: np.ndarray, order: np.ndarray, share: float = 0.01, points: int = 101) -> pd.DataFrame:
    """Share of the exact top ``share`` found after screening each share of ``order``.

    ``effect``: the exact effect of every mutant-probe row; ``order``: the positions of
    the rows in the order they are screened. Returns ``screened`` (0-1) and ``found`` (0-1).
    """
    n = len(effect)
    k = max(1, math.ceil(share * n))
    top = np.zeros(n, dtype=bool)
    top[np.argpartition(-effect, k - 1)[:k]] = True
    found = np.cumsum(top[order]) / k
    at = np.linspace(0, n, points).round().astype(int)
    return pd.DataFrame({"screened": at / n, "found": np.r_[0.0, found][at]})
