"""Predicted maps: a first-order map of every mutant from one backward pass per probe, the cheap
scores the field uses to say where important parameters are, their measured agreement with an
exact screen, and screens that run the most promising tiles first (docs/methods.md, "Predicted
maps").

* :mod:`.tilesums`: gradients reduced to tile sums as they arrive (never the whole model's);
* :mod:`.scores`: the predicted effects and the cheap scores of every mutant;
* :mod:`.local`: the local estimate, exact through the mutated block's first nonlinearity;
* :mod:`.agreement`: how well each score predicts the exact screen, and recall curves;
* :mod:`.order`: the chunk order of a screen in predicted order, and its expected coverage.
"""

from .agreement import agreement, recall_curve
from .order import (
    ORDER_BY,
    ORDERS,
    Schedule,
    chunk_cost,
    chunk_priority,
    coverage,
    ordering_estimate,
    predicted_order,
    schedule,
)
from .scores import COLUMNS, SCORES, first_order, predictions, superweight_mark
from .tilesums import GradientSums, gradient_sums, tile_sums

__all__ = [
    "COLUMNS",
    "ORDER_BY",
    "ORDERS",
    "GradientSums",
    "SCORES",
    "Schedule",
    "agreement",
    "chunk_cost",
    "chunk_priority",
    "coverage",
    "first_order",
    "gradient_sums",
    "ordering_estimate",
    "predicted_order",
    "predictions",
    "recall_curve",
    "schedule",
    "superweight_mark",
    "tile_sums",
]
