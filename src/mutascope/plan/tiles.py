"""The tile grid of a matrix: aligned ``h x w`` blocks, ragged edge tiles kept (smaller, never dropped)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


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
            raise InputError(f"tile ({row}, {col}) is outside a {self.n_rows}x{self.n_cols} tile grid")
        h, w = self.tile
        return row * h, min((row + 1) * h, self.shape[0]), col * w, min((col + 1) * w, self.shape[1])
