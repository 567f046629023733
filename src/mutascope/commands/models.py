"""``mutascope models``: every mutable matrix of a model, its shape and tile counts."""

from __future__ import annotations

from rich.table import Table

from .common import DeviceOpt, DtypeOpt, ModelOpt, TileOpt, load_subject, out


def models(model: str | None = ModelOpt, dtype: str = DtypeOpt, device: str = DeviceOpt, tile: str = TileOpt) -> None:
    """List every mutable matrix of a model with its shape and tile counts."""
    from ..plan import TileGrid, parse_tile

    size = parse_tile(tile)
    subject = load_subject(model, dtype, device)
    anatomy = subject.anatomy
    table = Table(title=f"{subject.model_id} ({anatomy.family}, {anatomy.n_layers} layers, tile {size[0]}x{size[1]})")
    for col in ("layer", "matrix", "weight", "shape (out x in)", "tile grid", "tiles"):
        table.add_column(col)
    total = 0
    for ref in anatomy.refs():
        grid = TileGrid(ref.shape, size)
        total += len(grid)
        table.add_row(
            str(ref.layer),
            ref.matrix,
            ref.param_name,
            f"{ref.shape[0]}x{ref.shape[1]}",
            f"{grid.n_rows}x{grid.n_cols}",
            str(len(grid)),
        )
    out.print(table)
    out.print(f"{len(anatomy.refs())} matrices, {total} tiles")
