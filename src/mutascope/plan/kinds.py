"""Kinds of mutation: what a mutant writes into its tile, one rule per kind.

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

Each kind is one :class:`KindRule` of :data:`KINDS` (how ``X`` is checked, the
number it writes, the tile it makes); parsing, the plan and every engine read
that table, so a new kind is one rule there.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import torch

# torch is imported inside the functions that write tiles, so parsing kinds (the commands'
# argument checks, before any model loads) does not import it.


@dataclass(frozen=True)
class KindRule:
    """What one kind of mutation does.

    ``value(x, weight)`` is the number stored as the mutation's value, from the
    kind's argument ``x`` (None unless ``parametric``, written ``NAME:X``) and
    the whole unmutated matrix; ``tile(original, value, site, kind)`` the new
    contents of a tile (default: every element set to ``value``); ``check(x)``
    a one-line problem with ``x``, or None; ``largest(value, weight, n)`` a bound on
    the largest magnitude a tile of ``n`` elements holds once written (default
    ``abs(value)``), checked against the model's dtype before anything is written.
    """

    parametric: bool
    value: Callable[[float | None, torch.Tensor], float]
    tile: Callable[..., torch.Tensor] | None = None
    check: Callable[[float], str | None] | None = None
    largest: Callable[[float, torch.Tensor, int], float] | None = None


def _given(x: float | None) -> float:
    """A parametric kind's argument (``NAME:X`` makes it; ``Kind.parse`` refuses one without)."""
    if x is None:
        raise ValueError("this kind takes an argument")
    return x


def _extreme(weight: torch.Tensor) -> float:
    """``a = max(|max|, |min|)`` of the matrix: the size the controls are scaled by."""
    return max(abs(float(weight.max().item())), abs(float(weight.min().item())))


def _scaled(original: torch.Tensor, value: float, site, kind) -> torch.Tensor:
    return original * value


def _noisy(original: torch.Tensor, value: float, site, kind) -> torch.Tensor:
    if site is None:
        raise ValueError("noise kinds need the mutation's site to seed their noise")
    import torch

    noise = noise_tile(tuple(original.shape), value, site, kind).to(original.device)
    return (original.to(torch.float32) + noise).to(original.dtype)


def _positive(x: float) -> str | None:
    return None if x > 0 else "the noise scale must be above 0, e.g. noise:0.001"


KINDS: dict[str, KindRule] = {
    "max": KindRule(False, lambda x, w: float(w.max().item())),
    "min": KindRule(False, lambda x, w: float(w.min().item())),
    "zero": KindRule(False, lambda x, w: 0.0),
    "value": KindRule(True, lambda x, w: _given(x)),
    "scale": KindRule(True, lambda x, w: _given(x), tile=_scaled, largest=lambda v, w, n: abs(v) * _extreme(w)),
    "sym": KindRule(True, lambda x, w: _given(x) * _extreme(w)),
    # an element of a noise tile of RMS v is at most v * sqrt(n) (the whole norm in one element)
    "noise": KindRule(
        True,
        lambda x, w: _given(x) * _extreme(w),
        tile=_noisy,
        check=_positive,
        largest=lambda v, w, n: _extreme(w) + abs(v) * math.sqrt(n),
    ),
}
# A name in a kind list that stands for several kinds (``sym``: the size-matched pair).
ALIASES: dict[str, tuple[str, ...]] = {"sym": ("sym:1", "sym:-1")}

BASE_KINDS = tuple(name for name, rule in KINDS.items() if not rule.parametric)
PARAMETRIC = tuple(name for name, rule in KINDS.items() if rule.parametric)  # kinds written NAME:X


def _usage() -> str:
    labels = [f"{name}:X" if rule.parametric else name for name, rule in KINDS.items()]
    return f"{', '.join(labels[:-1])} or {labels[-1]}"


@dataclass(frozen=True, order=True)
class Kind:
    """What a mutation writes: ``max``, ``min``, ``zero``, ``value:X``, ``scale:X``, or the
    controls ``sym:X`` and ``noise:X`` (module docstring)."""

    name: str
    x: float | None = None

    @classmethod
    def parse(cls, text: str) -> Kind:
        text = text.strip()
        rule = KINDS.get(text)
        if rule is not None and not rule.parametric:
            return cls(text)
        head, sep, arg = text.partition(":")
        rule = KINDS.get(head)
        if sep and rule is not None and rule.parametric:
            try:
                x = float(arg)
            except ValueError:
                raise InputError(f"kind {text!r}: {arg!r} is not a number") from None
            if not math.isfinite(x):
                raise InputError(f"kind {text!r}: the number must be finite")
            problem = rule.check(x) if rule.check else None
            if problem:
                raise InputError(f"kind {text!r}: {problem}")
            return cls(head, x)
        raise InputError(f"unknown kind {text!r}: use {_usage()}")

    def __str__(self) -> str:
        return self.name if self.x is None else f"{self.name}:{self.x:g}"


def kind_value(kind: Kind, weight: torch.Tensor) -> float:
    """The number a kind writes into (or scales, or the noise's RMS for) a tile of ``weight``."""
    return KINDS[kind.name].value(kind.x, weight)


def check_representable(kind: Kind, value: float, weight: torch.Tensor, n: int, where: str) -> None:
    """Refuse a kind whose tile of ``n`` elements would not fit the matrix's dtype (``value:1e39``
    in float32 overflows; ``scale:X`` or ``sym:X`` can too): one line, before any file is written."""
    import torch

    rule = KINDS[kind.name]
    largest = rule.largest(value, weight, n) if rule.largest else abs(value)
    limit = float(torch.finfo(weight.dtype).max) if weight.dtype.is_floating_point else math.inf
    if not largest <= limit:
        raise InputError(
            f"kind {kind} writes values up to {largest:.3g} into {where}, beyond what "
            f"{str(weight.dtype).removeprefix('torch.')} holds ({limit:.3g}): choose a smaller X"
        )


def noise_tile(shape: tuple[int, ...], rms: float, site: tuple[int, str, int, int], kind: Kind) -> torch.Tensor:
    """The ``noise:X`` perturbation of one tile: Gaussian, scaled to root-mean-square ``rms``
    exactly, seeded by the site and kind alone (float32, on the CPU)."""
    import torch

    key = hashlib.sha256(f"{site[0]}.{site[1]}.{site[2]}.{site[3]}:{kind}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(key[:8], "little") & (2**63 - 1))
    z = torch.randn(shape, generator=gen, dtype=torch.float64)
    return (z * (rms * math.sqrt(z.numel()) / float(z.norm()))).to(torch.float32)


def mutated_tile(
    original: torch.Tensor, kind: Kind, value: float, site: tuple[int, str, int, int] | None = None
) -> torch.Tensor:
    """The new contents of a tile whose unmutated contents are ``original`` (``site``, the
    mutation's (layer, matrix, row, col), seeds ``noise:X``)."""
    import torch

    make = KINDS[kind.name].tile
    return make(original, value, site, kind) if make is not None else torch.full_like(original, value)
