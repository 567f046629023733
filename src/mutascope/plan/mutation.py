"""One mutant (:class:`Mutation`: a tile of a matrix, or any rectangle inside one, and its kind)
and :func:`applied`, which writes it into the weights and restores them in ``finally``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from .kinds import Kind, mutated_tile

TYPE_CHECKING = False
if TYPE_CHECKING:
    import torch


@dataclass(kw_only=True, frozen=True)
class Mutation:
    """One mutant: tile (row, col) of ``matrix`` in ``layer`` set by ``kind``.

    ``row``/``col`` are in tile units; ``r0:r1, c0:c1`` are the element bounds
    in the canonical (output feature, input feature) matrix. ``value`` is the
    number written (max, min, 0, X) or, for ``scale:X``, the factor X.

    A mutation may cover any rectangle of the matrix (``mutascope zoom``'s
    sub-blocks, down to one weight): ``r0:r1, c0:c1`` are then its bounds,
    ``row``/``col`` the tile holding its first element, and ``subtile`` is
    true, so that ``noise:X`` is seeded by the bounds too (two regions of one
    tile get independent noise; a whole tile keeps its screen's seed).
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
    subtile: bool = False

    @property
    def height(self) -> int:
        return self.r1 - self.r0

    @property
    def width(self) -> int:
        return self.c1 - self.c0

    @property
    def site(self) -> tuple[int, str, int, int]:
        return (self.layer, self.matrix, self.row, self.col)

    @property
    def seed(self) -> tuple:
        """What seeds ``noise:X``: the tile's site, or for a sub-tile region its element bounds too."""
        if not self.subtile:
            return self.site
        return (self.layer, self.matrix, f"{self.r0}:{self.r1}", f"{self.c0}:{self.c1}")

    def label(self) -> str:
        if self.subtile:
            return f"L{self.layer}.{self.matrix}[{self.r0}:{self.r1},{self.c0}:{self.c1}]:{self.kind}"
        return f"L{self.layer}.{self.matrix}[{self.row},{self.col}]:{self.kind}"


@contextlib.contextmanager
def applied(weight: torch.Tensor, mutation: Mutation) -> Iterator[None]:
    """Write ``mutation`` into the canonical ``weight`` view; restore it on exit.

    The original tile is copied first and copied back in ``finally``, so the
    weight is bit-identical afterwards even after an exception or Ctrl-C.
    """
    tile = weight[mutation.r0 : mutation.r1, mutation.c0 : mutation.c1]
    saved = tile.clone()
    try:
        tile.copy_(mutated_tile(saved, mutation.kind, mutation.value, mutation.seed))
        yield
    finally:
        tile.copy_(saved)
