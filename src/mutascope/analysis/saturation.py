"""Where the binary NSM call says little: matrices whose NSM rate is near 0 or 1.

On a small model one 64 x 64 tile covers a large share of a matrix (1/9 of a
576-wide one, against 1/64 of Llama-2-7B's), so nearly every max/min tile
can be an NSM; with greedy decoding of a robust prompt nearly none may be.
Either way the NSM map is flat and its statistics have nothing to find,
while the effect size still ranks the tiles. This table flags those
matrices so the report can point to the effect view.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

LOW, HIGH = 0.1, 0.9
COLUMNS = ["probe_id", "layer", "matrix", "mutants", "nsm", "rate", "saturated", "direction"]


def saturation(frame: pd.DataFrame, low: float = LOW, high: float = HIGH) -> pd.DataFrame:
    """One row per (probe, layer, matrix): NSM rate and whether it is above ``high`` or below ``low``.

    The rate is over max and min mutants when the screen has them (zero
    mutations are almost always silent and would pull every rate down),
    over every kind otherwise.
    """
    maxmin = frame[frame["kind"].isin(["max", "min"])]
    sub = maxmin if len(maxmin) else frame
    if sub.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = sub.groupby(["probe_id", "layer", "matrix"], as_index=False).agg(mutants=("nsm", "size"), nsm=("nsm", "sum"))
    out["nsm"] = out["nsm"].astype(int)
    out["rate"] = out["nsm"] / out["mutants"]
    out["direction"] = np.where(out["rate"] > high, "high", np.where(out["rate"] < low, "low", ""))
    out["saturated"] = out["direction"] != ""
    return out[COLUMNS]
