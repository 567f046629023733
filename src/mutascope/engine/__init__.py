"""Screening engines: each turns (mutations x prepared probes) into outcome rows.

Every engine implements the same interface (:class:`~.base.Engine`) and says
what it supports (``outputs``: the modes it can run; ``options``: the keyword
options it takes), so callers choose by capability, never by name. The
reference engine is the paper's loop and the ground truth for faster ones.
A new engine is one module plus one entry of :data:`ENGINES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import InputError
from ..probes.prepared import PreparedProbe, prepare_probes
from .base import OUTPUTS, Engine, check_outputs, divergence_step
from .batched import BatchedEngine, BatchedOutcomeRow
from .estimate import estimate_seconds
from .reference import ReferenceEngine

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


EngineClass = type[BatchedEngine] | type[ReferenceEngine]
ENGINES: dict[str, EngineClass] = {
    "batched": BatchedEngine,
    "reference": ReferenceEngine,
}
DEFAULT_ENGINE = "batched"  # what `screen` runs unless told otherwise, and what `fill` runs


def _able(test) -> str:
    return " or ".join(name for name, cls in ENGINES.items() if test(cls))


def check_engine(name: str, *, outputs: str = "full", options: dict | None = None) -> EngineClass:
    """The engine class called ``name`` if it can run ``outputs`` with ``options``, else a
    one-line error naming the engines that can (checked before any model loads)."""
    try:
        cls = ENGINES[name]
    except KeyError:
        raise InputError(f"unknown engine {name!r}: choose from {', '.join(ENGINES)}") from None
    check_outputs(outputs)
    if outputs not in cls.outputs:
        raise InputError(
            f"--outputs {outputs} needs the {_able(lambda c: outputs in c.outputs)} engine "
            f"(the {name} engine always decodes in full)"
        )
    given = {k: v for k, v in (options or {}).items() if v is not None}
    if any(k not in cls.options for k in given):
        raise InputError(
            f"{', '.join(sorted(given))} only apply to the "
            f"{_able(lambda c: set(given) <= set(c.options))} engine, not {name!r}"
        )
    if given.get("batch_size", 1) < 1:
        raise InputError(f"batch size must be at least 1, got {given['batch_size']}")
    return cls


def make_engine(name: str, subject: Subject, **options) -> Engine:
    """Build the engine called ``name`` for ``subject``; ``options`` (None values dropped) go to it.

    Batched options: ``batch_size`` (rows per pass, at least 1; default from
    free memory) and ``fast_head`` (``False``: float32 LM head throughout).
    """
    cls = check_engine(name, options=options)
    return cls(subject, **{k: v for k, v in options.items() if v is not None})


__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "OUTPUTS",
    "BatchedEngine",
    "BatchedOutcomeRow",
    "Engine",
    "PreparedProbe",
    "ReferenceEngine",
    "check_engine",
    "check_outputs",
    "divergence_step",
    "estimate_seconds",
    "make_engine",
    "prepare_probes",
]
