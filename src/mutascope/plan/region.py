"""Mutations of any rectangle of a matrix: an offset and a size, not a cell of the tile grid.

``mutascope zoom`` screens the sub-blocks of a tile, down to single weights.
A region mutant is an ordinary :class:`~.mutation.Mutation` whose bounds are
the rectangle's, so every engine runs it unchanged. What it writes follows
the tile's rule: ``max``/``min`` write the *whole matrix's* max/min (read
from the unmutated weights, as the plan does for tiles), ``zero``,
``value:X``, ``scale:X`` and ``sym:X`` carry over as they are, and ``noise:X``
draws noise of the same root-mean-square, seeded by the region's bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .kinds import Kind, check_representable, kind_value
from .mutation import Mutation
from .tiles import TileGrid

TYPE_CHECKING = False
if TYPE_CHECKING:  # the anatomy module imports torch; plan/ is imported without it
    from ..model.anatomy import Anatomy


@dataclass(frozen=True, order=True)
class Region:
    """Element bounds ``r0:r1, c0:c1`` of a rectangle in a canonical (out, in) matrix."""

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
    def size(self) -> int:
        return self.height * self.width

    def halves(self) -> dict[str, tuple[Region, Region]]:
        """The region cut in two along each axis it can be cut on: ``rows`` (top, bottom) when
        it is taller than one weight, ``cols`` (left, right) when wider; the first half takes
        the extra row or column of an odd size."""
        out = {}
        if self.height > 1:
            m = self.r0 + (self.height + 1) // 2
            out["rows"] = (Region(self.r0, m, self.c0, self.c1), Region(m, self.r1, self.c0, self.c1))
        if self.width > 1:
            m = self.c0 + (self.width + 1) // 2
            out["cols"] = (Region(self.r0, self.r1, self.c0, m), Region(self.r0, self.r1, m, self.c1))
        return out

    def __str__(self) -> str:
        return f"[{self.r0}:{self.r1},{self.c0}:{self.c1}]"

    @classmethod
    def parse(cls, text: str) -> Region:
        """A region as ``mutascope zoom`` prints it, ``[R0:R1,C0:C1]`` (brackets optional;
        element bounds in the matrix, ends exclusive), or one weight as ``R,C``."""
        body = text.strip().removeprefix("[").removesuffix("]").replace(" ", "")
        parts = body.split(",")
        try:
            if len(parts) == 2 and ":" not in body:
                r, c = int(parts[0]), int(parts[1])
                bounds = (r, r + 1, c, c + 1)
            elif len(parts) == 2 and all(p.count(":") == 1 for p in parts):
                (r0, r1), (c0, c1) = (p.split(":") for p in parts)
                bounds = (int(r0), int(r1), int(c0), int(c1))
            else:
                raise ValueError
        except ValueError:
            raise InputError(
                f"bad region {text!r}: use R0:R1,C0:C1 as zoom prints it "
                "(e.g. [507:508,90:91]) or ROW,COL for one weight"
            ) from None
        if min(bounds) < 0 or bounds[1] <= bounds[0] or bounds[3] <= bounds[2]:
            raise InputError(f"bad region {text!r}: bounds must be non-negative with each end after its start")
        return cls(*bounds)


def region_mutation(
    anatomy: Anatomy,
    layer: int,
    matrix: str,
    region: Region,
    kind: Kind,
    tile: tuple[int, int],
    mutation_id: int = 0,
    value: float | None = None,
) -> Mutation:
    """The mutant that sets ``region`` of ``matrix`` in ``layer`` by ``kind``.

    ``tile`` is the screen's tile size: the mutation's ``row``/``col`` name the
    tile holding the region's first element, and a region equal to that tile is
    the tile's own mutant (``subtile`` false). ``value`` defaults to the kind's
    value on the unmutated matrix; pass it when the weights may be mutated.
    """
    shape = anatomy.ref(layer, matrix).shape
    if not (0 <= region.r0 < region.r1 <= shape[0] and 0 <= region.c0 < region.c1 <= shape[1]):
        raise InputError(f"region {region} is outside matrix layer {layer} {matrix} ({shape[0]}x{shape[1]})")
    weight = anatomy.weight(layer, matrix)
    if value is None:
        value = kind_value(kind, weight)
        check_representable(kind, value, weight, region.size, f"layer {layer} {matrix}")
    grid = TileGrid((int(shape[0]), int(shape[1])), tile)
    row, col = region.r0 // tile[0], region.c0 // tile[1]
    whole = grid.bounds(row, col) == (region.r0, region.r1, region.c0, region.c1)
    return Mutation(
        mutation_id=mutation_id,
        layer=layer,
        matrix=matrix,
        row=row,
        col=col,
        kind=kind,
        value=value,
        r0=region.r0,
        r1=region.r1,
        c0=region.c0,
        c1=region.c1,
        subtile=not whole,
    )
