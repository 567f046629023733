"""The Ray backend: one actor per worker, each holding its own model replica.

Why Ray rather than a scheduler of our own: interpretability infrastructure
already runs on it (NDIF serves models as Ray actors), a laptop gets a local
instance from one call, and a cluster of GPU machines is ``ray start`` away.

* **Workers.** Each worker is an actor that loads the model itself, from the
  same source as the driver (a hub id, a directory or a ``.gguf`` path that
  exists on its node), and proves it holds the same weights: its content
  hash must equal the driver's, and its unmutated outputs must equal the
  stored WT outputs; otherwise the screen stops with an error naming the
  worker's node. On CUDA each actor takes one GPU (``num_gpus=1``); on CPU
  each takes ``threads_per_worker`` CPUs and sets torch to that many threads.
* **One owner.** The driver alone owns the plan and the results file: it
  hands one task (a chunk of mutations) to each idle actor and yields each
  result as it arrives, in any order; the caller commits it in its own
  transaction.
* **Faults.** A worker that dies (killed, out of memory, node lost) loses
  only its task, which goes back to the queue and to another actor, or to the
  same one once Ray has restarted it (a restarted actor reloads the model and
  is checked again). A task that kills workers again and again stops the
  screen instead of looping.
* **Stopping.** Closing the backend (Ctrl-C, an error, the end) kills the
  actors; a local instance started here is shut down. The results file keeps
  every committed chunk, so the screen resumes with ``--workers`` or locally.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine import DEFAULT_ENGINE
from ..errors import InputError, ModelLoadError, WorkerError
from ..probes.prepared import PreparedProbe
from ..progress import Status
from ..store.rows import OutcomeRow
from .base import Backend, Placement, Task, TaskRowsDone
from .local import run_task

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


INSTALL_HINT = "the Ray backend needs Ray: pip install 'mutascope[ray]'"
MAX_FAILURES_PER_TASK = 3


def _import_ray():
    try:
        import ray
    except ImportError:
        raise InputError(f"--workers and --ray-address: {INSTALL_HINT}") from None
    return ray


class Worker:
    """What runs inside each Ray actor: a model replica and an engine."""

    def __init__(
        self,
        source: str | None,
        dtype: str,
        device: str,
        threads: int | None,
        engine_options: dict,
        engine: str = DEFAULT_ENGINE,
    ):
        import torch

        from ..engine import make_engine
        from ..model.subject import load_model

        if threads:
            torch.set_num_threads(threads)
        self.subject = load_model(source, dtype=dtype, device=device)
        self.engine = make_engine(engine, self.subject, **engine_options)
        self._probes: dict[tuple, PreparedProbe] = {}

    def identity(self) -> dict:
        """Where this replica lives, which weights it holds, and its engine (the head its hardware chose)."""
        return {
            "hash": self.subject.content_hash(),
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "node": _node_ip(),
            "engine": self.engine.description,
        }

    def wild_type_mismatches(self, probes: Sequence[PreparedProbe]) -> list[str]:
        """Ids of probes whose unmutated output here differs from the driver's."""
        return [p.id for p in probes if self.engine.generate(p) != p.wt_tokens]

    def run(self, task: Task, probes: Sequence[PreparedProbe]) -> tuple[list[OutcomeRow], float]:
        return run_task(self.engine, task, [self._keep(p) for p in probes])

    def _keep(self, probe: PreparedProbe) -> PreparedProbe:
        """The first copy of each probe received, so its decoder's noise tables are built once."""
        key = (probe.id, probe.prompt, probe.wt_tokens, probe.probe.decoding)
        return self._probes.setdefault(key, probe)


def _node_ip() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - only a label for messages
        return "?"


