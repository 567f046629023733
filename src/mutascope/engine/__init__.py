"""Screening engines: each turns (mutations x probes) into outcome rows.

Every engine implements the same interface (:class:`~.base.Engine`); the
reference engine is the paper's loop and the ground truth for faster ones.
"""

from .base import Engine, PreparedProbe, divergence_step, prepare_probes
from .batched import BatchedEngine, BatchedOutcomeRow, estimate_seconds
from .reference import ReferenceEngine

ENGINES = {"batched": BatchedEngine, "reference": ReferenceEngine}


def make_engine(name: str, subject) -> Engine:
    """Build the engine called ``name`` for ``subject``."""
    from ..errors import MutascopeError

    try:
        cls = ENGINES[name]
    except KeyError:
        raise MutascopeError(f"unknown engine {name!r}: choose from {', '.join(ENGINES)}") from None
    return cls(subject)


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
