"""Outputs on demand: complete the outputs of chosen NSMs of a calls-only screen, in place.

A calls-only screen (``mutascope screen --outputs calls``) knows every NSM's
call, divergence step and effect size but not its output text, which costs
most of a full screen's time. ``mutascope fill`` computes the outputs a user
wants, for example the strongest NSMs of each probe, by running the batched
engine in full mode on just those mutants. The engine is exact, so a filled
row is identical to the row a full screen writes.

* **Selection.** ``--all``; ``--top N`` (the N NSMs of each probe with the
  largest effect, filled or not, so a rerun selects the same rows);
  ``--site L.m.r.c`` (every kind at that tile); narrowed by
  ``--layers/--matrices/--probe``.
* **Resumable and idempotent.** Each chunk of rows is one transaction; a
  killed fill loses at most the chunks in flight, and rows already filled
  are never selected again, so a second fill of the same rows changes
  nothing.
* **Phenotype ids** are renumbered once at the end, in plan order over the
  outputs filled so far (:meth:`mutascope.store.Store.renumber_phenotypes`):
  after ``--all`` they are exactly a full screen's.
* **Checks.** The model must have the screen's weights and dtype, its WT
  outputs must be the stored ones, and each recomputed call must equal the
  stored call; otherwise nothing is written for that chunk and the fill
  stops with a one-line error (the numerics of this machine differ).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..backends import Backend, Placement, Task, check_backend, make_backend
from ..engine import make_engine
from ..engine.base import Engine, wild_type_logprob
from ..errors import InputError, ResultsFileError
from ..model.subject import decode_text, vocab_size
from ..plan.parse import parse_indices, parse_names, parse_site
from ..probes.prepared import PreparedProbe, prepare
from ..progress import Progress, Status
from ..store import OutcomeRow, Store, open_results, read_mutations
from ..store.mutants import nsm_calls, nsm_rows, screened_sites, unfilled_count
from ..store.readback import ordered_probe_ids, wt_texts
from .config import EngineChoice
from .readback import check_model, stored_probes

DEFAULT_CHUNK = 64  # rows per committed fill transaction: a few seconds of decoding each
FILL_ENGINE = EngineChoice(chunk_size=DEFAULT_CHUNK)  # the default engine, full outputs


@dataclass(frozen=True)
class Selection:
    """Which NSMs to fill. ``all``/``top``/``sites`` choose; the rest narrow."""

    all: bool = False
    top: int | None = None
    sites: tuple[str, ...] = ()
    layers: tuple[int, ...] | None = None
    matrices: tuple[str, ...] | None = None
    probe_ids: tuple[str, ...] | None = None

    @classmethod
    def parse(
        cls,
        *,
        all: bool = False,
        top: int | None = None,
        sites: Sequence[str] = (),
        layers: str | None = None,
        matrices: str | None = None,
        probes: Sequence[str] = (),
    ) -> Selection:
        """From command-line values, with one-line errors for bad ones."""
        if not (all or top is not None or sites):
            raise InputError("choose what to fill: --all, --top N (per probe, by effect) or --site L.m.r.c")
        if top is not None and top < 1:
            raise InputError(f"--top must be at least 1, got {top}")
        for site in sites:
            parse_site(site)
        return cls(
            all=all,
            top=top,
            sites=tuple(sites),
            layers=parse_indices(layers, "layer"),
            matrices=parse_names(matrices),
            probe_ids=tuple(probes) or None,
        )


@dataclass(kw_only=True)
class FillSummary:
    """What :func:`fill` did."""

    path: Path
    selected: int  # NSM rows the selection names
    already: int  # of those, filled before this run
    filled_now: int
    unfilled_left: int  # NSMs of the whole file still without outputs
    seconds: float


def select_rows(con, selection: Selection) -> pd.DataFrame:
    """``(mutation_id, probe_id, filled, logprob_drop)`` of the NSMs the selection names."""
    probes = ordered_probe_ids(con)
    unknown = [p for p in selection.probe_ids or () if p not in probes]
    if unknown:
        raise InputError(f"unknown probe {unknown[0]!r}: this screen has {', '.join(probes)}")
    _check_in_screen(con, selection)
    frame = nsm_rows(con)
    keep = pd.Series(True, index=frame.index)
    if selection.layers is not None:
        keep &= frame["layer"].isin(selection.layers)
    if selection.matrices is not None:
        keep &= frame["matrix"].isin(selection.matrices)
    if selection.probe_ids is not None:
        keep &= frame["probe_id"].isin(selection.probe_ids)
    frame = frame[keep]
    chosen = pd.Series(False, index=frame.index)
    if selection.all:
        chosen |= True
    if selection.sites:
        for site in selection.sites:
            layer, matrix, row, col = parse_site(site)
            chosen |= (
                (frame["layer"] == layer) & (frame["matrix"] == matrix) & (frame["row"] == row) & (frame["col"] == col)
            )
    if selection.top is not None:
        if frame["logprob_drop"].isna().all() and len(frame):
            raise InputError(
                "this screen has no effect sizes (reference engine): --top needs them; use --all or --site"
            )
        ranked = frame.sort_values(["probe_id", "logprob_drop", "mutation_id"], ascending=[True, False, True])
        top_index = ranked.groupby("probe_id", sort=False).head(selection.top).index
        chosen |= frame.index.isin(top_index)
    return frame[chosen][["mutation_id", "probe_id", "filled", "logprob_drop"]].reset_index(drop=True)


def _check_in_screen(con, selection: Selection) -> None:
    """A site, layer or matrix the screen never mutated is a mistake, not "nothing to do"."""
    screened = screened_sites(con)
    layers, matrices = sorted(set(screened["layer"])), sorted(set(screened["matrix"]))
    where = f"this screen has layers {_ranges(layers)} and matrices {','.join(matrices)}"
    for layer in selection.layers or ():
        if layer not in layers:
            raise InputError(f"layer {layer} is not in this screen: {where}")
    for matrix in selection.matrices or ():
        if matrix not in matrices:
            raise InputError(f"matrix {matrix!r} is not in this screen: {where}")
    sites = set(screened.itertuples(index=False, name=None))
    for site in selection.sites or ():
        layer, matrix, row, col = parse_site(site)
        if (layer, matrix, row, col) not in sites:
            raise InputError(
                f"site {site} (layer {layer}, {matrix}, tile row {row}, column {col}) is not in this screen: {where}"
            )


def _ranges(values: list[int]) -> str:
    """``0,1,2,5`` as ``0-2,5``."""
    out, start = [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(str(start) if start == v else f"{start}-{v}")
            start = None
    return ",".join(out)


def fill_tasks(rows: pd.DataFrame, mutations: dict, probe_order: list[str], chunk_size: int) -> list[Task]:
    """Tasks of at most ``chunk_size`` mutations, one probe each, in plan order."""
    tasks: list[Task] = []
    for pid in probe_order:
        ids = sorted(rows.loc[rows["probe_id"] == pid, "mutation_id"].tolist())
        for start in range(0, len(ids), chunk_size):
            chunk = tuple(mutations[i] for i in ids[start : start + chunk_size])
            tasks.append(Task(index=len(tasks), mutations=chunk, probe_ids=(pid,), outputs="full"))
    return tasks


def check_fill(engine: EngineChoice, placement: Placement) -> None:
    """What can be checked before the model loads: the chunk size, the engine's options, the placement."""
    engine.check()
    check_backend(engine.name, placement)


