"""Screening engines: each turns (mutations x probes) into outcome rows.

Every engine implements the same interface (:class:`~.base.Engine`); the
reference engine is the paper's loop and the ground truth for faster ones.
"""

from .base import Engine, PreparedProbe, divergence_step, prepare_probes
from .batched import BatchedEngine, BatchedOutcomeRow, estimate_seconds
from .reference import ReferenceEngine

ENGINES = {"batched": BatchedEngine, "reference": ReferenceEngine}


def make_engine(name: str, subject, **options) -> Engine:
    """Build the engine called ``name`` for ``subject``; ``options`` go to the batched engine.

    Batched options: ``batch_size`` (rows per pass, at least 1; default from
    free memory) and ``fast_head`` (``False``: float32 LM head throughout).
    """
    from ..errors import MutascopeError

    try:
        cls = ENGINES[name]
    except KeyError:
        raise MutascopeError(f"unknown engine {name!r}: choose from {', '.join(ENGINES)}") from None
    options = {k: v for k, v in options.items() if v is not None}
    if options and cls is not BatchedEngine:
        raise MutascopeError(f"{', '.join(sorted(options))} only apply to the batched engine, not {name!r}")
    if options.get("batch_size", 1) < 1:
        raise MutascopeError(f"batch size must be at least 1, got {options['batch_size']}")
    return cls(subject, **options)


__all__ = [
    "ENGINES",
    "BatchedEngine",
    "BatchedOutcomeRow",
    "Engine",
    "PreparedProbe",
    "ReferenceEngine",
    "divergence_step",
    "estimate_seconds",
    "make_engine",
    "prepare_probes",
]
