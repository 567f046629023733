"""Gradients reduced to tile sums as they arrive: a first-order map of the whole model.

The first-order change of a differentiable objective L when tile T of a
matrix W is set to new contents V is

    dL ~ sum over T of g * (V - W),    g = dL/dW,

and for every kind mutascope writes, V is a constant c (``max min zero
value sym``) or x * W (``scale``), so per tile and objective two sums are
all it needs: ``sum g`` and ``sum g * W`` (the constant's term is
c * sum g - sum g * W, the scale's (x - 1) * sum g * W). A third,
``sum |g * W|``, is the activation score of arXiv 2405.17799 pooled per tile.

Each weight's gradient is reduced to these tile sums the moment autograd has
accumulated it (a post-accumulate-grad hook) and then dropped, so the whole
model's gradients are never held at once: peak memory is an inference pass's
plus the activations one backward pass keeps, plus one matrix's gradient.
Only the parameters holding the catalogued matrices are differentiated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..engine.base import one_thread
from ..model.gradients import gradients_on

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


Key = tuple[int, str]


def tile_sums(t: torch.Tensor, tile: tuple[int, int]) -> np.ndarray:
    """Sums of ``t`` (out, in) over each aligned ``tile`` block (ragged edge blocks hold
    what is there), accumulated in float64 without a float64 copy of ``t``, as a
    (tile rows, tile cols) array."""
    h, w = tile
    rows, cols = t.shape
    nr, nc = -(-rows // h), -(-cols // w)
    out = np.zeros((nr, nc))
    fr, fc = rows // h, cols // w  # the full tiles, then the ragged last row and column of tiles
    for r_slice, c_slice, r_out, c_out in (
        (slice(0, fr * h), slice(0, fc * w), slice(0, fr), slice(0, fc)),
        (slice(fr * h, rows), slice(0, fc * w), slice(fr, nr), slice(0, fc)),
        (slice(0, fr * h), slice(fc * w, cols), slice(0, fr), slice(fc, nc)),
        (slice(fr * h, rows), slice(fc * w, cols), slice(fr, nr), slice(fc, nc)),
    ):
        block = t[r_slice, c_slice]
        if block.numel() == 0:
            continue
        nrows, ncols = r_out.stop - r_out.start, c_out.stop - c_out.start
        bh, bw = block.shape[0] // nrows, block.shape[1] // ncols
        out[r_out, c_out] = block.reshape(nrows, bh, ncols, bw).sum(dim=(1, 3), dtype=torch.float64).cpu().numpy()
    return out


def canonical(ref, tensor: torch.Tensor) -> torch.Tensor:
    """The canonical (out, in) part of a tensor shaped like ``ref``'s parameter."""
    n = ref.shape[0]
    if ref.transposed:
        return tensor[:, ref.offset : ref.offset + n].T
    return tensor[ref.offset : ref.offset + n]


@dataclass
class GradientSums:
    """Per (layer, matrix): tile sums of g, g * W and |g * W| for one objective."""

    g: dict[Key, np.ndarray] = field(default_factory=dict)
    gw: dict[Key, np.ndarray] = field(default_factory=dict)
    agw: dict[Key, np.ndarray] = field(default_factory=dict)
    value: float = 0.0  # the objective's value


def gradient_sums(
    subject: Subject, objective: Callable[[], torch.Tensor], tile: tuple[int, int], matrices: set[Key] | None = None
) -> GradientSums:
    """Run ``objective()`` (a scalar built by a forward pass) backward once, reducing each
    matrix's gradient to :class:`GradientSums` as it is accumulated.

    On one thread, so that the sums never depend on the thread count; every
    ``requires_grad`` flag and ``.grad`` is restored afterwards.
    """
    anatomy = subject.anatomy
    by_param: dict[str, list] = {}
    for ref in anatomy.refs():
        if matrices is None or (ref.layer, ref.matrix) in matrices:
            by_param.setdefault(ref.param_name, []).append(ref)
    out = GradientSums()

    def reduce(param: torch.Tensor, refs) -> None:
        if param.grad is None:
            raise RuntimeError(f"{refs[0].param_name}: the backward pass left no gradient")
        grad = param.grad.detach()
        for ref in refs:
            g = canonical(ref, grad)
            gw = g * canonical(ref, param.detach())  # one temporary in the weight's dtype; sums in float64
            key = (ref.layer, ref.matrix)
            out.g[key], out.gw[key] = tile_sums(g, tile), tile_sums(gw, tile)
            out.agw[key] = tile_sums(gw.abs_(), tile)
            del gw
        param.grad = None  # the next matrix's gradient reuses the memory

    handles = []
    with gradients_on(subject) as params, torch.enable_grad(), one_thread():
        try:
            for name, p in params.items():
                if name in by_param:
                    handles.append(
                        p.register_post_accumulate_grad_hook(lambda param, refs=by_param[name]: reduce(param, refs))
                    )
                else:
                    p.requires_grad_(False)
            value = objective()
            value.backward()
            out.value = float(value.detach())
        finally:
            for h in handles:
                h.remove()
    return out