class RayBackend(Backend):
    """Runs tasks on Ray actors, one model replica each.

    Args:
        source: where every worker loads the model from (the driver's source).
        expected_hash: the driver's ``content_hash()``; every worker must match it.
        dtype, device: as the driver loaded the model.
        workers: number of actors; default: the GPUs of the cluster on CUDA,
            else its CPUs divided by ``threads_per_worker``.
        address: an existing cluster (``"auto"`` or ``HOST:PORT``); None
            starts a local instance with ``workers * threads_per_worker`` CPUs.
        threads_per_worker: torch threads (and Ray CPUs) per actor on CPU.
        engine_options: the engine's options (``batch_size``, ``fast_head``).
        max_restarts: how often Ray restarts a dead actor before it is replaced.
        engine: the engine every worker runs (one of :attr:`engines`).
    """

    engines = ("batched",)  # the engines its workers run
    asked_by = "--workers and --ray-address"  # the options that choose it, for messages

    def __init__(
        self,
        source: str | None,
        expected_hash: str,
        *,
        dtype: str = "float32",
        device: str = "cpu",
        workers: int | None = None,
        address: str | None = None,
        threads_per_worker: int = 1,
        engine_options: dict | None = None,
        max_restarts: int = 2,
        engine: str = DEFAULT_ENGINE,
    ):
        Placement(workers=workers, ray_address=address, threads_per_worker=threads_per_worker).check()
        self.ray = _import_ray()
        self.source, self.expected_hash, self.engine = source, expected_hash, engine
        self.dtype, self.device = dtype, device
        self.threads = threads_per_worker
        self.engine_options = {k: v for k, v in (engine_options or {}).items() if v is not None}
        self.max_restarts = max_restarts
        self.gpu = str(device).startswith("cuda")
        self._started_here = False
        self._connect(address, workers)
        self.n_workers = workers or self._default_workers()
        self.actors: list = []
        self.failures = 0
        self._remote = None
        try:
            self.actors = [self._new_actor() for _ in range(self.n_workers)]
            self.engine_description = [self._check(actor) for actor in self.actors][0]["engine"]
        except BaseException:
            self.close()
            raise

    @classmethod
    def chosen(cls, placement: Placement) -> bool:
        """The backend when workers or a cluster are asked for."""
        return placement.distributed

    @classmethod
    def build(
        cls, subject: Subject, engine, engine_options: dict, placement: Placement, status: Status | None = None
    ) -> RayBackend:
        """Workers for ``placement`` running the driver's ``engine`` with ``engine_options``.

        Workers load the model from the same source as the driver: a local
        path is made absolute first, since Ray workers do not share the
        driver's working directory.
        """
        model = placement.source
        source = (
            str(Path(model).expanduser().resolve()) if model and os.path.exists(os.path.expanduser(model)) else model
        )
        if status:
            status(f"starting {placement.workers or 'the cluster'}'s Ray workers (each loads the model) ...")
        return cls(
            source,
            subject.content_hash(),
            dtype=str(subject.dtype).replace("torch.", ""),
            device=str(subject.device),
            workers=placement.workers,
            address=placement.ray_address,
            threads_per_worker=placement.threads_per_worker,
            engine_options=engine_options,
            engine=engine.name,
        )

    # -- setting up ------------------------------------------------------------

    def _connect(self, address: str | None, workers: int | None) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        quiet = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
        for name in ("ray", "ray._private", "ray.worker"):
            logging.getLogger(name).setLevel(logging.ERROR)
        try:
            if address:
                ray.init(address=address, **quiet)
            else:
                cpus = (workers or 1) * (1 if self.gpu else self.threads)
                ray.init(num_cpus=max(cpus, 1), **quiet)
                self._started_here = True
        except ConnectionError as exc:
            raise InputError(f"cannot join the Ray cluster at {address!r}: {str(exc).splitlines()[0]}") from None

    def _default_workers(self) -> int:
        resources = self.ray.cluster_resources()
        if self.gpu:
            n = int(resources.get("GPU", 0))
            if n < 1:
                raise InputError("--device cuda with Ray: the cluster has no GPUs; use --device cpu or add GPU nodes")
            return n
        return max(1, int(resources.get("CPU", 1)) // self.threads)

    def _new_actor(self):
        options = dict(max_restarts=self.max_restarts, max_task_retries=0)
        if self.gpu:
            options.update(num_gpus=1, num_cpus=1)
        else:
            options.update(num_cpus=self.threads)
        if self._remote is None:
            self._remote = self.ray.remote(Worker)
        return self._remote.options(**options).remote(
            self.source, self.dtype, self.device, None if self.gpu else self.threads, self.engine_options, self.engine
        )

    def _check(self, actor) -> dict:
        """The actor's identity, refused (one line, naming its node) unless its weights are the driver's."""
        try:
            who = self.ray.get(actor.identity.remote())
        except self.ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            first = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
            raise ModelLoadError(f"a Ray worker could not load the model from {self.source!r}: {first}") from None
        if who["hash"] != self.expected_hash:
            raise ModelLoadError(
                f"the Ray worker on node {who['host']} ({who['node']}, pid {who['pid']}) loaded {self.source!r} "
                f"with weights {who['hash'][:12]}..., not the driver's {self.expected_hash[:12]}...; "
                "give every node the same model files"
            )
        return who

    def worker_pids(self) -> list[int]:
        """Process ids of the live actors (for tests that kill one)."""
        return [self.ray.get(a.identity.remote())["pid"] for a in self.actors]

    @property
    def description(self) -> str:
        return f"{self.engine_description} on Ray, {self.n_workers} worker{'s' if self.n_workers != 1 else ''}"

    # -- running -------------------------------------------------------------------

    def run(
        self, tasks: Sequence[Task], probes: Sequence[PreparedProbe], rows_done: TaskRowsDone | None = None
    ) -> Iterator[tuple[Task, list[OutcomeRow], float]]:
        """Tasks on the actors; ``rows_done`` is not called: a worker's rows are seen
        only when its whole task returns, so progress moves a chunk at a time."""
        ray = self.ray
        if not tasks:
            return
        probes = list(probes)
        probes_ref = ray.put(probes)
        for actor in self.actors:
            self._check_wild_type(actor, probes_ref)
        queue = collections.deque(tasks)
        attempts: dict[int, int] = collections.Counter()
        idle = list(self.actors)
        in_flight: dict = {}
        try:
            while queue or in_flight:
                while idle and queue:
                    actor, task = idle.pop(0), queue.popleft()
                    in_flight[actor.run.remote(task, probes_ref)] = (task, actor)
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in ready:
                    task, actor = in_flight.pop(ref)
                    try:
                        rows, seconds = ray.get(ref)
                    except (
                        ray.exceptions.RayActorError,
                        ray.exceptions.WorkerCrashedError,
                        ray.exceptions.ObjectLostError,
                        ray.exceptions.OutOfMemoryError,
                        ray.exceptions.NodeDiedError,
                    ) as exc:
                        attempts[task.index] += 1
                        if attempts[task.index] >= MAX_FAILURES_PER_TASK:
                            raise WorkerError(
                                f"chunk {task.index} (mutations {task.mutations[0].mutation_id}-"
                                f"{task.mutations[-1].mutation_id}) killed its Ray worker {attempts[task.index]} "
                                f"times ({type(exc).__name__}); the file keeps every finished chunk"
                            ) from None
                        queue.appendleft(task)
                        idle.append(self._replace(actor, probes_ref))
                        continue
                    except ray.exceptions.RayTaskError as exc:  # the engine raised: the caller's error
                        raise exc.as_instanceof_cause() from None
                    idle.append(actor)
                    yield task, rows, seconds
        finally:
            # Best effort (Ray refuses force=True for actor tasks): close() kills the actors anyway.
            for ref in in_flight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)

    def _check_wild_type(self, actor, probes_ref) -> None:
        bad = self.ray.get(actor.wild_type_mismatches.remote(probes_ref))
        if bad:
            who = self.ray.get(actor.identity.remote())
            raise WorkerError(
                f"the Ray worker on node {who['host']} ({who['node']}) computes a different unmutated output for "
                f"probe {bad[0]!r} than the driver: its numerics differ (another device or library version?)"
            )

    def _replace(self, actor, probes_ref):
        """After a worker died: the same actor once Ray restarted it, else a new one; checked again."""
        self.failures += 1
        for candidate in (actor, None):
            if candidate is None:
                self.ray.kill(actor, no_restart=True)
                candidate = self._new_actor()
                self.actors[self.actors.index(actor)] = candidate
            try:
                deadline = time.monotonic() + 600
                while True:
                    try:
                        self._check(candidate)
                        break
                    except self.ray.exceptions.ActorUnavailableError:  # restarting
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.5)
                self._check_wild_type(candidate, probes_ref)
                return candidate
            except self.ray.exceptions.RayActorError:
                continue  # out of restarts: replace it
        raise WorkerError("a Ray worker died and could not be replaced")  # pragma: no cover

    def close(self) -> None:
        """Kill the actors; shut down a local instance started here."""
        ray = self.ray
        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors = []
        if self._started_here and ray.is_initialized():
            ray.shutdown()
            self._started_here = False
