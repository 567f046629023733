"""Activation quantization with and without the super activation held in full precision.

The paper's other quantization experiment: round-to-nearest of the
*activations* per tensor (one range per tensor, so W16A8 means 16-bit
weights and 8-bit activations). A super activation is hundreds to
thousands of times larger than the other values of its tensor, so a
per-tensor range stretched to hold it leaves almost no levels for
everything else. Holding it out -- quantizing the rest with a range that
ignores it, then putting it back exactly -- is the paper's fix.

What is quantized: the input of every mutable projection (``q k v o gate
up down``) of every layer, on every forward call, asymmetric min-max RTN
over the whole tensor (:func:`.quantize.rtn` with ``per-tensor``, the same
rounding as the weights). Embeddings, norms and the LM head see full
precision. The weights are never touched; forward pre-hooks replace each
input by its quantized copy, and are removed in ``finally``.

Which values are held (project decision; the paper names "the super
activation" only): the *candidate channels* are the residual channels a
super weight writes (its row; they reach ``q k v gate up`` through the
norms) and, at each super weight's own layer, the ``down`` input channel
the super weight reads (its column, where the spike that makes the super
activation sits). In each quantized tensor an element of a candidate
channel is held exactly when its magnitude exceeds the largest magnitude of
every other channel of that tensor -- precisely the values that would set
the tensor's range -- so ordinary tokens of those channels are quantized
like everything else, and a tensor with no spike holds nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..model.subject import Subject
from .ablate import Coord, _check
from .export import READS
from .quantize import PER_TENSOR, rtn

__all__ = ["ActQuantStats", "activations_quantized", "hold_channels", "quantize_activation"]


@dataclass
class ActQuantStats:
    """What an :func:`activations_quantized` block did: tensors and elements quantized, elements held."""

    tensors: int = 0
    elements: int = 0
    held: int = 0


def hold_channels(
    subject: Subject, weights: Iterable[Coord], channels: Iterable[int] = ()
) -> dict[str, tuple[int, ...]]:
    """Module path -> candidate input channels (see the module docstring) for super weights ``weights``
    and extra residual ``channels`` (super activations)."""
    anatomy = subject.anatomy
    weights = _check(subject, weights)
    residual = {r for _, r, _ in weights} | {int(c) for c in channels}
    hold: dict[str, set[int]] = {}
    for ref in anatomy.refs():
        if ref.matrix in READS and residual:
            hold.setdefault(ref.module_path, set()).update(residual)
    for layer, _, col in weights:
        hold.setdefault(anatomy.ref(layer, "down").module_path, set()).add(col)
    return {path: tuple(sorted(c)) for path, c in hold.items()}


def quantize_activation(x: torch.Tensor, bits: int = 8, channels: Sequence[int] = ()) -> tuple[torch.Tensor, int]:
    """Per-tensor RTN of ``x`` (last dim = channels) with spikes in ``channels`` held; (result, held count).

    A held element is one of ``channels`` whose magnitude is above every
    other channel's largest; the range is computed without the held
    elements and they come back unchanged. Same dtype and shape as ``x``.
    """
    flat = x.reshape(-1, x.shape[-1])
    held = None
    chans = [c for c in channels if 0 <= c < flat.shape[1]]
    if chans and len(chans) < flat.shape[1]:
        idx = torch.tensor(chans, device=flat.device)
        others = torch.ones(flat.shape[1], dtype=torch.bool, device=flat.device)
        others[idx] = False
        ceiling = flat[:, others].abs().max()
        held = torch.zeros_like(flat, dtype=torch.bool)
        held[:, idx] = flat[:, idx].abs() > ceiling
        if not held.any():
            held = None
    work = flat
    if held is not None:
        work = torch.where(held, flat[~held].min(), flat)  # a value inside the others' range
    q = rtn(work, PER_TENSOR, bits)
    if held is not None:
        q = torch.where(held, flat.float(), q)
    return q.to(x.dtype).reshape(x.shape), int(held.sum()) if held is not None else 0


@contextlib.contextmanager
def activations_quantized(
    subject: Subject, bits: int = 8, hold: Mapping[str, Sequence[int]] | None = None
) -> Iterator[ActQuantStats]:
    """Every mutable projection's input quantized per tensor to ``bits`` bits inside the block.

    ``hold`` maps module paths to candidate channels (:func:`hold_channels`);
    None or empty is naive RTN. Yields running counts. Hooks are removed on
    exit, also after an error; weights are never written.
    """
    if not 2 <= bits <= 16:
        raise InputError(f"activation bits must be in 2..16, got {bits}")
    hold = dict(hold or {})
    stats = ActQuantStats()
    paths = sorted({r.module_path for r in subject.anatomy.refs()})
    unknown = set(hold) - set(paths)
    if unknown:
        raise InputError(f"not projections of this model: {', '.join(sorted(unknown))}")

    def make(path):
        channels = hold.get(path, ())

        def pre(module, args):
            q, n = quantize_activation(args[0], bits, channels)
            stats.tensors += 1
            stats.elements += q.numel()
            stats.held += n
            return (q, *args[1:])

        return pre

    with contextlib.ExitStack() as stack:
        for path in paths:
            handle = subject.model.get_submodule(path).register_forward_pre_hook(make(path))
            stack.callback(handle.remove)
        yield stats
