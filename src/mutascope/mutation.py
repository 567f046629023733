"""Sites, kinds and mutations: what one mutant changes, and how to apply it.

A mutation sets every element of one tile of one matrix to a value (``max``,
``min``, ``zero``, ``value:X``) or scales it (``scale:X``). ``max`` and
``min`` are taken from the whole *unmutated* matrix, once. Tiles are aligned
``h x w`` blocks; those at a ragged edge are smaller, never dropped.

Two families of kinds are controls for what the screen's kinds confound
(docs/methods.md, "Controls"). With ``a = max(|max|, |min|)`` of the matrix:

* ``sym:X`` writes ``X * a``: ``sym:1`` and ``sym:-1`` are the size-matched
  pair (the two signs of one size, where ``max`` and ``min`` differ in size
  as well as in sign), and ``sym:X`` over several X is a dose-response
  sweep of the written value. ``sym`` alone in a kind list means both.
* ``noise:X`` *adds* a random Gaussian tile scaled to root-mean-square
  ``X * a`` exactly (the Frobenius norm of a constant tile of ``X * a``):
  ``noise:1`` is a random tile of matched norm, a small X (``noise:0.001``)
  the noise floor of the NSM call. The noise is a pure function of the
  mutation's site and kind (seeded by their hash), so every engine, worker
  and rerun writes the same numbers.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from dataclasses import dataclass
from typing import Iterator

import torch

from .errors import MutascopeError

BASE_KINDS = ("max", "min", "zero")
PARAMETRIC = ("value", "scale", "sym", "noise")  # kinds written NAME:X


@dataclass(frozen=True, order=True)
class Kind:
    """What a mutation writes: ``max``, ``min``, ``zero``, ``value:X``, ``scale:X``, or the
    controls ``sym:X`` and ``noise:X`` (module docstring)."""

    name: str
    x: float | None = None

    @classmethod
    def parse(cls, text: str) -> "Kind":
        text = text.strip()
        if text in BASE_KINDS:
            return cls(text)
        head, sep, arg = text.partition(":")
        if sep and head in PARAMETRIC:
            try:
                x = float(arg)
            except ValueError:
                raise MutascopeError(f"kind {text!r}: {arg!r} is not a number") from None
            if not math.isfinite(x):
                raise MutascopeError(f"kind {text!r}: the number must be finite")
            if head == "noise" and x <= 0:
                raise MutascopeError(f"kind {text!r}: the noise scale must be above 0, e.g. noise:0.001")
            return cls(head, x)
        raise MutascopeError(f"unknown kind {text!r}: use max, min, zero, value:X, scale:X, sym:X or noise:X")

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
    """The number a kind writes into (or scales, or the noise's RMS for) a tile of ``weight``."""
    if kind.name == "max":
        return float(weight.max().item())
    if kind.name == "min":
        return float(weight.min().item())
    if kind.name == "zero":
        return 0.0
    assert kind.x is not None
    if kind.name in ("sym", "noise"):
        return kind.x * max(abs(float(weight.max().item())), abs(float(weight.min().item())))
    return kind.x


def noise_tile(shape: tuple[int, ...], rms: float, site: tuple[int, str, int, int], kind: Kind) -> torch.Tensor:
    """The ``noise:X`` perturbation of one tile: Gaussian, scaled to root-mean-square ``rms``
    exactly, seeded by the site and kind alone (float32, on the CPU)."""
    key = hashlib.sha256(f"{site[0]}.{site[1]}.{site[2]}.{site[3]}:{kind}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") & (2**63 - 1))
    z = torch.randn(shape, generator=gen, dtype=torch.float64)
    return (z * (rms * math.sqrt(z.numel()) / float(z.norm()))).to(torch.float32)


def mutated_tile(original: torch.Tensor, kind: Kind, value: float,
                 site: tuple[int, str, int, int] | None = None) -> torch.Tensor:
    """The new contents of a tile whose unmutated contents are ``original`` (``site``, the
    mutation's (layer, matrix, row, col), seeds ``noise:X``)."""
    if kind.name == "scale":
        return original * value
    if kind.name == "noise":
        if site is None:
            raise ValueError("noise kinds need the mutation's site to seed their noise")
        noise = noise_tile(tuple(original.shape), value, site, kind).to(original.device)
        return (original.to(torch.float32) + noise).to(original.dtype)
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
        tile.copy_(mutated_tile(saved, mutation.kind, mutation.value, mutation.site))
        yield
    finally:
        tile.copy_(saved)
