"""Small statistical helpers shared by the analyses, and the two readouts.

Every statistic of a screen can read either the paper's binary NSM call
(``readout="nsm"``) or the continuous effect size (``readout="effect"``,
the frame's ``effect`` column, by default ``logprob_drop``). The NSM call
saturates on small models (a 64 x 64 tile is a large share of a 576-wide
matrix, so nearly every max/min tile is an NSM) while the effect size still
ranks tiles. Effect sizes span orders of magnitude (a fraction of a nat to
hundreds) and can be negative (a mutant can make the WT output *more*
likely), so the effect readout uses rank-based tests, which need neither a
log transform (undefined at or below zero) nor normality, and are not
dominated by the few largest tiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

READOUTS = ("nsm", "effect")


def check_readout(readout: str) -> str:
    """``readout`` if it is one of :data:`READOUTS`; a ValueError (a programming error) otherwise."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, not {readout!r}")
    return readout


def effect_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a site frame that carry an effect size (none for reference-engine screens)."""
    if "effect" not in frame.columns:
        return frame.iloc[0:0]
    return frame[frame["effect"].notna()]


def bh_adjust(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values), NaNs kept as NaN."""
    p = np.asarray(p, dtype=float)
    q = np.full_like(p, np.nan)
    ok = ~np.isnan(p)
    if not ok.any():
        return q
    pv = p[ok]
    order = np.argsort(pv)
    ranked = pv[order] * len(pv) / np.arange(1, len(pv) + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty_like(pv)
    adjusted[order] = np.minimum(ranked, 1.0)
    q[ok] = adjusted
    return q


def bh_by(table: pd.DataFrame, by: list[str], column: str = "p_value") -> np.ndarray:
    """BH q-values of ``column``, adjusted separately within each group of ``by``."""
    q = np.full(len(table), np.nan)
    if table.empty:
        return q
    positions = np.arange(len(table))
    for _, idx in table.groupby(by, sort=False).indices.items():
        q[positions[idx]] = bh_adjust(table[column].to_numpy(dtype=float)[idx])
    return q
