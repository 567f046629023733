"""Screens in predicted order: the chunks with the largest predicted effects first.

A screen's chunks are a fixed grid over the plan (so every mutant is batched
with the same neighbours however the screen runs, and its numbers are
bit-identical); predicted order keeps that grid and only changes the order
in which chunks are run. Every mutant's outcome is therefore the plan-order
screen's, and resume, shards, merge, fill and workers keep their guarantees:
a stopped screen has simply covered the chunks predicted to matter most.
A chunk's priority is the sum over its mutants and probes of |predicted|;
ties (and unpredicted chunks, last) keep plan order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

ORDERS = ("plan", "predicted")


def chunk_priority(chunks: Sequence[Sequence[int]], predictions: pd.DataFrame) -> np.ndarray:
    """Sum of |predicted| over each chunk's mutation ids (all probes); -inf where none is predicted."""
    magnitude = predictions.assign(a=predictions["predicted"].abs()).groupby("mutation_id")["a"].sum(min_count=1)
    out = np.empty(len(chunks))
    for i, ids in enumerate(chunks):
        values = magnitude.reindex(list(ids)).to_numpy(dtype=float)
        out[i] = np.nansum(values) if np.isfinite(values).any() else -np.inf
    return out


def predicted_order(chunks: Sequence[Sequence[int]], predictions: pd.DataFrame) -> list[int]:
    """Indices of ``chunks`` (mutation id lists, in plan order) from the highest priority down."""
    priority = chunk_priority(chunks, predictions)
    return sorted(range(len(chunks)), key=lambda i: (-priority[i], i))
