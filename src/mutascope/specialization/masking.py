"""Masking value vectors: zero columns of ``down``, always undone.

A value vector is column ``j`` of the canonical ``down`` matrix of a layer;
masking it zeroes that column through the anatomy's writable view (so GPT-2's
transposed storage is handled in one place). The originals are copied before
writing and copied back in ``finally``: the weights are bit-identical
afterwards even after an exception or Ctrl-C (the
:func:`mutascope.plan.applied` pattern).
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator

import numpy as np

from ..errors import InputError
from ..model.subject import Subject

Vector = tuple[int, int]  # (layer, column of the canonical down matrix)


def n_vectors(subject: Subject) -> tuple[int, int]:
    """``(n_layers, d_ff)``: the value vectors are ``n_layers * d_ff`` columns."""
    return subject.anatomy.n_layers, subject.anatomy.ref(0, "down").shape[1]


def vectors_by_layer(subject: Subject, vectors: Iterable[Vector]) -> dict[int, list[int]]:
    """The ``down`` columns of ``vectors`` per layer, each checked to exist (one line, exit 2, if not)."""
    by_layer: dict[int, list[int]] = defaultdict(list)
    for layer, j in vectors:
        width = subject.anatomy.ref(layer, "down").shape[1]
        if not 0 <= j < width:
            raise InputError(f"value vector {j} of layer {layer} does not exist; down has {width} columns")
        by_layer[int(layer)].append(int(j))
    return by_layer


@contextlib.contextmanager
def masked(subject: Subject, vectors: Iterable[Vector]) -> Iterator[None]:
    """Zero the given value vectors for the duration of the block; restore them exactly."""
    by_layer = vectors_by_layer(subject, vectors)
    views, saved = [], []
    try:
        for layer, cols in by_layer.items():
            view = subject.anatomy.weight(layer, "down")
            idx = sorted(set(cols))
            saved.append((view, idx, view[:, idx].clone()))
            view[:, idx] = 0
            views.append(view)
        yield
    finally:
        for view, idx, original in saved:
            view[:, idx] = original


def random_vectors(subject: Subject, k: int, seed: int, draw: int) -> list[Vector]:
    """``k`` distinct value vectors drawn uniformly over all layers, from ``(seed, k, draw)``.

    The same ``(seed, k, draw)`` gives the same mask for every concept, so
    concepts are compared against one shared baseline.
    """
    n_layers, d_ff = n_vectors(subject)
    flat = np.random.default_rng([seed, k, draw]).choice(n_layers * d_ff, size=k, replace=False)
    return [(int(i) // d_ff, int(i) % d_ff) for i in flat]
