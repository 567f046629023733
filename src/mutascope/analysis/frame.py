"""The site frame every analysis starts from, and per-matrix tile maps.

Columns: ``probe_id, layer, matrix, row, col, kind, value, mutation_id, nsm,
effect, effect_per_token, filled`` plus, when ``mutascope phenotype`` has run, ``similarity, severity,
category, first_word`` (text probes).

* ``nsm`` is the paper's binary call (the output tokens differ from WT's);
* ``effect`` is the continuous readout: by default ``logprob_drop``, the
  drop in log-probability of the WT output under the mutant (teacher-forced,
  summed over the WT tokens). It is null where the screen did not measure it
  (the reference engine, files written before effect sizes existed);
  ``effect_per_token`` is the same divided by the WT output's length, so
  probes (or screens) of different lengths can be set side by side;
* ``filled`` says whether the outcome's output is stored: an NSM of a
  calls-only screen (``--outputs calls``) has its call and effect but no
  output until ``mutascope fill``. Files of schema version 1 have no
  ``filled`` column, so it is read as ``output_tokens IS NOT NULL``, which
  means the same in every version.

A multiple-choice *set* (e.g. MMLU21) counts as one probe whose NSM is "any
answer changed", as in the paper; its effect is the sum over its questions
(null unless every question has one) and it is filled when every question is.

The rows are read by :mod:`mutascope.store.frame` (the store owns the SQL).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..errors import InputError
from ..store.frame import probe_context, site_rows

__all__ = ["DEFAULT_EFFECT", "EFFECT_CHOICES", "check_effect", "probe_context", "site_frame", "tile_map"]

# outcome columns that can serve as the continuous readout (both additive over tokens and questions)
EFFECT_CHOICES = ("logprob_drop", "logprob_drop_per_token")
DEFAULT_EFFECT = "logprob_drop"


def check_effect(effect: str) -> str:
    """``effect`` if it names a continuous readout, else a one-line error."""
    if effect not in EFFECT_CHOICES:
        raise InputError(f"effect {effect!r} is not an effect-size column; use one of {', '.join(EFFECT_CHOICES)}")
    return effect


def site_frame(results, effect: str = DEFAULT_EFFECT) -> pd.DataFrame:
    """The site frame of an open :class:`~mutascope.store.Results` (or a DuckDB connection).

    Built in SQL without output texts or tokens (:func:`mutascope.store.frame.site_rows`):
    a full-genome screen has millions of outcome rows, and no analysis needs their texts
    (phenotype columns carry what they need).
    """
    con = getattr(results, "con", results)
    text, sets = site_rows(con, check_effect(effect))
    if sets.empty:
        frame = text
    elif text.empty:
        frame = sets
    else:
        frame = pd.concat([text, sets], ignore_index=True)
    frame["nsm"] = frame["nsm"].astype(bool)
    frame["filled"] = frame["filled"].astype(bool)
    frame["effect"] = frame["effect"].astype(float)
    frame["effect_per_token"] = frame["effect_per_token"].astype(float)
    return frame.reset_index(drop=True)


def tile_map(
    frame: pd.DataFrame, value: str = "nsm", rows: pd.Index | None = None, cols: pd.Index | None = None
) -> tuple[np.ndarray, pd.Index, pd.Index]:
    """A 2-D array (tile rows x tile cols) of ``value`` for one matrix, probe and kind.

    Tiles without a mutation are NaN. ``rows``/``cols`` fix the labels (so maps
    of two kinds line up); by default the ones present. Returns the array and labels.
    """
    rows = pd.Index(sorted(frame["row"].unique())) if rows is None else rows
    cols = pd.Index(sorted(frame["col"].unique())) if cols is None else cols
    grid = np.full((len(rows), len(cols)), np.nan)
    grid[rows.get_indexer(frame["row"]), cols.get_indexer(frame["col"])] = frame[value].astype(float).to_numpy()
    return grid, rows, cols
