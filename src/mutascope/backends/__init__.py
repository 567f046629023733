"""Where a screen's chunks run: this process, or a Ray cluster of model replicas.

A :class:`~.base.Backend` takes :class:`~.base.Task` s (a chunk of
mutations, the probes to run, calls only or full outputs) and yields each
task's outcome rows as it finishes, in any order. :class:`~mutascope.Screen`
and ``mutascope fill`` own the plan and the results file and commit what
comes back; they never know which backend they have, as an HTTP client does
not know its transport.

The library chooses the backend from plain arguments (:class:`~.base.Placement`:
workers, a cluster address, threads per worker) with :func:`make_backend`,
which asks each entry of :data:`BACKENDS` in turn whether the arguments call
for it. Backends are context managers: ``with make_backend(...) as backend``.

* :mod:`.local`: one engine in this process, tasks in order;
* :mod:`.ray`: one actor per worker, each holding its own model replica.

A new backend is one module (a class with ``chosen``, ``build``,
``description``, ``run`` and ``close``) plus one entry of :data:`BACKENDS`.
"""

from __future__ import annotations

import importlib

from ..errors import InputError
from ..progress import Status
from .base import Backend, Closing, Placement, Task, chunk_grid
from .local import LocalBackend

# name -> "module:class", asked in this order; the local backend takes whatever is left.
BACKENDS = {
    "ray": "mutascope.backends.ray:RayBackend",
    "local": "mutascope.backends.local:LocalBackend",
}


def backend_class(name: str) -> type:
    """The backend class registered as ``name`` (imported on first use: Ray is optional)."""
    try:
        module, _, cls = BACKENDS[name].partition(":")
    except KeyError:
        raise InputError(f"unknown backend {name!r}: choose from {', '.join(BACKENDS)}") from None
    return getattr(importlib.import_module(module), cls)


def chosen_backend(placement: Placement) -> str:
    """The name of the first backend of :data:`BACKENDS` that ``placement`` calls for."""
    return next(name for name in BACKENDS if backend_class(name).chosen(placement))


def check_backend(engine_name: str, placement: Placement, name: str | None = None) -> type:
    """The backend class for ``placement`` (or ``name``), or a one-line error when it cannot run
    the engine ``engine_name`` (checked before the model loads)."""
    cls = backend_class(name or chosen_backend(placement.check()))
    if cls.engines is not None and engine_name not in cls.engines:
        raise InputError(f"{cls.asked_by} run the {' or '.join(cls.engines)} engine; drop --engine {engine_name}")
    return cls


def make_backend(
    subject,
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
    "Closing",
    "LocalBackend",
    "Placement",
    "Status",
    "Task",
    "backend_class",
    "check_backend",
    "chosen_backend",
    "chunk_grid",
    "make_backend",
]
