"""The local backend: one engine in this process, tasks in order."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from ..engine.base import Engine
from ..probes.prepared import PreparedProbe
from ..progress import Status
from ..store.rows import OutcomeRow
from .base import Backend, Placement, Task, TaskRowsDone

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


def select_probes(probes: Sequence[PreparedProbe], ids: tuple[str, ...] | None) -> list[PreparedProbe]:
    """The prepared probes a task asks for (all when ``ids`` is None), in screen order."""
    return list(probes) if ids is None else [p for p in probes if p.id in set(ids)]


def run_task(
    engine: Engine, task: Task, probes: Sequence[PreparedProbe], rows_done: TaskRowsDone | None = None
) -> tuple[list[OutcomeRow], float]:
    """Run one task on ``engine``: its rows (mutation order, then probe order) and seconds;
    ``rows_done(task, n)`` as the engine finishes rows."""
    t0 = time.perf_counter()
    chosen = select_probes(probes, task.probe_ids)
    told = None if rows_done is None else (lambda n: rows_done(task, n))
    rows = [row for rows in engine.run(task.mutations, chosen, outputs=task.outputs, rows_done=told) for row in rows]
    return rows, time.perf_counter() - t0


class LocalBackend(Backend):
    """Runs every task on one engine, in the order given."""

    engines = None  # runs any engine
    asked_by = "no --workers"

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def chosen(cls, placement: Placement) -> bool:
        """The backend when no workers (and no replay source) are asked for."""
        return not placement.distributed and placement.replay is None

    @classmethod
    def build(
        cls, subject: Subject, engine: Engine, engine_options: dict, placement: Placement, status: Status | None = None
    ) -> LocalBackend:
        return cls(engine)

    @property
    def description(self) -> str:
        return self.engine.description

    def run(
        self, tasks: Sequence[Task], probes: Sequence[PreparedProbe], rows_done: TaskRowsDone | None = None
    ) -> Iterator[tuple[Task, list[OutcomeRow], float]]:
        for task in tasks:
            rows, seconds = run_task(self.engine, task, probes, rows_done)
            yield task, rows, seconds
