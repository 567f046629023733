"""The paper's ablations, each a context manager that restores the model exactly.

Every manager copies what it will overwrite before writing, and copies it
back in ``finally``, so the weights are bit-identical afterwards even after
an exception or Ctrl-C (the :func:`mutascope.plan.applied` pattern).
Coordinates are ``(layer, row, col)`` of the canonical ``down`` matrix.

Top-weight ablation rule (docs/methods.md, "2. Super weights", says "zero the top 1e-6
fraction of |w| in every matrix"): per matrix that rounds to zero elements for all but 7B-class
matrices, so the project zeroes the ``k = ceil(fraction * N)`` weights of
largest magnitude across *all* mutable matrices together (``N`` = their total
element count, embeddings / lm_head / norms excluded, as everywhere), leaving
the super weights out of the ranking. For SmolLM2-135M (~106 M mutable
weights) that is 107 weights; for Llama-7B it is ~6,500, close to the
paper's ~7,000.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterable, Iterator

import torch

from ..errors import InputError
from ..model.subject import Subject

Coord = tuple[int, int, int]  # (layer, row, col) in the canonical down matrix


def _check(subject: Subject, coords: Iterable[Coord]) -> list[Coord]:
    out = []
    for layer, row, col in coords:
        ref = subject.anatomy.ref(layer, "down")
        if not (0 <= row < ref.shape[0] and 0 <= col < ref.shape[1]):
            raise InputError(
                f"super weight ({layer}, {row}, {col}) is outside the {ref.shape[0]}x{ref.shape[1]} down matrix"
            )
        out.append((int(layer), int(row), int(col)))
    return out


@contextlib.contextmanager
def _elements(subject: Subject, items: list[tuple[int, str, int, int]], new_values) -> Iterator[None]:
    """Write ``new_values(old)`` into single elements ``(layer, matrix, row, col)``; restore on exit."""
    views = [subject.anatomy.weight(layer, matrix) for layer, matrix, _, _ in items]
    saved = [v[r, c].clone() for v, (_, _, r, c) in zip(views, items)]
    try:
        for v, (_, _, r, c), old in zip(views, items, saved):
            v[r, c] = new_values(old)
        yield
    finally:
        for v, (_, _, r, c), old in zip(views, items, saved):
            v[r, c] = old


@contextlib.contextmanager
def scaled(subject: Subject, coords: Iterable[Coord], factor: float) -> Iterator[None]:
    """Multiply the super weights by ``factor`` (0 zeroes them)."""
    if not math.isfinite(factor):
        raise InputError(f"scale factor must be finite, got {factor}")
    items = [(layer, "down", r, c) for layer, r, c in _check(subject, coords)]
    with _elements(subject, items, lambda old: old * factor):
        yield


def zeroed(subject: Subject, coords: Iterable[Coord]) -> contextlib.AbstractContextManager:
    """Set the super weights to zero."""
    return scaled(subject, coords, 0.0)


def top_weights(
    subject: Subject, fraction: float = 1e-6, exclude: Iterable[Coord] = ()
) -> list[tuple[int, str, int, int, float]]:
    """The ``ceil(fraction * N)`` largest-magnitude weights over all mutable matrices,
    super weights excluded: ``(layer, matrix, row, col, value)``, largest first."""
    if not 0 < fraction < 1:
        raise InputError(f"fraction must be in (0, 1), got {fraction}")
    skip = {(layer, "down", r, c) for layer, r, c in _check(subject, exclude)}
    refs = subject.anatomy.refs()
    total = sum(r.shape[0] * r.shape[1] for r in refs)
    k = max(1, math.ceil(fraction * total))
    candidates = []
    for ref in refs:
        w = subject.anatomy.weight(ref.layer, ref.matrix)
        mine = sum(1 for s in skip if s[:2] == (ref.layer, ref.matrix))
        vals, idx = w.detach().abs().flatten().float().topk(min(k + mine, w.numel()))
        for v, i in zip(vals.tolist(), idx.tolist()):
            r, c = divmod(i, w.shape[1])
            if (ref.layer, ref.matrix, r, c) not in skip:
                candidates.append((v, ref.layer, ref.matrix, r, c))
    candidates.sort(key=lambda t: -t[0])
    out = []
    for _, layer, matrix, r, c in candidates[:k]:
        out.append((layer, matrix, r, c, float(subject.anatomy.weight(layer, matrix)[r, c])))
    return out


@contextlib.contextmanager
def top_zeroed(subject: Subject, fraction: float = 1e-6, exclude: Iterable[Coord] = ()) -> Iterator[list]:
    """Zero the top ``fraction`` of weights by magnitude except ``exclude``; yields what was zeroed."""
    chosen = top_weights(subject, fraction, exclude)
    with _elements(subject, [t[:4] for t in chosen], lambda old: torch.zeros_like(old)):
        yield chosen


@contextlib.contextmanager
def activation_restored(
    subject: Subject, coords: Iterable[Coord], originals: dict[Coord, float], threshold: float
) -> Iterator[None]:
    """Zero the super weights, but put their super activation back.

    A hook on each super weight's ``down`` adds ``x[t, col] * w_original`` back
    into output channel ``row`` at the tokens ``t`` where that term's magnitude
    reaches ``threshold``, i.e. where the super weight made a super activation.
    Elsewhere its (tiny) contribution stays removed. Since ``down`` is linear
    this restores the super activation exactly as the unablated weight would
    produce it from the same input, without a second forward pass.
    """
    coords = _check(subject, coords)
    by_layer: dict[int, list[tuple[int, int, float]]] = {}
    for layer, r, c in coords:
        by_layer.setdefault(layer, []).append((r, c, originals[(layer, r, c)]))

    def make_hook(items):
        def hook(module, args, output):
            x = args[0]
            out = output[0] if isinstance(output, tuple) else output
            for r, c, w in items:
                term = x[..., c] * w
                mask = term.abs() >= threshold
                out[..., r] = torch.where(mask, out[..., r] + term.to(out.dtype), out[..., r])
            return output

        return hook

    with contextlib.ExitStack() as stack:
        stack.enter_context(zeroed(subject, coords))
        for layer, items in by_layer.items():
            module = subject.model.get_submodule(subject.anatomy.ref(layer, "down").module_path)
            # prepend: other hooks on the module (recorders) must see the restored output
            stack.callback(module.register_forward_hook(make_hook(items), prepend=True).remove)
        yield
