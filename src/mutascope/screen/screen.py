"""A mutagenesis screen: plan -> chunks -> engine -> store, resumable.

Everything a user can get wrong (model, probes, plan, output file) is checked
before the first row is written. Chunks of mutations are committed one
transaction at a time, so stopping a screen (an exception, Ctrl-C, a killed
machine) loses at most the chunks in flight, and rerunning the same screen
continues from there. Chunks are a fixed grid over the plan, so a resumed or
distributed screen batches every mutant exactly as an uninterrupted one does.
Where chunks run is the backend's business (:mod:`mutascope.backends`).

``order="predicted"`` runs the same chunks in order of predicted effect
(:mod:`mutascope.predict.order`): the predictions are computed once, stored
in the file (:meth:`Screen.predict`) and read back on resume, so the order is
a deterministic function of the screen's configuration and each mutant's
outcome is the plan-order screen's. The order is not part of the screen's
identity: a file may be resumed in either order.

``order="adaptive"`` (:mod:`.adaptive`) runs an audit sample and then rounds
of chunks a surrogate chooses from the outcomes so far, up to a budget, on
the same grid (by default of :data:`~.config.ADAPTIVE_CHUNK_SIZE`), and stores
every mutant's effect, measured or estimated, as ``estimates``.
"""

from __future__ import annotations

import contextlib
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends import Backend, Task, chunk_grid, make_backend
from ..engine import make_engine
from ..engine.base import wild_type_logprob
from ..model.subject import decode_text
from ..plan import Plan, build_plan
from ..predict import predictions, superweight_mark
from ..predict.order import predicted_order
from ..probes.prepared import PreparedProbe, prepare_probes
from ..progress import Progress, Status
from ..store import ProbeRecord, RunRecord, Store
from ..version import __version__
from .config import ADAPTIVE_CHUNK_SIZE, ScreenConfig

if TYPE_CHECKING:
    from .adaptive import Rounds


def _versions() -> dict[str, str]:
    import duckdb
    import torch
    import transformers

    return {
        "mutascope": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "duckdb": duckdb.__version__,
        "python": platform.python_version(),
    }


def probe_record(subject: Any, p: PreparedProbe) -> ProbeRecord:
    """What the results file keeps of a prepared probe: its definition, prompt and WT output."""
    return ProbeRecord(
        probe_id=p.id,
        kind=p.probe.kind,
        text=p.probe.text,
        chat=p.probe.chat,
        max_new_tokens=p.probe.max_new_tokens,
        decoding=p.probe.decoding.describe(),
        answer=p.probe.answer,
        group=p.probe.group,
        prompt_tokens=p.prompt,
        wt_tokens=p.wt_tokens,
        wt_text=decode_text(subject, p.wt_tokens),
        wt_logprob=wild_type_logprob(subject, p),
    )


@dataclass(kw_only=True)
class ScreenSummary:
    """What a finished (or partly finished) screen did."""

    path: Path
    n_mutations: int
    n_done: int
    n_run_now: int
    seconds: float
    rounds: Rounds | None = None  # an adaptive screen's rounds (None for plan or predicted order)


