"""Round-to-nearest weight quantization (INT4, INT3, ...), naive and super-weight aware.

The paper's point: one super weight in a quantization block stretches that
block's range, so round-to-nearest wipes out the block's other weights, and
clipping outliers to shrink the range destroys the super weight itself. Its
fix: clip every matrix at ``clip_z`` standard deviations, quantize, then put
the super weights back in full precision. The larger the block, the more
weights share a range an outlier stretches, so the paper's claim is that
the fix matters more, and lets much larger blocks work, as blocks grow.

Quantization is asymmetric min-max, ``bits`` bits per weight, per block of
``block_size`` consecutive weights along each row's input dimension (a
ragged last block is smaller); :data:`PER_ROW` makes a row one block and
:data:`PER_TENSOR` the whole matrix one block (one scale per matrix). Only
the mutable matrices (anatomy) are quantized; embeddings, ``lm_head`` and
norms stay as they are. The model is quantized in place and restored
bit-identically on exit, so no copy of the model is needed (only of its
matrices).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator

import torch

from ..errors import InputError
from ..model.subject import Subject
from .ablate import Coord, _check

PER_ROW = "per-row"  # a block is one whole row (one scale per output channel)
PER_TENSOR = "per-tensor"  # a block is the whole matrix (one scale per matrix)


def _check_block(block_size) -> None:
    if block_size in (PER_ROW, PER_TENSOR):
        return
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise InputError(f"block size must be an integer >= 1, {PER_ROW} or {PER_TENSOR}, got {block_size!r}")


def parse_blocks(spec: str | int) -> tuple:
    """``64``, ``64,128,per-row,per-tensor`` -> block sizes, de-duplicated, smallest first
    (integers ascending, then per-row, then per-tensor)."""
    parts = [p.strip() for p in str(spec).split(",")]
    if not any(parts) or not all(parts):
        raise InputError(f"bad --block-size {spec!r}: give integers >= 1, {PER_ROW} or {PER_TENSOR}, comma-separated")
    blocks: set = set()
    for part in parts:
        word = part.lower()
        if word in (PER_ROW, PER_TENSOR):
            blocks.add(word)
            continue
        try:
            value = int(part)
        except ValueError:
            raise InputError(f"bad --block-size {part!r}: give integers >= 1, {PER_ROW} or {PER_TENSOR}") from None
        if value < 1:
            raise InputError(f"bad --block-size {part!r}: a block holds at least 1 weight")
        blocks.add(value)
    order = {PER_ROW: 1, PER_TENSOR: 2}
    return tuple(sorted(blocks, key=lambda b: (order.get(b, 0), b if isinstance(b, int) else 0)))


def parse_bits(spec: str | int, what: str = "--bits", lo: int = 2, hi: int = 8) -> tuple[int, ...]:
    """``4`` or ``4,3`` -> bit widths in [lo, hi], de-duplicated, widest first."""
    parts = [p.strip() for p in str(spec).split(",")]
    if not any(parts) or not all(parts):
        raise InputError(f"bad {what} {spec!r}: give integers in {lo}..{hi}, comma-separated")
    out = set()
    for part in parts:
        try:
            value = int(part)
        except ValueError:
            raise InputError(f"bad {what} {part!r}: give integers in {lo}..{hi}") from None
        if not lo <= value <= hi:
            raise InputError(f"bad {what} {part!r}: must be in {lo}..{hi}")
        out.add(value)
    return tuple(sorted(out, reverse=True))


def block_label(block_size) -> str:
    """How a block size is shown and stored: ``64``, ``per-row``, ``per-tensor``."""
    return str(block_size)


def rtn(w: torch.Tensor, block_size=64, bits: int = 4) -> torch.Tensor:
    """Quantize-dequantize a 2-D weight (rows, cols) blockwise along cols; float32 result.

    ``block_size`` is weights per block along a row, :data:`PER_ROW` or
    :data:`PER_TENSOR` (the whole tensor shares one range).
    """
    _check_block(block_size)
    if not 1 <= bits <= 16:
        raise InputError(f"bits must be in 1..16, got {bits}")
    if block_size == PER_TENSOR:
        return rtn(w.reshape(1, -1), w.numel(), bits).reshape(w.shape)
    rows, cols = w.shape
    if block_size == PER_ROW:
        block_size = cols
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
    block_size=64,
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
        raise InputError(f"clip z-score must be a positive number, got {clip}")
    _check_block(block_size)
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
