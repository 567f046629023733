"""Plans and shards: which tiles of which matrices to mutate, how, and in what order.

A :class:`PlanSpec` is a plain, JSON-able selection (layers, matrices, tile
rows/columns, kinds, tile size). Built against a model's anatomy it becomes a
:class:`Plan`: the mutations in the paper's order (layer, matrix, then column
outer, row inner, then kind), numbered from 0. The order is deterministic, so
a plan can be split into shards and a stopped screen resumed by mutation id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

from ..errors import InputError
from ..model.source import MATRICES, stated_layers
from .kinds import Kind, check_representable, kind_value
from .mutation import Mutation
from .parse import parse_indices, parse_kinds, parse_names, parse_tile
from .tiles import TileGrid

TYPE_CHECKING = False
if TYPE_CHECKING:  # the anatomy module imports torch; a PlanSpec is parsed without it
    from ..model.anatomy import Anatomy

# Shard boundaries are multiples of this many plan positions: the batched
# engine's default chunk size, and a multiple of every other engine's.
SHARD_BLOCK = 256


@dataclass(frozen=True)
class PlanSpec:
    """A selection of mutations, independent of any model. ``None`` = all."""

    layers: tuple[int, ...] | None = None
    matrices: tuple[str, ...] | None = None
    rows: tuple[int, ...] | None = None
    cols: tuple[int, ...] | None = None
    kinds: tuple[Kind, ...] = field(default_factory=lambda: (Kind("max"), Kind("min")))
    tile: tuple[int, int] = (64, 64)

    @classmethod
    def parse(
        cls,
        layers: str | Sequence[int] | None = None,
        matrices: str | Sequence[str] | None = None,
        rows: str | Sequence[int] | None = None,
        cols: str | Sequence[int] | None = None,
        kinds: str | Sequence[str] = "max,min",
        tile: str | int | Sequence[int] = 64,
    ) -> PlanSpec:
        return cls(
            layers=parse_indices(layers, "layer"),
            matrices=parse_names(matrices),
            rows=parse_indices(rows, "row"),
            cols=parse_indices(cols, "column"),
            kinds=parse_kinds(kinds),
            tile=parse_tile(tile),
        )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["kinds"] = [str(k) for k in self.kinds]
        for key in ("layers", "matrices", "rows", "cols", "tile"):
            if d[key] is not None:
                d[key] = list(d[key])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> PlanSpec:
        def tup(v):
            return None if v is None else tuple(v)

        return cls(
            layers=tup(d.get("layers")),
            matrices=tup(d.get("matrices")),
            rows=tup(d.get("rows")),
            cols=tup(d.get("cols")),
            kinds=tuple(Kind.parse(k) for k in d["kinds"]),
            tile=tuple(d["tile"]),
        )


@dataclass(kw_only=True, frozen=True)
class Plan:
    """The ordered mutations of a spec on one model."""

    spec: PlanSpec
    mutations: tuple[Mutation, ...]
    grids: dict[tuple[int, str], TileGrid]

    def __len__(self) -> int:
        return len(self.mutations)

    def __iter__(self):
        return iter(self.mutations)

    def shard(self, index: int, count: int) -> tuple[Mutation, ...]:
        """Shard ``index`` of ``count``: a contiguous run of mutation ids.

        Contiguous shards keep mutations of one layer together, which the
        batched engine exploits. Boundaries fall on multiples of
        :data:`SHARD_BLOCK` plan positions, the chunk grid every screen uses,
        so a shard's chunks are exactly the unsharded screen's and merged
        shards record bit-identical numbers; sizes differ by at most one block.
        """
        if count < 1 or not 0 <= index < count:
            raise InputError(f"bad shard {index}/{count}: need 0 <= index < count")
        n = len(self.mutations)
        blocks = -(-n // SHARD_BLOCK)
        if count > blocks:
            raise InputError(
                f"{count} shards is too many for {n} mutants: shards are whole blocks of {SHARD_BLOCK}, "
                f"so use at most {blocks}"
            )
        lo = min(n, blocks * index // count * SHARD_BLOCK)
        hi = min(n, blocks * (index + 1) // count * SHARD_BLOCK)
        return self.mutations[lo:hi]

    def summary(self) -> dict[str, int]:
        """Counts of tiles and mutants by matrix, for ``mutascope plan``."""
        out: dict[str, int] = {}
        for m in self.mutations:
            out[m.matrix] = out.get(m.matrix, 0) + 1
        return out


def _select(available: Iterable[int], chosen: tuple[int, ...] | None) -> list[int]:
    available = list(available)
    return available if chosen is None else [i for i in chosen if i in set(available)]


def check_layers(spec: PlanSpec, n_layers: int) -> None:
    """Refuse a layer selection beyond a model of ``n_layers`` layers (one line)."""
    bad = [layer for layer in spec.layers or () if not 0 <= layer < n_layers]
    if bad:
        raise InputError(f"layer {bad[0]} is out of range: the model has layers 0-{n_layers - 1}")


def check_spec_source(spec: PlanSpec, source) -> None:
    """What can be checked of ``spec`` against the model ``source`` (a ``--model`` value) before
    it loads and before torch is imported: the source exists and the layers are in the range
    its config states (a hub id's layers are checked once it loads, in :func:`build_plan`)."""
    n_layers = stated_layers(source)
    if n_layers is not None:
        check_layers(spec, n_layers)


def build_plan(spec: PlanSpec, anatomy: Anatomy) -> Plan:
    """Enumerate the mutations of ``spec`` on a model, validating the selection.

    ``max``/``min`` values are read from the (unmutated) weights here, once
    per matrix. Row/column selections are clipped to each matrix's grid, since
    matrices of one model have different numbers of tiles.
    """
    check_layers(spec, anatomy.n_layers)
    layers = list(range(anatomy.n_layers)) if spec.layers is None else list(spec.layers)
    matrices = list(anatomy.matrices) if spec.matrices is None else list(spec.matrices)
    missing = [m for m in matrices if m not in anatomy.matrices]
    if missing:
        raise InputError(f"matrix {missing[0]!r} does not exist in this model: it has {', '.join(anatomy.matrices)}")
    matrices = [m for m in MATRICES if m in matrices]

    mutations: list[Mutation] = []
    grids: dict[tuple[int, str], TileGrid] = {}
    for layer in layers:
        for matrix in matrices:
            shape = anatomy.ref(layer, matrix).shape
            # A tile taller (or wider) than a matrix is just one clipped edge tile;
            # one exceeding it both ways cannot be a tile of it at all.
            if spec.tile[0] > shape[0] and spec.tile[1] > shape[1]:
                raise InputError(
                    f"tile {spec.tile[0]}x{spec.tile[1]} is larger than matrix layer {layer} {matrix} "
                    f"({shape[0]}x{shape[1]}): choose a smaller --tile"
                )
            grid = TileGrid(shape, spec.tile)
            grids[(layer, matrix)] = grid
            weight = anatomy.weight(layer, matrix)
            values = {kind: kind_value(kind, weight) for kind in spec.kinds}
            for kind, value in values.items():
                check_representable(kind, value, weight, spec.tile[0] * spec.tile[1], f"layer {layer} {matrix}")
            for col in _select(range(grid.n_cols), spec.cols):
                for row in _select(range(grid.n_rows), spec.rows):
                    r0, r1, c0, c1 = grid.bounds(row, col)
                    for kind in spec.kinds:
                        mutations.append(
                            Mutation(
                                mutation_id=len(mutations),
                                layer=layer,
                                matrix=matrix,
                                row=row,
                                col=col,
                                kind=kind,
                                value=values[kind],
                                r0=r0,
                                r1=r1,
                                c0=c0,
                                c1=c1,
                            )
                        )
    if not mutations:
        raise InputError("the plan is empty: no tile matches the selected rows/columns; widen --rows/--cols")
    return Plan(spec=spec, mutations=tuple(mutations), grids=grids)