def fill(
    path: str | os.PathLike,
    subject: Any,
    selection: Selection,
    *,
    engine: EngineChoice = FILL_ENGINE,
    placement: Placement = Placement(),
    backend: Backend | None = None,
    progress: Progress | None = None,
    status: Status | None = None,
) -> FillSummary:
    """Fill the outputs of the NSMs ``selection`` names, in place; see the module docstring.

    Runs ``engine`` (the default engine, chunks of ``engine.chunk_size`` rows) in full mode,
    on ``backend`` if given (the caller closes it), else on the backend ``placement`` calls for.
    """
    start = time.perf_counter()
    path = Path(path)
    engine.check()  # the backend is checked where it is built (make_backend)
    chunk_size = engine.chunk_size or DEFAULT_CHUNK
    with open_results(path) as results:
        check_model(results.con, subject, path)
        chosen = select_rows(results.con, selection)
    todo = chosen[~chosen["filled"]]
    runner = make_engine(engine.name, subject, **engine.options)
    opened = (
        contextlib.nullcontext(backend)
        if backend is not None
        else make_backend(subject, runner, engine_options=engine.options, placement=placement, status=status)
    )
    with opened as backend, Store.open_existing(path) as store:
        probes = stored_probes(store.con, vocab_size(subject))
        if any(not p.prompt for p in probes):
            probes = _restore_tokens(store, subject, runner, probes, path)
        _check_wild_types(runner, probes, set(todo["probe_id"]), path)
        store.record_wt_logprobs({p.id: wild_type_logprob(subject, p) for p in probes})
        mutations = read_mutations(store.con, sorted(set(todo["mutation_id"])))
        tasks = fill_tasks(todo, mutations, [p.id for p in probes], chunk_size)
        calls = nsm_calls(store.con)
        total, done, filled_now = len(todo), 0, 0
        if progress:
            progress(0, total)
        for task, rows, seconds in backend.run(tasks, probes):
            for row in rows:
                _check_call(row, calls.get((row.mutation_id, row.probe_id)), path)
            filled_now += store.fill_chunk(rows, engine=backend.description, seconds=seconds)
            done += len(task.mutations)
            if progress:
                progress(done, total)
        store.renumber_phenotypes()
        left = unfilled_count(store.con)
    return FillSummary(
        path=path,
        selected=len(chosen),
        already=int(chosen["filled"].sum()),
        filled_now=filled_now,
        unfilled_left=int(left),
        seconds=time.perf_counter() - start,
    )


