"""Screens in predicted order: the chunks with the largest predicted effects first.

A screen's chunks are a fixed grid over the plan (so every mutant is batched
with the same neighbours however the screen runs, and its numbers are
bit-identical); predicted order keeps that grid and only changes the order
in which chunks are run. Every mutant's outcome is therefore the plan-order
screen's, and resume, shards, merge, fill and workers keep their guarantees:
a stopped screen has simply covered the chunks predicted to matter most.

A chunk's priority is the sum over its mutants and probes of the estimate
:data:`ORDER_BY` names, in absolute value (the ``local`` estimate, which
finds more of the exact top 1 % early on the SmolLM2 atlas's drosophila
probe: docs/predicted-maps.md; ``predicted`` where a table has no ``local``
value); ties (and unpredicted chunks, last) keep plan order.

What such a screen has covered after a given time (:class:`Schedule`) counts
only the chunks finished by then, since a chunk's rows are committed together,
and gives each chunk its share of the time by its cost, not an equal share: a
mutant runs from its own layer up (prefix reuse), so a chunk of early-layer
mutants takes longer than one of late-layer mutants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError

ORDERS = ("plan", "predicted", "adaptive")  # adaptive: rounds chosen by a surrogate (.adaptive)
ORDER_BY = "local"  # the estimate a screen in predicted order ranks chunks by (module docstring)


def ordering_estimate(predictions: pd.DataFrame) -> pd.Series:
    """|estimate| of each row: :data:`ORDER_BY`, or the first-order ``predicted`` where it is missing."""
    first = predictions["predicted"]
    if ORDER_BY in predictions.columns:
        return predictions[ORDER_BY].fillna(first).abs()
    return first.abs()


def check_order(order: str) -> str:
    """A screen's ``order``, or a one-line error naming the choices."""
    if order not in ORDERS:
        raise InputError(f"unknown order {order!r}: choose from {', '.join(ORDERS)}")
    return order


def chunk_priority(chunks: Sequence[Sequence[int]], predictions: pd.DataFrame) -> np.ndarray:
    """Sum of |estimate| (:func:`ordering_estimate`) over each chunk's mutation ids (all probes);
    -inf where none is predicted."""
    magnitude = predictions.assign(a=ordering_estimate(predictions)).groupby("mutation_id")["a"].sum(min_count=1)
    out = np.empty(len(chunks))
    for i, ids in enumerate(chunks):
        values = magnitude.reindex(list(ids)).to_numpy(dtype=float)
        out[i] = np.nansum(values) if np.isfinite(values).any() else -np.inf
    return out


def predicted_order(chunks: Sequence[Sequence[int]], predictions: pd.DataFrame) -> list[int]:
    """Indices of ``chunks`` (mutation id lists, in plan order) from the highest priority down."""
    priority = chunk_priority(chunks, predictions)
    return sorted(range(len(chunks)), key=lambda i: (-priority[i], i))


def coverage(chunks: Sequence[Sequence[int]], predictions: pd.DataFrame, share: float = 0.01) -> np.ndarray:
    """After each chunk of the predicted order, the share of the predicted top ``share`` covered.

    The predicted top is the ``share`` of (mutant, probe) rows with the largest |estimate|;
    what ``mutascope plan`` turns into coverage per hour. Element ``i`` is the share after
    ``i + 1`` chunks.
    """
    scored = predictions.assign(a=ordering_estimate(predictions)).dropna(subset=["a"])
    if scored.empty:
        return np.zeros(len(chunks))
    k = max(1, int(np.ceil(share * len(scored))))
    top = scored.nlargest(k, "a")["mutation_id"].value_counts()
    per_chunk = np.array([top.reindex(list(ids)).fillna(0).sum() for ids in chunks])
    return np.cumsum(per_chunk[predicted_order(chunks, predictions)]) / k


def chunk_cost(layers: Sequence[int], n_layers: int) -> float:
    """The relative cost of a chunk whose mutants sit in ``layers``: each runs the decoder
    blocks from its layer up, plus about one block's worth for the head and the rest."""
    return float(sum(n_layers - layer + 1 for layer in layers))


@dataclass(frozen=True)
class Schedule:
    """A screen in predicted order, chunk by chunk (element ``i``: after ``i + 1`` chunks).

    ``covered``: share of the predicted top covered (:func:`coverage`); ``screened``: share of
    the plan's mutants done; ``ends``: share of the screen's time at which the chunk ends.
    """

    covered: np.ndarray
    screened: np.ndarray
    ends: np.ndarray

    @property
    def n_chunks(self) -> int:
        return len(self.ends)

    def at(self, fraction: float) -> tuple[int, float, float]:
        """Chunks finished, share screened and share covered at ``fraction`` of the screen's time:
        a chunk still running has committed nothing."""
        done = int(np.searchsorted(self.ends, fraction * (1 + 1e-9), side="right"))
        if done == 0:
            return 0, 0.0, 0.0
        return done, float(self.screened[done - 1]), float(self.covered[done - 1])


def schedule(
    chunks: Sequence[Sequence[int]], predictions: pd.DataFrame, costs: Sequence[float], share: float = 0.01
) -> Schedule:
    """The :class:`Schedule` of a predicted-order screen of ``chunks`` (mutation ids, plan order)
    whose chunks cost ``costs`` (:func:`chunk_cost`)."""
    order = predicted_order(chunks, predictions)
    sizes = np.array([len(chunks[i]) for i in order], dtype=float)
    spent = np.cumsum(np.asarray(costs, dtype=float)[order])
    return Schedule(
        coverage(chunks, predictions, share),
        np.cumsum(sizes) / max(sizes.sum(), 1),
        spent / spent[-1] if len(spent) and spent[-1] > 0 else np.ones(len(order)),
    )
