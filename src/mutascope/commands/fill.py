"""`mutascope fill FILE`: compute the outputs of chosen NSMs of a calls-only screen, in place."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .common import (
    DeviceOpt,
    RayAddressOpt,
    ThreadsOpt,
    ThreadsPerWorkerOpt,
    WorkersOpt,
    load_subject,
    out,
    resumable,
    set_threads,
    working,
)


def fill(
    results_file: Path = typer.Argument(..., dir_okay=False, help="A screen's results file (written in place)."),
    all_nsms: bool = typer.Option(False, "--all", help="Fill every NSM that has no output yet."),
    top: int | None = typer.Option(
        None, "--top", help="Fill the N NSMs of each probe with the largest effect (logprob_drop)."
    ),
    site: list[str] | None = typer.Option(
        None, "--site", help="Fill every kind at tile LAYER.MATRIX.ROW.COL, e.g. 3.down.0.5 (repeatable)."
    ),
    layers: str | None = typer.Option(None, help="Only NSMs in these layers, e.g. 0-3,7."),
    matrices: str | None = typer.Option(None, help="Only NSMs in these matrices, e.g. q,down."),
    probe: list[str] | None = typer.Option(None, "--probe", "-p", help="Only NSMs of this probe id (repeatable)."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Where to load the screen's model from (default: the model id stored in the file)."
    ),
    device: str = DeviceOpt,
    chunk_size: int = typer.Option(64, help="NSMs per committed transaction."),
    batch_size: int | None = typer.Option(None, help="Mutants per forward pass (default: from free memory)."),
    threads: int | None = ThreadsOpt,
    workers: int | None = WorkersOpt,
    ray_address: str | None = RayAddressOpt,
    threads_per_worker: int = ThreadsPerWorkerOpt,
) -> None:
    """Complete the outputs of chosen NSMs, identical to a full screen's (resumable, idempotent)."""
    from dataclasses import replace

    from ..backends import Placement
    from ..screen import EngineChoice, Selection, check_fill, select_rows
    from ..screen import fill as run_fill
    from ..store import open_results

    selection = Selection.parse(
        all=all_nsms, top=top, sites=site or (), layers=layers, matrices=matrices, probes=probe or ()
    )
    engine = EngineChoice(batch_size=batch_size, chunk_size=chunk_size)
    placement = Placement(workers=workers, ray_address=ray_address, threads_per_worker=threads_per_worker)
    check_fill(engine, placement)
    with open_results(results_file) as results:
        run = results.runs.iloc[0]
        model_id, dtype = run["model_id"], run["dtype"]
        chosen = select_rows(results.con, selection)
    if chosen["filled"].all():  # nothing to compute: no need to load the model
        out.print(f"{len(chosen)} NSMs selected, all already filled; nothing to do")
        return
    set_threads(threads)
    with resumable(results_file):
        subject = load_subject(model or model_id, dtype, device)
        columns = (
            TextColumn("fill"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        with working("fill", *columns) as shown:
            summary = run_fill(
                results_file,
                subject,
                selection,
                engine=engine,
                placement=replace(placement, source=model or model_id),
                progress=shown.progress,
                status=shown.status,
            )
    out.print(
        f"{summary.selected} NSMs selected, {summary.already} already filled, {summary.filled_now} filled now "
        f"({summary.seconds:.1f} s); {summary.unfilled_left} NSMs in {results_file} have no output yet"
    )