def _restore_tokens(
    store: Store, subject: Any, engine: Engine, probes: Sequence[PreparedProbe], path: Path
) -> list[PreparedProbe]:
    """The token arrays of a screen replayed from a compact export (``screen --replay``), which
    keeps each probe's text, WT text and calls but no token arrays: the prompt is encoded and the
    WT output generated by the loaded model (the screen's, by :func:`check_model`), accepted only if
    its text is the stored WT text, then stored so that later commands (phenotypes' edit distance)
    see them. A probe whose tokens are stored is left as it is."""
    texts = wt_texts(store.con)
    restored: list[PreparedProbe] = []
    for p in probes:
        if p.prompt:
            restored.append(p)
            continue
        fresh = prepare(subject, p.probe)
        fresh = replace(fresh, wt_tokens=engine.generate(fresh))
        text = decode_text(subject, fresh.wt_tokens)
        if text != texts[p.id]:
            raise ResultsFileError(
                f"{path}: probe {p.id!r} has no stored tokens (a replayed export) and the loaded model's WT "
                f"output {text[:40]!r} is not the stored {texts[p.id][:40]!r}; it cannot be filled here"
            )
        restored.append(fresh)
    store.restore_probe_tokens({p.id: (p.prompt, p.wt_tokens) for p in restored})
    return restored


def _check_wild_types(engine: Engine, probes: Sequence[PreparedProbe], used: set[str], path: Path) -> None:
    """Refuse a machine whose unmutated outputs differ from the stored ones on a probe to fill:
    its numerics differ from the screen's, so the outputs it computes would not be the screen's."""
    for p in probes:
        if p.id in used and engine.generate(p) != p.wt_tokens:
            raise ResultsFileError(
                f"{path}: the unmutated model's output for probe {p.id!r} differs from the stored one; "
                "the numerics of this machine differ from the screen's, so its outputs cannot be filled here"
            )


def _check_call(row: OutcomeRow, stored: int | None, path: Path) -> None:
    """Refuse a recomputed call that differs from the stored one (nothing of its chunk is written)."""
    if row.divergence != stored:
        raise ResultsFileError(
            f"{path}: mutation {row.mutation_id} on probe {row.probe_id!r} now diverges at step "
            f"{row.divergence}, the screen recorded {stored}; the "
            "numerics of this machine differ from the screen's, so its outputs cannot be filled here"
        )
