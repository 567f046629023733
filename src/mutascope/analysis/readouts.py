"""The two readouts every statistic of a screen can read.

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