class Screen:
    """One screen of a model: a configuration, the loaded model, a results file.

    Args:
        subject: the loaded model (see :func:`mutascope.load_model`).
        config: what to screen and how (:class:`~mutascope.screen.config.ScreenConfig`):
            probes, plan and shard, the results file (created, or resumed if it
            holds this screen), engine, outputs, placement and order.
        backend: a backend to run chunks on instead of the one the placement
            calls for (the caller closes it).
    """

    def __init__(self, subject: Any, config: ScreenConfig, *, backend: Backend | None = None):
        self.config = config
        self.subject = subject
        self.backend = backend
        self.probes = config.probes.resolve(subject)
        self.engine = make_engine(config.engine.name, subject, **config.engine.options)
        self.plan: Plan = build_plan(config.plan, subject.anatomy)
        self.mutations = self.plan.shard(*config.shard)
        default = ADAPTIVE_CHUNK_SIZE if config.order == "adaptive" else self.engine.chunk_size
        self.chunk_size = config.engine.chunk_size or default
        self._prepared: list[PreparedProbe] | None = None

    @property
    def out(self) -> Path:
        """The results file."""
        return self.config.out

    def identity(self) -> dict[str, Any]:
        """The identity of this screen: what must match for a file to be resumed."""
        return self.config.identity(self.subject, self.probes)

    def prepared(self) -> list[PreparedProbe]:
        """Probes with their prompts and wild-type outputs (computed once)."""
        if self._prepared is None:
            self._prepared = prepare_probes(self.subject, self.engine, self.probes)
        return self._prepared

    def _open_store(self) -> Store:
        prepared = self.prepared()
        records = [probe_record(self.subject, p) for p in prepared]
        identity = self.identity()
        run = RunRecord(
            model_id=self.subject.model_id,
            model_hash=identity["model"]["hash"],
            dtype=identity["dtype"],
            device=identity["device"],
            decoding="; ".join(sorted({p.probe.decoding.describe() for p in prepared})),
            tile=self.config.plan.tile,
            shard=identity["shard"],
            versions=_versions(),
        )
        return Store.open(self.out, identity, run=run, probes=records, mutations=self.mutations)

    def _backend(self, status: Status | None):
        """The backend chunks run on: the one given (left open), or one chosen from the placement."""
        if self.backend is not None:
            return contextlib.nullcontext(self.backend)
        return make_backend(
            self.subject,
            self.engine,
            engine_options=self.config.engine.options,
            placement=self.config.placement,
            status=status,
        )

    def predict(self, progress: Progress | None = None, status: Status | None = None):
        """The predictions of this screen's mutants (docs/methods.md, "Predicted maps"):
        read from the file, computed and stored for the mutants that have none.

        A new file gets the screen's tables without outcomes, so the screen can
        later run into it; an existing file must hold this screen.
        """
        if status and self._prepared is None:
            status("running the unmutated model on the probes ...")
        self.prepared()
        with self._open_store() as store:
            return self._predictions(store, progress, status)

    def _predictions(self, store: Store, progress: Progress | None, status: Status | None):
        """Stored predictions, after computing those of mutants that have none; ``progress``
        counts probes (one forward and backward pass each)."""
        have = store.predicted_mutations()
        todo = [m for m in self.mutations if m.mutation_id not in have]
        if todo:
            done = iter(range(len(self.probes)))
            # A file predicted before the local estimate existed keeps its stored scores; only the
            # missing `local` values are added (Store.write_predictions).
            what = "predicting" if not store.has_predictions() else "predicting (or adding the local estimate to)"

            def shown(probe_id: str) -> None:
                if status:
                    status(f"{what} {len(todo)} mutants: forward and backward pass on {probe_id} ...")
                if progress:
                    progress(next(done), len(self.probes))

            frame = predictions(self.subject, todo, self.prepared(), self.config.plan.tile, self.config.marked, shown)
            store.write_predictions(frame)
            if progress:
                progress(len(self.probes), len(self.probes))
        marked = self.config.marked
        if marked is not None:  # predictions stored earlier without --superweights get their marks
            n = store.fill_superweight_marks({m.mutation_id: superweight_mark(m, marked) for m in self.mutations})
            if n and status:
                status(f"super-weight marks added to {n} stored predictions")
        return store.read_predictions()

    def _ordered(self, tasks: list[Task], store: Store, status: Status | None) -> list[Task]:
        if self.config.order == "plan":
            return tasks
        predicted = self._predictions(store, None, status)
        chunks = [[m.mutation_id for m in t.mutations] for t in tasks]
        return [tasks[i] for i in predicted_order(chunks, predicted)]

    def run(self, progress: Progress | None = None, status: Status | None = None) -> ScreenSummary:
        """Run (or resume) the screen; ``status(line)`` while starting workers and computing the
        WT outputs, ``progress(done, total)`` in mutants: after each committed chunk and, where
        the backend can see inside a chunk (the local one), after each batch of work within it
        (the chunk's finished probe runs over the number of probes, short of the whole chunk
        until it is committed). Reporting changes nothing that is computed or stored."""
        start = time.perf_counter()
        self._check_resume()
        with self._backend(status) as backend:
            if status and self._prepared is None:
                status("running the unmutated model on the probes ...")
            prepared = self.prepared()
            with self._open_store() as store:
                if self.config.order == "adaptive":
                    return self._run_adaptive(backend, store, prepared, progress, status, start)
                tasks = self._ordered(
                    [
                        replace(t, outputs=self.config.outputs)
                        for t in chunk_grid(self.mutations, self.chunk_size, store.done_mutations())
                    ],
                    store,
                    status,
                )
                total, n_todo = len(self.mutations), sum(len(t.mutations) for t in tasks)
                finished = total - n_todo
                if progress:
                    progress(finished, total)
                suffix = "; calls only" if self.config.outputs == "calls" else ""
                partial: dict[int, int] = {}  # mutants done in chunks not yet committed

                def rows_done(task: Task, n: int) -> None:
                    shown = min(n // len(prepared), len(task.mutations) - 1)
                    if progress and shown > partial.get(task.index, 0):
                        partial[task.index] = shown
                        progress(finished + sum(partial.values()), total)

                for task, rows, seconds in backend.run(tasks, prepared, rows_done if progress else None):
                    store.write_chunk(rows, engine=backend.description + suffix, seconds=seconds)
                    finished += len(task.mutations)
                    partial.pop(task.index, None)
                    if progress:
                        progress(finished + sum(partial.values()), total)
                # Canonical phenotype ids even if chunks arrived out of order, in this run or
                # an interrupted earlier one (a no-op update when they already are).
                store.renumber_phenotypes()
        return ScreenSummary(
            path=self.out, n_mutations=total, n_done=finished, n_run_now=n_todo, seconds=time.perf_counter() - start
        )

    def _check_resume(self) -> None:
        """Refuse, before anything starts, a resume that would leave the file incoherent: an
        adaptive file in another order, or with settings that would choose other rounds
        (:func:`mutascope.store.adaptive.check_resume`)."""
        from ..store.adaptive import check_resume

        settings = None
        if self.config.order == "adaptive":
            from .adaptive import schedule_of

            assert self.config.adaptive is not None  # the configuration checked it
            settings = schedule_of(self.config.adaptive, self.mutations, self.chunk_size)[1]
        check_resume(self.out, self.config.order, settings)

    def _run_adaptive(
        self,
        backend: Backend,
        store: Store,
        prepared: list[PreparedProbe],
        progress: Progress | None,
        status: Status | None,
        start: float,
    ) -> ScreenSummary:
        from .adaptive import run_rounds

        assert self.config.adaptive is not None  # the configuration checked it
        predicted = self._predictions(store, None, status)
        finished, run_now, rounds = run_rounds(
            self.config.adaptive,
            self.mutations,
            self.chunk_size,
            store,
            backend,
            prepared,
            predicted,
            outputs=self.config.outputs,
            suffix="; calls only" if self.config.outputs == "calls" else "",
            progress=progress,
            status=status,
        )
        store.renumber_phenotypes()
        return ScreenSummary(
            path=self.out,
            n_mutations=len(self.mutations),
            n_done=finished,
            n_run_now=run_now,
            seconds=time.perf_counter() - start,
            rounds=rounds,
        )


def predicted_coverage(subject: Any, config: ScreenConfig, share: float = 0.01) -> Any:
    """A screen of ``config`` in predicted order chunk by chunk: the share of the predicted top
    ``share`` of mutants covered, of the plan screened and of the time spent after each chunk
    (:class:`mutascope.predict.order.Schedule`): what ``mutascope plan --predicted`` turns into
    coverage over time. Writes nothing (``config.out`` is not opened)."""
    from ..predict import chunk_cost, schedule

    job = Screen(subject, config)
    table = predictions(subject, job.mutations, job.prepared(), config.plan.tile)
    tasks = chunk_grid(job.mutations, job.chunk_size)
    chunks = [[m.mutation_id for m in t.mutations] for t in tasks]
    costs = [chunk_cost([m.layer for m in t.mutations], subject.anatomy.n_layers) for t in tasks]
    return schedule(chunks, table, costs, share)


def check_screen(config: ScreenConfig) -> None:
    """Everything about a screen that can be checked before the model loads, one line each:
    the configuration's own checks ran when it was built; here the ``out`` file is compared with
    what is known of the screen (:meth:`ScreenConfig.check_out_file`)."""
    config.check_out_file()
