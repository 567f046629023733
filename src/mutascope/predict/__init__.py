"""Predicted maps: a first-order map of every mutant from one backward pass per probe, the cheap
scores the field uses to say where important parameters are, their measured agreement with an
exact screen, and screens that run the most promising tiles first (docs/methods.md, "Predicted
maps")."""

from .scores import COLUMNS, SCORES, first_order, predictions
from .tilesums import GradientSums, gradient_sums, tile_sums

__all__ = ["COLUMNS", "GradientSums", "SCORES", "first_order", "gradient_sums", "predictions", "tile_sums"]
