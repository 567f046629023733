"""An adaptive screen's rounds, run and committed (the choice itself: :mod:`mutascope.predict.adaptive`).

Round 0 is the audit; each later round is chosen by the surrogate fit on the
outcomes of the rounds before it, and only those, so after a kill the rerun
recomputes the same rounds from the file (a round's chunks already committed
are skipped) and continues where the budget says. Every chunk is a chunk of
the plan's fixed grid, so each outcome is the plan-order screen's bit for bit,
whichever backend ran it. At the end the estimated map is stored as
``estimates``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..backends import Backend, chunk_grid
from ..predict.adaptive import AUDIT_MINIMUM, Found, Schedule, found_share, next_round, parse_budget
from ..predict.surrogate import Sites, estimate_frame, fit_maps
from ..probes.prepared import PreparedProbe
from ..progress import Progress, Status
from ..store import Store
from ..store.adaptive import AdaptiveSettings, check_settings, measured_effects, write_estimates
from .config import Adaptive


@dataclass(kw_only=True)
class Rounds:
    """What an adaptive run did: rounds, the audited shares found, and where its time went."""

    budget: int
    audit_mutants: int
    rounds: int = 0
    found: list[Found] = field(default_factory=list)
    fit_seconds: list[float] = field(default_factory=list)  # surrogate fit + chunk choice, per round chosen
    screen_seconds: list[float] = field(default_factory=list)  # screening (backend + commit), per round run

    @property
    def choice_share(self) -> float:
        """Fitting and choosing, as a share of the screening time of the rounds after the audit
        (NaN before any: a resumed run may screen nothing new)."""
        screened = sum(self.screen_seconds[1:])
        return sum(self.fit_seconds) / screened if screened > 0 else float("nan")


def schedule_of(settings: Adaptive, mutations: Sequence[Any], chunk_size: int) -> tuple[Schedule, AdaptiveSettings]:
    """The :class:`Schedule` of an adaptive screen of ``mutations`` on chunks of ``chunk_size``,
    and the settings its file records (what fixes its rounds)."""
    grid = chunk_grid(mutations, chunk_size)
    sizes = {t.index: len(t.mutations) for t in grid}
    budget = parse_budget(settings.budget, len(mutations))
    audit_minimum = AUDIT_MINIMUM if settings.audit is None else settings.audit
    schedule = Schedule.of(list(sizes), chunk_size, budget, settings.seed, audit_minimum=audit_minimum)
    recorded = AdaptiveSettings(
        seed=settings.seed,
        audit=audit_minimum,
        chunk_size=chunk_size,
        budget=budget,
        audit_chunks=len(schedule.audit),
        audit_mutants=sum(sizes[c] for c in schedule.audit),
    )
    return schedule, recorded


@dataclass(frozen=True, kw_only=True)
class Outlook:
    """What an adaptive screen of a plan will screen, known before it runs (``plan --budget``):
    the audit exactly (it is drawn from the seed), the rounds and mutants as they come out when
    every chunk chosen is a full one (the rounds pick chunks by score, so a short last chunk of
    the plan can shift the count by a few mutants)."""

    n_mutations: int
    n_chunks: int
    chunk_size: int
    budget: int
    audit_chunks: int
    audit_mutants: int
    rounds: int  # after the audit
    round_chunks: int
    screened: int  # mutants, about

    @property
    def share(self) -> float:
        """The share of the plan screened."""
        return self.screened / self.n_mutations if self.n_mutations else 0.0


def outlook(settings: Adaptive, mutations: Sequence[Any], chunk_size: int) -> Outlook:
    """The :class:`Outlook` of an adaptive screen of ``mutations`` (the rounds' loop in
    :func:`run_rounds`, with full chunks: a round takes its chunks until the budget is spent)."""
    schedule, recorded = schedule_of(settings, mutations, chunk_size)
    n_chunks = len({m.mutation_id // chunk_size for m in mutations})
    used, chunks, rounds = recorded.audit_mutants, recorded.audit_chunks, 0
    while used < schedule.budget and chunks < n_chunks:
        take = min(schedule.round_chunks, n_chunks - chunks, -(-(schedule.budget - used) // chunk_size))
        used, chunks, rounds = used + take * chunk_size, chunks + take, rounds + 1
    return Outlook(
        n_mutations=len(mutations),
        n_chunks=n_chunks,
        chunk_size=chunk_size,
        budget=schedule.budget,
        audit_chunks=recorded.audit_chunks,
        audit_mutants=recorded.audit_mutants,
        rounds=rounds,
        round_chunks=schedule.round_chunks,
        screened=min(used, len(mutations)),
    )


def run_rounds(
    settings: Adaptive,
    mutations: Sequence[Any],
    chunk_size: int,
    store: Store,
    backend: Backend,
    prepared: Sequence[PreparedProbe],
    predictions: pd.DataFrame | None,
    *,
    outputs: str = "full",
    suffix: str = "",
    progress: Progress | None = None,
    status: Status | None = None,
) -> tuple[int, int, Rounds]:
    """Run an adaptive screen of ``mutations`` into ``store`` on ``backend``; returns (mutants
    done, mutants run now, :class:`Rounds`)."""
    grid = {t.index: t for t in chunk_grid(mutations, chunk_size)}
    sizes = {k: len(t.mutations) for k, t in grid.items()}
    total = len(mutations)
    schedule, recorded = schedule_of(settings, mutations, chunk_size)
    budget = schedule.budget
    check_settings(store.con, str(store.path), recorded)
    frame = pd.DataFrame(
        [(m.mutation_id, m.layer, m.matrix, m.row, m.col, str(m.kind)) for m in mutations],
        columns=["mutation_id", "layer", "matrix", "row", "col", "kind"],
    )
    sites = Sites.of(frame, chunk_size)
    chunk_of = pd.Series(sites.chunk, index=sites.mutation_id)
    audit_mask = np.isin(sites.chunk, schedule.audit)
    probe_ids = [p.id for p in prepared]
    done = store.done_mutations()
    finished = len(done)
    before = finished
    report = Rounds(budget=budget, audit_mutants=sum(sizes[c] for c in schedule.audit))
    sequence: list[int] = []
    chunks = list(schedule.audit)
    maps = None
    goal = min(total, budget)  # what progress counts towards: the budget, not the plan (its ETA too)
    if progress:
        progress(finished, max(goal, finished))
    while chunks:
        t0 = time.perf_counter()
        tasks = [
            replace(t, mutations=tuple(m for m in t.mutations if m.mutation_id not in done), outputs=outputs)
            for t in (grid[c] for c in chunks)
        ]
        for task, rows, seconds in backend.run([t for t in tasks if t.mutations], prepared):
            store.write_chunk(rows, engine=backend.description + suffix, seconds=seconds)
            finished += len(task.mutations)
            if progress:
                progress(finished, max(goal, finished))  # whole chunks may end past the budget
        report.screen_seconds.append(time.perf_counter() - t0)
        sequence += chunks
        report.rounds += 1
        used = sum(sizes[c] for c in sequence)
        t0 = time.perf_counter()
        measured = measured_effects(store.con, [m.mutation_id for c in sequence for m in grid[c].mutations])
        maps = fit_maps(sites, probe_ids, predictions, measured, schedule.audit)
        report.found = found_share(measured, chunk_of, schedule.audit, total)
        if status:
            label = "audit" if report.rounds == 1 else f"round {report.rounds - 1}"
            status(f"{label} done: {used} of {budget} mutants; " + "; ".join(f.describe() for f in report.found))
        if used >= budget:
            break
        taken = set(sequence)
        candidates = [c for c in grid if c not in taken]
        chunks = next_round(maps, sites.chunk, audit_mask, candidates, sizes, schedule.round_chunks, budget - used)
        report.fit_seconds.append(time.perf_counter() - t0)
    if maps is not None:
        write_estimates(store.con, estimate_frame(sites, maps))
    return finished, finished - before, report
