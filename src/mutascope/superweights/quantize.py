"""Round-to-nearest INT4 quantization, naive and super-weight aware.

The paper's point: one super weight in a quantization block stretches that
block's range, so round-to-nearest wipes out the block's other weights, and
clipping outliers to shrink the range destroys the super weight itself. Its
fix: clip every matrix at ``clip_z`` standard deviations, quantize, then put
the super weights back in full precision.

Quantization is asymmetric min-max, ``bits`` bits per weight, per block of
``block_size`` consecutive weights along each row's input dimension (a
ragged last block is smaller). Only the mutable matrices (anatomy) are
quantized; embeddings, ``lm_head`` and norms stay as they are. The model is
quantized in place and restored bit-identically on exit, so no copy of the
model is needed (only of its matrices).
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterable, Iterator

import torch

from mutascope.errors import MutascopeError
from mutascope.subject import Subject

from .ablate import Coord, _check


def rtn(w: torch.Tensor, block_size: int = 64, bits: int = 4) -> torch.Tensor:
    """Quantize-dequantize a 2-D weight (rows, cols) blockwise along cols; float32 result."""
    if block_size < 1:
        raise MutascopeError(f"block size must be >= 1, got {block_size}")
    if not 1 <= bits <= 16:
        raise MutascopeError(f"bits must be in 1..16, got {bits}")
    rows, cols = w.shape
    n_blocks = math.ceil(cols / block_size)
    x = w.float()
    pad = n_blocks * block_size - cols
    if pad:
        # Repeat the row's last element so padding never widens a block's range.
        x = torch.cat([x, x[:, -1:].expand(rows, pad)], dim=1)
    x = x.reshape(rows, n_blocks, block_size)
    lo, hi = x.amin(-1, keepdim=True), x.amax(-1, keepdim=True)
    levels = 2**bits - 1
    scale = ((hi - lo) / levels).clamp_min(torch.finfo(torch.float32).tiny)
    zero = torch.round(-lo / scale)
    q = torch.clamp(torch.round(x / scale) + zero, 0, levels)
    return ((q - zero) * scale).reshape(rows, -1)[:, :cols]


def clip_z(w: torch.Tensor, z: float) -> torch.Tensor:
    """``w`` clamped to mean +- z standard deviations of the whole matrix."""
    x = w.float()
    mu, sd = x.mean(), x.std()
    return x.clamp(float(mu - z * sd), float(mu + z * sd))


@contextlib.contextmanager
def quantized(
    subject: Subject,
    block_size: int = 64,
    *,
    bits: int = 4,
    clip: float | None = None,
    keep: Iterable[Coord] = (),
) -> Iterator[None]:
    """All mutable matrices quantized in place for the duration of the block.

    ``clip`` (z-score) clips each matrix before quantizing; ``keep`` lists
    ``down`` elements ``(layer, row, col)`` written back at full precision
    afterwards (the super weights). Naive RTN is ``clip=None, keep=()``.
    """
    if clip is not None and not (clip > 0 and math.isfinite(clip)):
        raise MutascopeError(f"clip z-score must be a positive number, got {clip}")
    keep = _check(subject, keep)
    anatomy = subject.anatomy
    saved: list[tuple[torch.Tensor, torch.Tensor]] = []
    try:
        for ref in anatomy.refs():
            view = anatomy.weight(ref.layer, ref.matrix)
            original = view.clone()
            saved.append((view, original))
            w = clip_z(original, clip) if clip is not None else original
            view.copy_(rtn(w, block_size, bits).to(view.dtype))
            for layer, r, c in keep:
                if (layer, "down") == (ref.layer, ref.matrix):
                    view[r, c] = original[r, c]
        yield
    finally:
        for view, original in saved:
            view.copy_(original)
