"""NSM counts and rates by any grouping (layer, matrix, kind, probe)."""

from __future__ import annotations

from typing import Sequence

import pandas as pd


def nsm_counts(frame: pd.DataFrame, by: Sequence[str] = ("probe_id", "layer", "matrix", "kind")) -> pd.DataFrame:
    """Mutants, NSMs and the NSM rate per group."""
    out = frame.groupby(list(by), as_index=False).agg(mutants=("nsm", "size"), nsm=("nsm", "sum"))
    out["nsm"] = out["nsm"].astype(int)
    out["rate"] = out["nsm"] / out["mutants"]
    return out
