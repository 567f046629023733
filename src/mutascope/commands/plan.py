"""``mutascope plan``: the mutants and probe runs of a plan, and its estimated time, before anything runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from . import common
from .common import err, load_subject, out, set_threads

# screen options plan accepts (hidden from its help, named in its docstring) so a pasted screen line works
_IGNORED = "A screen option, accepted so a screen's command line can be pasted; ignored here (one note says so)."


def plan(
    probe: list[str] = common.ProbeOpt,
    model: str | None = common.ModelOpt,
    layers: str = common.LayersOpt,
    matrices: str = common.MatricesOpt,
    rows: str = common.RowsOpt,
    cols: str = common.ColsOpt,
    kinds: str = common.KindsOpt,
    tile: str = common.TileOpt,
    max_new_tokens: int | None = common.TokensOpt,
    decoding: str | None = common.DecodingOpt,
    mmlu_dir: Path | None = common.MmluOpt,
    estimate: bool = typer.Option(
        True, help="Estimate the run time from a short calibration run of the batched engine."
    ),
    predicted: bool = typer.Option(
        False,
        "--predicted",
        help="Also say how much of the predicted top 1 % (local estimate) a screen in --order predicted covers "
        "per hour (one forward and backward pass per probe; needs --estimate).",
    ),
    dtype: str = common.DtypeOpt,
    device: str = common.DeviceOpt,
    threads: int | None = common.ThreadsOpt,
    out_file: Path | None = typer.Option(None, "--out", "-o", help=_IGNORED, hidden=True),
    engine: str | None = typer.Option(None, "--engine", help=_IGNORED, hidden=True),
    outputs: str | None = typer.Option(None, "--outputs", help=_IGNORED, hidden=True),
    order: str | None = typer.Option(None, "--order", help=_IGNORED, hidden=True),
    shard: str | None = typer.Option(None, "--shard", help=_IGNORED, hidden=True),
    chunk_size: int | None = typer.Option(None, "--chunk-size", help=_IGNORED, hidden=True),
    batch_size: int | None = typer.Option(None, "--batch-size", help=_IGNORED, hidden=True),
    float32_head: bool = typer.Option(False, "--float32-head", help=_IGNORED, hidden=True),
    workers: int | None = typer.Option(None, "--workers", help=_IGNORED, hidden=True),
    ray_address: str | None = typer.Option(None, "--ray-address", help=_IGNORED, hidden=True),
    threads_per_worker: int | None = typer.Option(None, "--threads-per-worker", help=_IGNORED, hidden=True),
) -> None:
    """Count the mutants and probe runs of a plan, and estimate its time, before anything runs.

    A screen's command line can be pasted: --threads is applied (the estimate is timed with
    it); screen options that say where and how a screen runs or is written (--out, --engine,
    --outputs, --order, --shard, --chunk-size, --batch-size, --float32-head, --workers,
    --ray-address, --threads-per-worker) are accepted and ignored, with one note on stderr.
    """
    from ..errors import InputError

    selection = {k: v for k, v in locals().items() if k not in common.SCREEN_DEFAULTS}
    config = common.screen_config(selection)  # plan's own: what a screen of this selection would be
    if predicted and not estimate:
        raise InputError("--predicted needs the time estimate: drop --no-estimate")
    given = {
        "--out": out_file,
        "--engine": engine,
        "--outputs": outputs,
        "--order": order,
        "--shard": shard,
        "--chunk-size": chunk_size,
        "--batch-size": batch_size,
        "--float32-head": float32_head or None,
        "--workers": workers,
        "--ray-address": ray_address,
        "--threads-per-worker": threads_per_worker,
    }
    ignored = [name for name, value in given.items() if value is not None]
    if ignored:
        err.print(
            f"note: plan ignores the screen options {', '.join(ignored)} (it counts and times the whole "
            "plan and writes nothing)",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    from ..plan import build_plan
    from ..probes import Decoding, count_probes

    set_threads(threads)
    subject = load_subject(model, dtype, device)
    built = build_plan(config.plan, subject.anatomy)
    if estimate:
        with err.status("preparing probes ..."):
            probes = config.probes.resolve(subject)
        n_probes = len(probes)
    else:  # mmlu21 sets are selected by running the model; count them as 21 without running.
        n_probes = count_probes(
            probe,
            mmlu_dir=mmlu_dir,
            max_new_tokens=max_new_tokens,
            decoding=Decoding.parse(decoding) if decoding else None,
        )
    table = Table(title="plan")
    table.add_column("matrix")
    table.add_column("mutants", justify="right")
    for name, count in built.summary().items():
        table.add_row(name, str(count))
    out.print(table)
    out.print(f"{len(built)} mutants x {n_probes} probes = {len(built) * n_probes} probe runs")
    if estimate:
        from ..engine import estimate_seconds

        with err.status("calibrating the batched engine on a sample of the plan ..."):
            seconds = estimate_seconds(subject, probes, built)
        out.print(
            f"estimated time with the batched engine on {subject.device}: {_duration(seconds['full'])} "
            f"(--outputs full), {_duration(seconds['calls'])} (--outputs calls)"
        )
        if predicted:
            from ..screen import predicted_coverage

            with err.status("predicting every mutant (one backward pass per probe) ..."):
                covered = predicted_coverage(subject, config)
            out.print(_coverage_table(covered, seconds["calls"]))


def _coverage_table(schedule, seconds: float):
    """Share of the predicted top 1 % covered at points in time of a calls-only screen in
    predicted order: at the end of each chunk when there are few, else at hours (or shares of
    the run when it is shorter than two hours). Only finished chunks count, each taking its
    share of the time by its cost (:class:`mutascope.predict.order.Schedule`). A single chunk
    gets a sentence instead: the order cannot help it."""
    n = schedule.n_chunks
    if n <= 1:
        return (
            f"the plan is a single chunk: a screen in --order predicted covers the predicted top 1 % "
            f"only when it ends (after about {_duration(seconds)}); predicted order helps plans of several chunks"
        )
    hours = seconds / 3600
    if n <= 8:
        fractions = list(schedule.ends)
    elif hours >= 2:
        fractions = [min(h / hours, 1.0) for h in range(1, min(int(hours + 0.999), 12) + 1)]
    else:
        fractions = [0.1, 0.25, 0.5, 1.0]
    table = Table(
        title=f"screen in --order predicted (--outputs calls), {n} chunks: the predicted top 1 % "
        "of mutants covered (finished chunks only)"
    )
    for col in ("after", "chunks done", "plan screened", "predicted top 1 % covered"):
        table.add_column(col, justify="right")
    for fraction in fractions:
        done, screened, covered = schedule.at(fraction)
        table.add_row(_duration(fraction * seconds), f"{done}/{n}", f"{100 * screened:.0f} %", f"{100 * covered:.0f} %")
    return table


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
