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
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..backends import Backend, Placement, Task, check_backend, chunk_grid, make_backend
from ..engine import DEFAULT_ENGINE, check_engine, make_engine
from ..engine.base import wild_type_logprob
from ..errors import InputError
from ..model.subject import decode_text, eos_ids
from ..plan import Plan, PlanSpec, build_plan
from ..predict import predictions, superweight_mark
from ..predict.order import check_order, predicted_order
from ..probes import Decoding, Probe
from ..probes.prepared import PreparedProbe, prepare_probes
from ..progress import Progress, Status
from ..store import ProbeRecord, Store, check_target
from ..version import __version__


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


@dataclass
class ScreenSummary:
    """What a finished (or partly finished) screen did."""

    path: Path
    n_mutations: int
    n_done: int
    n_run_now: int
    seconds: float


class Screen:
    """One screen of a model: a plan, a set of probes, a results file.

    Args:
        subject: the loaded model (see :func:`mutascope.load_model`).
        probes: probes to run on every mutant.
        spec: which mutations (a :class:`PlanSpec`).
        out: the DuckDB results file; created, or resumed if it holds this screen.
        engine: ``"batched"`` (fast, identical results) or ``"reference"`` (the paper's loop).
        shard: ``(index, count)``: run only that contiguous part of the plan.
        chunk_size: mutations per committed transaction (default: the engine's).
        engine_options: passed to the engine (the batched engine's ``batch_size``, ``fast_head``).
        outputs: ``"full"`` (every output) or ``"calls"`` (NSM calls and
            effect sizes only; ``mutascope fill`` computes outputs later), where
            the engine supports it. Not part of the screen's identity: a file
            may be resumed in either.
        workers, ray_address, threads_per_worker, source: where chunks run
            (:class:`~mutascope.backends.Placement`; none of them: this process).
            The library picks the backend from them (:func:`~mutascope.backends.make_backend`).
        backend: a backend to run chunks on instead (the caller closes it).
        order: ``"plan"`` (chunks in plan order) or ``"predicted"`` (largest predicted effect first).
        marked: the (layer, matrix, axis, index) axes a super-weights file marks, for the
            predictions' ``superweight`` score (None: the score is left null).
    """

    def __init__(
        self,
        subject,
        probes: Sequence[Probe],
        spec: PlanSpec,
        out: str | os.PathLike,
        *,
        engine: str = DEFAULT_ENGINE,
        shard: tuple[int, int] = (0, 1),
        chunk_size: int | None = None,
        engine_options: dict | None = None,
        outputs: str = "full",
        backend: Backend | None = None,
        workers: int | None = None,
        ray_address: str | None = None,
        threads_per_worker: int = 1,
        source: str | None = None,
        order: str = "plan",
        marked: set | None = None,
    ):
        check_order(order)
        if not probes:
            raise InputError("no probes given: use --probe (e.g. --probe drosophila)")
        ids = [p.id for p in probes]
        dup = next((i for i in ids if ids.count(i) > 1), None)
        if dup is not None:
            raise InputError(f"probe id {dup!r} is given twice")
        if chunk_size is not None and chunk_size < 1:
            raise InputError("chunk size must be at least 1")
        check_engine(engine, outputs=outputs, options=engine_options)
        self.placement = Placement(workers, ray_address, threads_per_worker, source)
        if backend is None:
            check_backend(engine, self.placement)
        self.outputs = outputs
        self.subject = subject
        self.probes = list(probes)
        self.spec = spec
        self.out = Path(out)
        self.engine_options = dict(engine_options or {})
        self.engine = make_engine(engine, subject, **self.engine_options)
        self.backend = backend
        self.plan: Plan = build_plan(spec, subject.anatomy)
        self.mutations = self.plan.shard(*shard)
        self.shard = shard
        self.chunk_size = chunk_size or self.engine.chunk_size
        self._prepared: list[PreparedProbe] | None = None
        self.order = order
        self.marked = marked

    def config(self) -> dict:
        """The identity of this screen: what must match for a file to be resumed."""
        return {
            "model": {"id": self.subject.model_id, "hash": self.subject.content_hash()},
            "dtype": str(self.subject.dtype).replace("torch.", ""),
            "device": str(self.subject.device),
            "plan": self.spec.to_dict(),
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "probes": [p.to_dict() for p in self.probes],
            "eos": eos_ids(self.subject),
        }

    def prepared(self) -> list[PreparedProbe]:
        """Probes with their prompts and wild-type outputs (computed once)."""
        if self._prepared is None:
            self._prepared = prepare_probes(self.subject, self.engine, self.probes)
        return self._prepared

    def _open_store(self) -> Store:
        config = self.config()
        prepared = self.prepared()
        records = [
            ProbeRecord(
                p.id,
                p.probe.kind,
                p.probe.text,
                p.probe.chat,
                p.probe.max_new_tokens,
                p.probe.decoding.describe(),
                p.probe.answer,
                p.probe.group,
                p.prompt,
                p.wt_tokens,
                decode_text(self.subject, p.wt_tokens),
                wild_type_logprob(self.subject, p),
            )
            for p in prepared
        ]
        decodings = sorted({p.probe.decoding.describe() for p in prepared})
        run = {
            "model_id": self.subject.model_id,
            "model_hash": config["model"]["hash"],
            "dtype": config["dtype"],
            "device": config["device"],
            "decoding": "; ".join(decodings),
            "tile": self.spec.tile,
            "shard": config["shard"],
            "versions": _versions(),
        }
        return Store.open(self.out, config, run=run, probes=records, mutations=self.mutations)

    def _backend(self, status: Status | None):
        """The backend chunks run on: the one given (left open), or one chosen from the placement."""
        if self.backend is not None:
            return contextlib.nullcontext(self.backend)
        return make_backend(
            self.subject, self.engine, engine_options=self.engine_options, placement=self.placement, status=status
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

            frame = predictions(self.subject, todo, self.prepared(), self.spec.tile, self.marked, shown)
            store.write_predictions(frame)
            if progress:
                progress(len(self.probes), len(self.probes))
        if self.marked is not None:  # predictions stored earlier without --superweights get their marks
            n = store.fill_superweight_marks({m.mutation_id: superweight_mark(m, self.marked) for m in self.mutations})
            if n and status:
                status(f"super-weight marks added to {n} stored predictions")
        return store.read_predictions()

    def _ordered(self, tasks: list[Task], store: Store, status: Status | None) -> list[Task]:
        if self.order == "plan":
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
        with self._backend(status) as backend:
            if status and self._prepared is None:
                status("running the unmutated model on the probes ...")
            prepared = self.prepared()
            with self._open_store() as store:
                tasks = self._ordered(
                    [
                        Task(t.index, t.mutations, None, self.outputs)
                        for t in chunk_grid(self.mutations, self.chunk_size, store.done_mutations())
                    ],
                    store,
                    status,
                )
                total, n_todo = len(self.mutations), sum(len(t.mutations) for t in tasks)
                finished = total - n_todo
                if progress:
                    progress(finished, total)
                suffix = "; calls only" if self.outputs == "calls" else ""
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
        return ScreenSummary(self.out, total, finished, n_todo, time.perf_counter() - start)


def predicted_coverage(subject, probes: Sequence[Probe], spec: PlanSpec, share: float = 0.01):
    """A screen of ``spec`` in predicted order chunk by chunk: the share of the predicted top
    ``share`` of mutants covered, of the plan screened and of the time spent after each chunk
    (:class:`mutascope.predict.order.Schedule`): what ``mutascope plan --predicted`` turns into
    coverage over time. Writes nothing."""
    from ..predict import chunk_cost, schedule

    job = Screen(subject, probes, spec, os.devnull, order="predicted")
    table = predictions(subject, job.mutations, job.prepared(), spec.tile)
    tasks = chunk_grid(job.mutations, job.chunk_size)
    chunks = [[m.mutation_id for m in t.mutations] for t in tasks]
    costs = [chunk_cost([m.layer for m in t.mutations], subject.anatomy.n_layers) for t in tasks]
    return schedule(chunks, table, costs, share)


def check_out_file(
    out: str | os.PathLike,
    *,
    spec: PlanSpec,
    probe_specs: Sequence[str],
    model: str | None = None,
    dtype: str = "float32",
    device: str = "cpu",
    shard: tuple[int, int] = (0, 1),
    mmlu_dir: str | os.PathLike | None = None,
    max_new_tokens: int | None = None,
    decoding: Decoding | None = None,
) -> None:
    """Refuse an ``--out`` file that cannot take this screen, before the model loads.

    What is known without the model (its id, dtype, device, plan, shard and,
    unless an MMLU21 set needs the model to pick its questions, the probes)
    is compared with the file; the rest is checked again when the screen opens it.
    """
    from ..model.subject import model_id_of, parse_device, parse_dtype
    from ..probes.resolve import resolve_probes

    partial = {
        "model": {"id": model_id_of(model)},
        "dtype": str(parse_dtype(dtype)).replace("torch.", ""),
        "device": str(parse_device(device)),
        "plan": spec.to_dict(),
        "shard": f"{shard[0]}/{shard[1]}",
    }
    if not any(s.startswith("mmlu21:") for s in probe_specs):
        found = resolve_probes(probe_specs, None, mmlu_dir=mmlu_dir, max_new_tokens=max_new_tokens, decoding=decoding)
        partial["probes"] = [p.to_dict() for p in found]
    check_target(out, partial)


def check_screen(
    out: str | os.PathLike,
    *,
    spec: PlanSpec,
    probe_specs: Sequence[str],
    engine: str = DEFAULT_ENGINE,
    outputs: str = "full",
    engine_options: dict | None = None,
    placement: Placement | None = None,
    **target,
) -> None:
    """Everything about a screen that can be checked before the model loads, one line each:
    the engine can run ``outputs`` with ``engine_options``, a backend can serve ``placement``
    with it, and the ``--out`` file can take this screen (:func:`check_out_file`; ``target``
    holds its model, dtype, device, shard and probe options)."""
    check_engine(engine, outputs=outputs, options=engine_options)
    check_backend(engine, placement or Placement())
    check_out_file(out, spec=spec, probe_specs=probe_specs, **target)
