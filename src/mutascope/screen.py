"""A mutagenesis screen: plan -> chunks -> engine -> store, resumable.

Everything a user can get wrong (model, probes, plan, output file) is checked
before the first row is written. Chunks of mutations are committed one
transaction at a time, so stopping a screen (an exception, Ctrl-C, a killed
machine) loses at most the chunks in flight, and rerunning the same screen
continues from there. Chunks are a fixed grid over the plan, so a resumed or
distributed screen batches every mutant exactly as an uninterrupted one does.
Where chunks run is the backend's business (:mod:`mutascope.backends`).
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from . import __version__
from .backends import Backend, LocalBackend, Task, chunk_grid
from .engine import PreparedProbe, make_engine, prepare_probes
from .engine.base import wild_type_logprob
from .engine.batched import check_outputs
from .engine.reference import decode_text, eos_ids
from .errors import MutascopeError
from .plan import Plan, PlanSpec, build_plan
from .probes import Probe
from .store import ProbeRecord, Store

Progress = Callable[[int, int], None]


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
        engine_options: passed to the batched engine (``batch_size``, ``fast_head``).
        outputs: ``"full"`` (every output) or ``"calls"`` (NSM calls and
            effect sizes only; ``mutascope fill`` computes outputs later).
            Not part of the screen's identity: a file may be resumed in either.
        backend: where chunks run (default: this process, with ``engine``).
    """

    def __init__(
        self,
        subject,
        probes: Sequence[Probe],
        spec: PlanSpec,
        out: str | os.PathLike,
        *,
        engine: str = "batched",
        shard: tuple[int, int] = (0, 1),
        chunk_size: int | None = None,
        engine_options: dict | None = None,
        outputs: str = "full",
        backend: Backend | None = None,
    ):
        if not probes:
            raise MutascopeError("no probes given: use --probe (e.g. --probe drosophila)")
        ids = [p.id for p in probes]
        dup = next((i for i in ids if ids.count(i) > 1), None)
        if dup is not None:
            raise MutascopeError(f"probe id {dup!r} is given twice")
        if chunk_size is not None and chunk_size < 1:
            raise MutascopeError("chunk size must be at least 1")
        self.outputs = check_outputs(outputs)
        if outputs == "calls" and engine != "batched":
            raise MutascopeError("--outputs calls needs the batched engine (the reference engine always decodes in full)")
        self.subject = subject
        self.probes = list(probes)
        self.spec = spec
        self.out = Path(out)
        self.engine = make_engine(engine, subject, **(engine_options or {}))
        self.backend = backend or LocalBackend(self.engine)
        self.plan: Plan = build_plan(spec, subject.anatomy)
        self.mutations = self.plan.shard(*shard)
        self.shard = shard
        self.chunk_size = chunk_size or self.engine.chunk_size
        self._prepared: list[PreparedProbe] | None = None

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
                p.id, p.probe.kind, p.probe.text, p.probe.chat, p.probe.max_new_tokens,
                p.probe.decoding.describe(), p.probe.answer, p.probe.group, p.prompt, p.wt_tokens,
                decode_text(self.subject, p.wt_tokens), wild_type_logprob(self.subject, p),
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

    def run(self, progress: Progress | None = None) -> ScreenSummary:
        """Run (or resume) the screen; ``progress(done, total)`` after each chunk."""
        start = time.perf_counter()
        prepared = self.prepared()
        with self._open_store() as store:
            tasks = [
                Task(t.index, t.mutations, None, self.outputs)
                for t in chunk_grid(self.mutations, self.chunk_size, store.done_mutations())
            ]
            total, n_todo = len(self.mutations), sum(len(t.mutations) for t in tasks)
            finished = total - n_todo
            if progress:
                progress(finished, total)
            suffix = "; calls only" if self.outputs == "calls" else ""
            for task, rows, seconds in self.backend.run(tasks, prepared):
                store.write_chunk(rows, engine=self.backend.description + suffix, seconds=seconds)
                finished += len(task.mutations)
                if progress:
                    progress(finished, total)
            # Canonical phenotype ids even if chunks arrived out of order, in this run or
            # an interrupted earlier one (a no-op update when they already are).
            store.renumber_phenotypes()
        return ScreenSummary(self.out, total, finished, n_todo, time.perf_counter() - start)
