"""Per-row tile deltas: many different mutants in one forward pass, no weight written.

A mutation changes tile ``r0:r1, c0:c1`` of a canonical ``(out, in)`` matrix
``W`` from ``W_t`` to ``V``. For any input ``x`` the mutated projection is
``x @ W.T + x[..., c0:c1] @ (V - W_t).T`` added into output features
``offset + r0 : offset + r1`` (``offset`` places a part inside a fused
q|k|v or gate|up weight). That identity holds whatever the storage (Linear
or GPT-2's transposed Conv1D), so a forward hook on the module can give each
batch row its own mutant while every row shares the unmutated weights.

In float32 the two sides of that identity differ in the last bits only. In
bfloat16 or float16 they do not: the module rounds ``x @ W.T`` to the low
precision and adding the delta rounds again, while the reference engine
rounds ``x @ W'.T`` once. On a tiny bfloat16 Llama that double rounding moved
logits by up to 0.18 (against 0.03 for every other difference between the
engines together), enough to put many decisions near a tie. For low-precision
weights the hook therefore recomputes the touched output features from the
*written* rows ``W'[r0:r1, :]``, in the weight's dtype, with the module's own
bias: the same numbers and the same operation as the reference engine's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..model.anatomy import Anatomy
from ..plan.kinds import mutated_tile
from ..plan.mutation import Mutation


@dataclass(frozen=True)
class TileDelta:
    """What one mutant adds at one module: ``x[..., cols] @ delta.T`` into ``rows``."""

    module_path: str
    out0: int  # first output feature of the module touched (offset + r0)
    out1: int
    c0: int
    c1: int
    delta: torch.Tensor  # (out1 - out0, c1 - c0), float32
    rows: torch.Tensor | None = None  # (out1 - out0, in): the written rows, in the weight's dtype (low precision only)
    bias: torch.Tensor | None = None  # the module's bias over out0:out1, when ``rows`` is set

    @classmethod
    def of(cls, anatomy: Anatomy, mutation: Mutation) -> TileDelta:
        """The delta of ``mutation``, with the mutated tile rounded to the weight's dtype.

        The tile is built with :func:`mutated_tile` in the weight's own dtype,
        exactly as the reference engine writes it, so both engines mutate to
        the same numbers; only the difference is then taken in float32.
        """
        ref = anatomy.ref(mutation.layer, mutation.matrix)
        original = anatomy.weight(mutation.layer, mutation.matrix)[mutation.r0 : mutation.r1, mutation.c0 : mutation.c1]
        new = mutated_tile(original, mutation.kind, mutation.value, mutation.seed)
        delta = new.to(torch.float32) - original.to(torch.float32)
        out0, out1 = ref.offset + mutation.r0, ref.offset + mutation.r1
        rows = bias = None
        if original.dtype.itemsize < 4:  # see the module docstring: recompute rather than add
            rows = anatomy.weight(mutation.layer, mutation.matrix)[mutation.r0 : mutation.r1].clone()
            rows[:, mutation.c0 : mutation.c1] = new
            module_bias = getattr(anatomy.model.get_submodule(ref.module_path), "bias", None)
            bias = None if module_bias is None else module_bias.detach()[out0:out1].clone()
        return cls(ref.module_path, out0, out1, mutation.c0, mutation.c1, delta, rows, bias)


def _add_deltas(entries: list[tuple[int, TileDelta]], batch: int):
    """A forward hook adding each row's delta into the module's output, in place.

    Inputs and outputs are viewed as (batch, positions, features): some models
    (OPT's MLP) flatten batch and positions before a projection.
    """

    def hook(module, args, output):
        x = args[0].reshape(batch, -1, args[0].shape[-1])
        out = output.view(batch, -1, output.shape[-1])
        for row, d in entries:
            y = out[row, :, d.out0 : d.out1]
            if d.rows is not None:  # low precision: the written rows, as the module computes them
                y.copy_(torch.nn.functional.linear(x[row], d.rows, d.bias))
                continue
            extra = x[row, :, d.c0 : d.c1].to(torch.float32) @ d.delta.T
            if y.dtype == torch.float32:
                y.add_(extra)
            else:  # add in float32, round once
                y.copy_(y.to(torch.float32) + extra)
        return output

    return hook


@contextlib.contextmanager
def row_deltas(
    model: torch.nn.Module, deltas: Sequence[TileDelta | None], computing: Sequence[int] | None = None
) -> Iterator[None]:
    """While active, batch row ``b`` of every forward pass runs mutant ``deltas[b]``.

    ``None`` rows run the unmutated model. ``computing[b]``, if given, is how
    many rows (the first ones) the block of row ``b``'s module computes, where
    rows start at different blocks (:func:`.prefix.rows_starting_at`); by
    default every row. Hooks are removed on exit, whatever happens; no
    parameter is ever touched.
    """
    by_module: dict[str, list[tuple[int, TileDelta]]] = {}
    batch: dict[str, int] = {}
    for row, d in enumerate(deltas):
        if d is not None:
            by_module.setdefault(d.module_path, []).append((row, d))
            batch[d.module_path] = len(deltas) if computing is None else computing[row]
    handles = []
    try:
        for path, entries in by_module.items():
            handles.append(model.get_submodule(path).register_forward_hook(_add_deltas(entries, batch[path])))
        yield
    finally:
        for h in handles:
            h.remove()
