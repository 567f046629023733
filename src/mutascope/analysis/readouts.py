"""The three readouts every statistic of a screen can read.

Every statistic of a screen can read the paper's binary NSM call
(``readout="nsm"``), the continuous effect size (``readout="effect"``, the
frame's ``effect`` column, by default ``logprob_drop``) or, where the screen
has predictions, the effect *beyond the activation baseline*
(``readout="residual"``, the frame's ``residual`` column, :func:`with_residual`).

The NSM call saturates on small models (a 64 x 64 tile is a large share of a
576-wide matrix, so nearly every max/min tile is an NSM) while the effect size
still ranks tiles. Effect sizes span orders of magnitude (a fraction of a nat
to hundreds) and can be negative (a mutant can make the WT output *more*
likely), so the continuous readouts use rank-based tests, which need neither
a log transform (undefined at or below zero) nor normality, and are not
dominated by the few largest tiles.

**Why a residual.** A constant tile of value c adds about c times the sum of
the tile's input columns to its 64 output channels at every position, so much
of a map can follow from the inputs' statistics alone (a column meeting a
massive activation is sensitive in every matrix that reads it) with nothing
learnt about the weights. A statistic says something about the parameters
only where the map departs from what the activations predict. The residual
is that departure: per probe and matrix (both kinds pooled, so a difference
between max and min that the baseline predicts is removed too), the effect's
percentile rank minus its robust isotonic fit on the baseline (the
least-squares non-decreasing function of it, :func:`rank_residual`: no shape
is assumed beyond "a larger predicted drop means a larger effect"). It is a
*rank* residual, not the effect minus a calibrated prediction, because the
baseline (the ``local`` estimate, exact through the first
nonlinearity and first order after it) is off by orders of magnitude on the
largest effects (max/min tiles write far outside a matrix's range), so a
calibrated difference is dominated by the few largest tiles, whose
calibration is the poorest (docs/atlas.md, "Beyond the activation baseline",
measures both). A map that *is* a monotone function of the baseline has a
residual of exactly 0 everywhere, and no statistic finds anything in it.

A limit: a monotone fit follows noise upwards (on data unrelated to the
baseline it still rises with it), so where the baseline puts one kind above
the other and the map does not follow, the residual leans slightly the other
way. On noise maps with such a baseline (benchmarks/bench_residual_mirror.py)
the residual's max/min bias had a median rank-biserial of -0.11 to -0.16 and
0-5 of 42 matrices called, every one against the baseline's favoured kind,
while no axis was enriched. A residual bias *against* the kind the baseline
favours is therefore weak evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

READOUTS = ("nsm", "effect", "residual")
# the predictions column the residual readout takes as its baseline by default
BASELINE = "local"
_KEYS = ["probe_id", "layer", "matrix"]
EXACT = 1e-9
TRIM = 3.0


def check_readout(readout: str) -> str:
    """``readout`` if it is one of :data:`READOUTS`; a ValueError (a programming error) otherwise."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, not {readout!r}")
    return readout


def value_column(readout: str) -> str:
    """The site frame's column a readout reads: ``nsm``, ``effect`` or ``residual``."""
    return check_readout(readout)


def readout_words(readout: str) -> str:
    """How sentences name a readout."""
    return {"nsm": "NSM call", "effect": "effect", "residual": "residual effect"}[check_readout(readout)]


def effect_rows(frame: pd.DataFrame, readout: str = "effect") -> pd.DataFrame:
    """The rows of a site frame that carry the continuous ``readout`` (none for reference-engine
    screens, or for the residual of a screen without predictions)."""
    column = value_column(readout)
    if column not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame[column].notna()]


def isotonic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The least-squares fit of ``y`` that is non-decreasing in ``x`` (pool adjacent violators;
    tied ``x`` share one fitted value)."""
    order = np.argsort(x, kind="stable")
    xs, ys = x[order], y[order]
    _, start = np.unique(xs, return_index=True)
    counts = np.diff(np.r_[start, len(xs)])
    means, weights, blocks = [], [], []
    for total, n in zip(np.add.reduceat(ys, start), counts):
        means.append(total / n)
        weights.append(float(n))
        blocks.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            w = weights[-2] + weights[-1]
            m = (means[-2] * weights[-2] + means[-1] * weights[-1]) / w
            b = blocks[-2] + blocks[-1]
            del means[-1], weights[-1], blocks[-1]
            means[-1], weights[-1], blocks[-1] = m, w, b
    fit = np.empty(len(x))
    fit[order] = np.repeat(np.repeat(means, blocks), counts)
    return fit


def rank_residual(effect: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """The effect's percentile ranks minus their robust isotonic fit on the baseline: what a
    monotone function of the baseline cannot say. Exactly zero where the effect is a
    non-decreasing function of the baseline; rows with a non-finite value are NaN.

    Robust: the fit is made twice, the second time without the points whose first residual is
    more than :data:`TRIM` robust standard deviations (1.4826 MAD) from zero. A departure from
    the baseline would otherwise raise the fit where it lies and push its neighbours below it,
    so the baseline's own structure would come back as a mirror image of the departure."""
    effect = np.asarray(effect, dtype=float)
    baseline = np.asarray(baseline, dtype=float)
    out = np.full(len(effect), np.nan)
    ok = np.isfinite(effect) & np.isfinite(baseline)
    if ok.sum() < 2:
        return out
    x, u = baseline[ok], pd.Series(effect[ok]).rank(pct=True).to_numpy()
    fit = isotonic(x, u)
    first = u - fit
    spread = 1.4826 * float(np.median(np.abs(first)))
    kept = np.abs(first) <= TRIM * spread
    if spread > EXACT and kept.sum() >= max(2, len(u) // 2) and not kept.all():
        order = np.argsort(x[kept], kind="stable")
        refit = isotonic(x[kept], u[kept])
        fit = np.interp(x, x[kept][order], refit[order])
    residual = u - fit
    # block means leave rounding (1e-16) where the fit is exact; ranks of that noise would be
    # random scores, so it is set to the exact 0 it stands for (real residuals are far larger)
    out[ok] = np.where(np.abs(residual) < EXACT, 0.0, residual)
    return out


def with_residual(frame: pd.DataFrame, baseline: pd.DataFrame, column: str = BASELINE) -> pd.DataFrame:
    """``frame`` with a ``residual`` column: the rank residual of ``effect`` on the baseline's
    ``column`` (``baseline`` keyed by ``mutation_id, probe_id``, e.g. the predictions table),
    within each probe and matrix, every kind of the frame together. Null where the effect or
    the baseline is missing."""
    if baseline is None or baseline.empty or column not in baseline.columns:
        return frame.assign(residual=np.nan)
    base = baseline[["mutation_id", "probe_id", column]].drop_duplicates(["mutation_id", "probe_id"])
    joined = frame[["mutation_id", "probe_id"]].merge(base, on=["mutation_id", "probe_id"], how="left")
    values = joined[column].to_numpy(dtype=float)
    effect = frame["effect"].to_numpy(dtype=float) if "effect" in frame.columns else np.full(len(frame), np.nan)
    residual = np.full(len(frame), np.nan)
    for idx in frame.groupby(_KEYS, sort=False).indices.values():
        residual[idx] = rank_residual(effect[idx], values[idx])
    return frame.assign(residual=residual)
