"""The backend interface: tasks in, outcome rows out, in any order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Protocol, Sequence

from ..engine.base import PreparedProbe
from ..mutation import Mutation
from ..store import OutcomeRow


@dataclass(frozen=True)
class Task:
    """One unit of work: run ``mutations`` on some probes and return their rows.

    ``index`` orders tasks within a job (a chunk number); ``probe_ids`` None
    means every prepared probe; ``outputs`` is ``"full"`` or ``"calls"``.
    """

    index: int
    mutations: tuple[Mutation, ...]
    probe_ids: tuple[str, ...] | None = None
    outputs: str = "full"


class Backend(Protocol):
    """Runs tasks on prepared probes somewhere, yielding each finished task once."""

    @property
    def description(self) -> str:
        """The engine and options that made the rows (stored with each committed chunk)."""

    def run(self, tasks: Sequence[Task], probes: Sequence[PreparedProbe]) -> Iterator[tuple[Task, list[OutcomeRow], float]]:
        """Yield ``(task, rows, seconds)`` per task as it finishes, in any order.

        ``rows`` are in mutation order, then probe order; ``seconds`` is the
        compute time the task took. Stopping the iteration (an exception,
        Ctrl-C) abandons unfinished tasks: they are simply run again later.
        """

    def close(self) -> None:
        """Release workers (nothing to do for the local backend)."""


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
    return [Task(index, tuple(ms)) for index, ms in sorted(chunks.items())]
