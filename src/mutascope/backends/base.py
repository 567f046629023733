"""The backend interface: tasks in, outcome rows out, in any order; where they run, as plain arguments."""

from __future__ import annotations

import abc
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..engine.base import Engine
from ..errors import InputError
from ..plan.mutation import Mutation
from ..probes.prepared import PreparedProbe
from ..progress import Status
from ..store.rows import OutcomeRow


@dataclass(frozen=True, kw_only=True)
class Task:
    """One unit of work: run ``mutations`` on some probes and return their rows.

    ``index`` orders tasks within a job (a chunk number); ``probe_ids`` None
    means every prepared probe; ``outputs`` is ``"full"`` or ``"calls"``.
    """

    index: int
    mutations: tuple[Mutation, ...]
    probe_ids: tuple[str, ...] | None = None
    outputs: str = "full"


# ``rows_done(task, n)``: ``n`` of ``task``'s (mutation, probe) rows are finished, before the
# task itself is yielded (an engine's :data:`~mutascope.engine.base.RowsDone`, per task).
TaskRowsDone = Callable[[Task, int], None]


@dataclass(kw_only=True, frozen=True)
class Placement:
    """Where a job's tasks should run, as a user says it (``--workers``, ``--ray-address``,
    ``--threads-per-worker``): none of them means this process.

    ``source`` is where other processes load the model from (the driver's
    ``--model``; None: the default model). ``backend`` names a registered
    backend outright (as an HTTP client takes ``transport=``); None lets the
    other fields choose. ``replay`` is a complete screen (a results file or its
    compact export) whose rows answer every task instead of a model (the
    replay backend, :mod:`.replay`).
    """

    workers: int | None = None
    ray_address: str | None = None
    threads_per_worker: int = 1
    source: str | None = None
    backend: str | None = None  # a registered backend by name, instead of the one the others call for
    replay: str | None = None  # a complete screen that answers every task (the replay backend)

    def check(self) -> Placement:
        """One-line errors for impossible values, before any slow work."""
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.threads_per_worker < 1:
            raise InputError(f"--threads-per-worker must be at least 1, got {self.threads_per_worker}")
        if self.replay is not None and self.distributed:
            raise InputError("--replay answers every chunk from a file in this process; drop --workers/--ray-address")
        if self.ray_address is not None:
            check_address(self.ray_address)
        return self

    @property
    def distributed(self) -> bool:
        """Whether the user asked for workers (a count, or a cluster to join)."""
        return self.workers is not None or self.ray_address is not None


def check_address(address: str, timeout: float = 5.0) -> None:
    """``--ray-address``: ``auto``, or ``[ray://]HOST:PORT`` of a head node that accepts a TCP
    connection within ``timeout`` seconds; otherwise a one-line error in seconds (Ray itself
    would retry an unreachable address for minutes, and print tracebacks for a malformed one)."""
    hint = "give auto or HOST:PORT of `ray start --head` (e.g. 10.0.0.5:6379)"
    text = address.strip()
    if not text:
        raise InputError(f"--ray-address is empty; {hint}")
    if text == "auto":
        return
    host, sep, port = text.removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InputError(f"--ray-address {address!r} is not HOST:PORT; {hint}")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise InputError(
            f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); "
            "is the Ray head running (`ray start --head`)?"
        ) from None


class Backend(abc.ABC):
    """Runs tasks on prepared probes somewhere, yielding each finished task once.

    Everything the registry (:mod:`mutascope.backends`) and the screen use is
    declared here; a new backend subclasses this and implements the abstract
    members (a class missing one cannot be instantiated):

    * :attr:`engines` and :attr:`asked_by`: the engines it can run (None: any)
      and the options that choose it, for one-line messages;
    * :meth:`chosen`: whether a :class:`Placement` calls for it (the registry
      asks every backend and requires exactly one yes, so the order of the
      registry does not matter);
    * :meth:`build`: the backend, ready to run, for a loaded model and engine;
    * :attr:`description`, :meth:`run` and :meth:`close`.

    A backend is a context manager: leaving the ``with`` block closes it,
    releasing its workers, whatever happened inside.
    """

    engines: ClassVar[tuple[str, ...] | None] = None
    asked_by: ClassVar[str] = ""

    @classmethod
    @abc.abstractmethod
    def chosen(cls, placement: Placement) -> bool:
        """Whether ``placement`` (a user's --workers, --ray-address ...) calls for this backend."""

    @classmethod
    @abc.abstractmethod
    def build(
        cls,
        subject: Any,
        engine: Engine,
        engine_options: dict[str, Any],
        placement: Placement,
        status: Status | None = None,
    ) -> Backend:
        """The backend for ``placement`` running ``engine`` (built with ``engine_options``, for
        workers that build their own) on ``subject``; ``status`` hears of slow start-up."""

    @property
    @abc.abstractmethod
    def description(self) -> str:
        """The engine and options that made the rows (stored with each committed chunk)."""

    @abc.abstractmethod
    def run(
        self, tasks: Sequence[Task], probes: Sequence[PreparedProbe], rows_done: TaskRowsDone | None = None
    ) -> Iterator[tuple[Task, list[OutcomeRow], float]]:
        """Yield ``(task, rows, seconds)`` per task as it finishes, in any order.

        ``rows`` are in mutation order, then probe order; ``seconds`` is the
        compute time the task took. Stopping the iteration (an exception,
        Ctrl-C) abandons unfinished tasks: they are simply run again later.
        ``rows_done`` hears of a task's finished rows while it runs, where the
        backend can see them (the local backend; the Ray backend reports whole tasks only).
        """

    def close(self) -> None:  # noqa: B027 (optional: a backend without workers has nothing to release)
        """Release workers (nothing to do for a backend without any)."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunk_grid(mutations: Sequence[Mutation], size: int, done: set[int] | frozenset = frozenset()) -> list[Task]:
    """Tasks over the plan's fixed chunk grid, minus ``done`` mutations.

    Chunk ``k`` holds plan positions (mutation ids) ``k*size`` to
    ``(k+1)*size - 1``, whatever part of the plan ``mutations`` is (a shard)
    and whatever was done before. So a resumed, sharded or distributed
    screen puts every mutant in the same batches as an uninterrupted one and
    records bit-identical numbers.
    """
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    chunks: dict[int, list[Mutation]] = {}
    for m in mutations:
        if m.mutation_id not in done:
            chunks.setdefault(m.mutation_id // size, []).append(m)
    return [Task(index=index, mutations=tuple(ms)) for index, ms in sorted(chunks.items())]
