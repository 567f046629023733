"""Sites, kinds and mutations: what one mutant changes, and how to apply it.

A mutation sets every element of one tile of one matrix to a value (``max``,
``min``, ``zero``, ``value:X``) or scales it (``scale:X``). ``max`` and
``min`` are taken from the whole *unmutated* matrix, once. Tiles are aligned
``h x w`` blocks; those at a ragged edge are smaller, never dropped.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Iterator

import torch

from .errors import MutascopeError

BASE_KINDS = ("max", "min", "zero")


@dataclass(frozen=True, order=True)
class Kind:
    """What a mutation writes: ``max``, ``min``, ``zero``, ``value:X`` or ``scale:X``."""

    name: str
    x: float | None = None

    @classmethod
    def parse(cls, text: str) -> "Kind":
        text = text.strip()
        if text in BASE_KINDS:
            return cls(text)
        head, sep, arg = text.partition(":")
        if sep and head in ("value", "scale"):
            try:
                x = float(arg)
            except ValueError:
                raise MutascopeError(f"kind {text!r}: {arg!r} is not a number") from None
            if not math.isfinite(x):
                raise MutascopeError(f"kind {text!r}: the number must be finite")
            return cls(head, x)
        raise MutascopeError(f"unknown kind {text!r}: use max, min, zero, value:X or scale:X")

    def __str__(self) -> str:
        return self.name if self.x is None else f"{self.name}:{self.x:g}"


@dataclass(frozen=True)
class TileGrid:
    """The aligned tiles of a matrix of ``shape`` with tiles of ``tile`` (h, w)."""

    shape: tuple[int, int]
    tile: tuple[int, int]

    @property
    def n_rows(self) -> int:
        return -(-self.shape[0] // self.tile[0])

    @property
    def n_cols(self) -> int:
        return -(-self.shape[1] // self.tile[1])

    def __len__(self) -> int:
        return self.n_rows * self.n_cols

    def bounds(self, row: int, col: int) -> tuple[int, int, int, int]:
        """Element bounds ``(r0, r1, c0, c1)`` of tile (row, col), clipped at the edge."""
        if not (0 <= row < self.n_rows and 0 <= col < self.n_cols):
            raise MutascopeError(f"tile ({row}, {col}) is outside a {self.n_rows}x{self.n_cols} tile grid")
        h, w = self.tile
        return row * h, min((row + 1) * h, self.shape[0]), col * w, min((col + 1) * w, self.shape[1])


@dataclass(frozen=True)
class Mutation:
    """One mutant: tile (row, col) of ``matrix`` in ``layer`` set by ``kind``.

    ``row``/``col`` are in tile units; ``r0:r1, c0:c1`` are the element bounds
    in the canonical (output feature, input feature) matrix. ``value`` is the
    number written (max, min, 0, X) or, for ``scale:X``, the factor X.
    """

    mutation_id: int
    layer: int
    matrix: str
    row: int
    col: int
    kind: Kind
    value: float
    r0: int
    r1: int
    c0: int
    c1: int

    @property
    def height(self) -> int:
        return self.r1 - self.r0

    @property
    def width(self) -> int:
        return self.c1 - self.c0

    @property
    def site(self) -> tuple[int, str, int, int]:
        return (self.layer, self.matrix, self.row, self.col)

    def label(self) -> str:
        return f"L{self.layer}.{self.matrix}[{self.row},{self.col}]:{self.kind}"


def kind_value(kind: Kind, weight: torch.Tensor) -> float:
    """The number a kind writes into (or scales) a tile of ``weight``."""
    if kind.name == "max":
        return float(weight.max().item())
    if kind.name == "min":
        return float(weight.min().item())
    if kind.name == "zero":
        return 0.0
    assert kind.x is not None
    return kind.x


def mutated_tile(original: torch.Tensor, kind: Kind, value: float) -> torch.Tensor:
    """The new contents of a tile whose unmutated contents are ``original``."""
    if kind.name == "scale":
        return original * value
    return torch.full_like(original, value)


@contextlib.contextmanager
def applied(weight: torch.Tensor, mutation: Mutation) -> Iterator[None]:
    """Write ``mutation`` into the canonical ``weight`` view; restore it on exit.

    The original tile is copied first and copied back in ``finally``, so the
    weight is bit-identical afterwards even after an exception or Ctrl-C.
    """
    tile = weight[mutation.r0 : mutation.r1, mutation.c0 : mutation.c1]
    saved = tile.clone()
    try:
        tile.copy_(mutated_tile(saved, mutation.kind, mutation.value))
        yield
    finally:
        tile.copy_(saved)
