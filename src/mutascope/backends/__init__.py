"""Where a screen's chunks run: this process, or a Ray cluster of model replicas.

A :class:`~.base.Backend` takes :class:`~.base.Task` s (a chunk of
mutations, the probes to run, calls only or full outputs) and yields each
task's outcome rows as it finishes, in any order. :class:`~mutascope.Screen`
and ``mutascope fill`` own the plan and the results file and commit what
comes back; they never know which backend they have, as an HTTP client does
not know its transport.

* :mod:`.local`: one engine in this process, tasks in order;
* :mod:`.ray`: one actor per worker, each holding its own model replica.
"""

from .base import Backend, Task, chunk_grid
from .local import LocalBackend

__all__ = ["Backend", "LocalBackend", "Task", "chunk_grid"]
