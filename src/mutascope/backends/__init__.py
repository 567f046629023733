"""Where a screen's chunks run: this process, or a Ray cluster of model replicas.

A :class:`~.base.Backend` takes :class:`~.base.Task` s (a chunk of
mutations, the probes to run, calls only or full outputs) and yields each
task's outcome rows as it finishes, in any order. :class:`~mutascope.Screen`
and ``mutascope fill`` own the plan and the results file and commit what
comes back; they never know which backend they have, as an HTTP client does
not know its transport.

The library chooses the backend from plain arguments (:class:`~.base.Placement`:
workers, a cluster address, threads per worker, or a backend named outright)
with :func:`make_backend`, which asks every entry of :data:`BACKENDS` whether
the arguments call for it and requires exactly one yes. Backends are context
managers: ``with make_backend(...) as backend``.

* :mod:`.local`: one engine in this process, tasks in order;
* :mod:`.ray`: one actor per worker, each holding its own model replica;
* :mod:`.replay`: rows read from a complete screen (a results file or its compact export).

A new backend is one module (a subclass of :class:`~.base.Backend`, which
declares every member the registry and the screen use) plus one entry of
:data:`BACKENDS`, or a call of :func:`register_backend` from outside the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ..errors import InputError
from ..progress import Status
from .base import Backend, Placement, Task, chunk_grid
from .local import LocalBackend

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


# name -> a Backend subclass, or "module:class" imported on first use (Ray is optional).
# Exactly one backend must say it is chosen for a placement, so the order does not matter.
BACKENDS: dict[str, str | type[Backend]] = {
    "ray": "mutascope.backends.ray:RayBackend",
    "replay": "mutascope.backends.replay:ReplayBackend",
    "local": "mutascope.backends.local:LocalBackend",
}


def register_backend(name: str, backend: str | type[Backend]) -> None:
    """Make ``backend`` (a :class:`~.base.Backend` subclass or ``"module:class"``) available as ``name``."""
    if isinstance(backend, type) and not issubclass(backend, Backend):
        raise TypeError(f"{backend.__name__} is not a mutascope.backends.Backend")
    BACKENDS[name] = backend


def backend_class(name: str) -> type[Backend]:
    """The backend class registered as ``name`` (a ``"module:class"`` entry is imported now)."""
    try:
        entry = BACKENDS[name]
    except KeyError:
        raise InputError(f"unknown backend {name!r}: choose from {', '.join(BACKENDS)}") from None
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    assert isinstance(entry, type) and issubclass(entry, Backend), f"{name}: not a Backend subclass"
    return entry


def chosen_backend(placement: Placement) -> str:
    """The name of the backend ``placement`` names, or else of the one registered backend it calls for."""
    if placement.backend is not None:
        backend_class(placement.backend)  # a one-line error for an unknown name
        return placement.backend
    chosen = [name for name in BACKENDS if backend_class(name).chosen(placement)]
    if len(chosen) != 1:
        raise InputError(
            f"{len(chosen)} backends ({', '.join(chosen) or 'none'}) claim these placement options; "
            "name one with Placement(backend=...)"
        )
    return chosen[0]


def check_backend(engine_name: str, placement: Placement, name: str | None = None) -> type[Backend]:
    """The backend class for ``placement`` (or ``name``), or a one-line error when it cannot run
    the engine ``engine_name`` (checked before the model loads)."""
    cls = backend_class(name or chosen_backend(placement.check()))
    if cls.engines is not None and engine_name not in cls.engines:
        raise InputError(f"{cls.asked_by} run the {' or '.join(cls.engines)} engine; drop --engine {engine_name}")
    return cls


def make_backend(
    subject: Subject,
    engine,
    *,
    engine_options: dict | None = None,
    placement: Placement | None = None,
    status: Status | None = None,
    name: str | None = None,
) -> Backend:
    """The backend for ``placement`` (default: this process) running ``engine``, built for ``subject``.

    ``engine`` is the driver's engine (the local backend runs it; other
    backends build the same engine, with ``engine_options``, in each
    worker). ``status`` hears what slow start-up is under way; ``name``
    picks a backend of :data:`BACKENDS` instead.
    """
    placement = placement or Placement()
    cls = check_backend(engine.name, placement, name)
    return cls.build(subject, engine, dict(engine_options or {}), placement, status)


__all__ = [
    "BACKENDS",
    "Backend",
    "LocalBackend",
    "Placement",
    "Status",
    "Task",
    "backend_class",
    "check_backend",
    "chosen_backend",
    "chunk_grid",
    "make_backend",
    "register_backend",
]
