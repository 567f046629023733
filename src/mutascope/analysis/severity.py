"""Severity distributions: how far NSM outputs are from WT, by matrix and kind."""

from __future__ import annotations

import pandas as pd

from ..errors import ResultsFileError


def severity_distribution(frame: pd.DataFrame) -> pd.DataFrame:
    """Counts and fractions of NSMs per severity band, per (probe, matrix, kind)."""
    if "severity" not in frame.columns:
        raise ResultsFileError("this screen has no phenotypes yet: run `mutascope phenotype FILE` first")
    nsm = frame[frame["nsm"] & frame["severity"].notna()]
    out = (
        nsm.groupby(["probe_id", "matrix", "kind", "severity"], as_index=False).size().rename(columns={"size": "count"})
    )
    out["fraction"] = out["count"] / out.groupby(["probe_id", "matrix", "kind"])["count"].transform("sum")
    return out
