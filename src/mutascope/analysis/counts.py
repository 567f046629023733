"""NSM counts and effect sizes by any grouping (layer, matrix, kind, probe), with intervals.

The same table describes the screen's kinds and its controls side by side:
per kind, the NSM rate with its exact (Clopper-Pearson) 95 % interval and
the median effect with its distribution-free 95 % interval (order
statistics), plus the median effect per WT token. Grouped by probe and kind,
it gives the *noise floor* of the NSM call (the rate at which tiny random
perturbations, ``noise:X`` with a small X, are NSMs), the effect of random
tiles of matched norm (``noise:1``), and the dose-response of a ``sym:X``
sweep, next to max and min.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.stats import beta

from .exact import median_interval


def nsm_counts(frame: pd.DataFrame, by: Sequence[str] = ("probe_id", "layer", "matrix", "kind")) -> pd.DataFrame:
    """Mutants, NSMs, the NSM rate (and interval) and the median effect (and interval) per group."""
    by = list(by)
    out = frame.groupby(by, as_index=False, sort=True).agg(mutants=("nsm", "size"), nsm=("nsm", "sum"))
    out["nsm"] = out["nsm"].astype(int)
    n, k = out["mutants"].to_numpy(), out["nsm"].to_numpy()
    out["rate"] = k / n
    with np.errstate(invalid="ignore"):
        out["rate_low"] = np.where(k > 0, beta.ppf(0.025, k, n - k + 1), 0.0)
        out["rate_high"] = np.where(k < n, beta.ppf(0.975, k + 1, n - k), 1.0)
    if "value" in frame.columns and {"layer", "matrix", "kind"} <= set(by):
        out["value"] = frame.groupby(by, sort=True)["value"].first().to_numpy()
    if "effect" in frame.columns:
        stats = []
        for _, g in frame.groupby(by, sort=True):
            e = g["effect"].dropna().to_numpy(dtype=float)
            tok = g["effect_per_token"].dropna() if "effect_per_token" in g else pd.Series(dtype=float)
            low, high = median_interval(e) if len(e) else (np.nan, np.nan)
            stats.append(
                (float(np.median(e)) if len(e) else np.nan, low, high, float(tok.median()) if len(tok) else np.nan)
            )
        out[["median_effect", "effect_low", "effect_high", "median_per_token"]] = (
            np.array(stats, dtype=float) if stats else np.empty((0, 4))
        )
    return out
