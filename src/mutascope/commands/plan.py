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
    budget: str | None = typer.Option(
        None,
        "--budget",
        help="With --order adaptive: what an adaptive screen of this budget (a count of mutants, or a share "
        "such as 10%) would screen (audit, rounds, mutants), its estimated time, and what the SmolLM2 atlas "
        "replay found at such budgets (docs/adaptive.md; an expectation, not a promise).",
    ),
    audit: int | None = typer.Option(
        None, "--audit", help="With --order adaptive: the audit's least size in mutants, as screen takes it."
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="With --order adaptive: the audit's seed, as screen takes it."
    ),
    dtype: str = common.DtypeOpt,
    device: str = common.DeviceOpt,
    threads: int | None = common.ThreadsOpt,
    out_file: Path | None = typer.Option(None, "--out", "-o", help=_IGNORED, hidden=True),
    engine: str | None = typer.Option(None, "--engine", help=_IGNORED, hidden=True),
    outputs: str | None = typer.Option(None, "--outputs", help=_IGNORED, hidden=True),
    order: str | None = typer.Option(
        None, "--order", help="adaptive (with --budget): say what an adaptive screen would do; other orders ignored."
    ),
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
    With --order adaptive --budget B (and --chunk-size, --audit, --seed as screen takes them),
    plan also says what that adaptive screen would screen and what to expect (docs/adaptive.md).
    """
    from ..errors import InputError

    selection = {k: v for k, v in locals().items() if k not in common.SCREEN_DEFAULTS}
    config = common.screen_config(selection)  # plan's own: what a screen of this selection would be
    if predicted and not estimate:
        raise InputError("--predicted needs the time estimate: drop --no-estimate")
    adaptive = _adaptive(order, budget, audit, seed, chunk_size)
    given = {
        "--out": out_file,
        "--engine": engine,
        "--outputs": outputs,
        "--order": None if adaptive else order,
        "--shard": shard,
        "--chunk-size": None if adaptive else chunk_size,
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
    seconds = None
    if estimate:
        from ..engine import estimate_seconds

        with err.status("calibrating the batched engine on a sample of the plan ..."):
            seconds = estimate_seconds(subject, probes, built)
        out.print(
            f"estimated time with the batched engine on {subject.device}: {_duration(seconds['full'])} "
            f"(--outputs full), {_duration(seconds['calls'])} (--outputs calls)"
        )
    if adaptive is not None:
        _adaptive_outlook(adaptive, built.mutations, seconds)
    if estimate:
        if predicted:
            assert seconds is not None
            from ..screen import predicted_coverage

            with err.status("predicting every mutant (one backward pass per probe) ..."):
                covered = predicted_coverage(subject, config)
            out.print(_coverage_table(covered, seconds["calls"]))


def _adaptive(order: str | None, budget: str | None, audit: int | None, seed: int | None, chunk_size: int | None):
    """``(Adaptive, chunk size)`` of ``--order adaptive --budget B`` (None for another order); the
    adaptive options without that order, or that order without a budget, are refused as screen
    refuses them."""
    from ..errors import InputError
    from ..screen import Adaptive
    from ..screen.config import ADAPTIVE_CHUNK_SIZE

    if order != "adaptive":
        if budget is not None or audit is not None or seed is not None:
            raise InputError("--budget, --audit and --seed are for --order adaptive")
        return None
    settings = Adaptive(budget=budget, seed=seed or 0, audit=audit)
    settings.check()
    if chunk_size is not None and chunk_size < 1:
        raise InputError(f"--chunk-size must be at least 1, got {chunk_size}")
    return settings, chunk_size or ADAPTIVE_CHUNK_SIZE


def _adaptive_outlook(adaptive, mutations, seconds: dict[str, float] | None) -> None:
    """What ``screen --order adaptive --budget B`` would screen, its time (the whole plan's
    estimate scaled to the mutants screened), and what the SmolLM2 atlas replay found at the
    nearest measured budgets (docs/adaptive.md), said as an expectation from one model's replay."""
    from ..predict.adaptive import SMOLLM2_REPLAY, replay_budgets
    from ..screen.adaptive import outlook

    settings, chunk_size = adaptive
    o = outlook(settings, mutations, chunk_size)
    out.print(
        f"adaptive screen, --budget {settings.budget} = {o.budget} mutants: the plan's {o.n_mutations} mutants are "
        f"{o.n_chunks} chunks of {o.chunk_size}; an audit of {o.audit_chunks} chunks ({o.audit_mutants} mutants, "
        f"seed {settings.seed}), then {o.rounds} round{'' if o.rounds == 1 else 's'} of up to {o.round_chunks} "
        f"chunk{'' if o.round_chunks == 1 else 's'}: about {o.screened} mutants "
        f"({o.share:.1%} of the plan) screened, every other mutant's effect estimated"
    )
    if seconds is not None:
        out.print(
            f"estimated time of the adaptive screen: {_duration(seconds['full'] * o.share)} (--outputs full), "
            f"{_duration(seconds['calls'] * o.share)} (--outputs calls): the plan's estimate for {o.share:.1%} of it "
            f"(chunks of {o.chunk_size} may batch less well than the calibration's), plus the surrogate's fits and "
            "choices "
            "(0.5-4 s a round on SmolLM2's 51,840-mutant plan)"
        )
    budgets = replay_budgets(o.budget / o.n_mutations)  # the budget's share (the last chunk may overshoot it)
    table = Table(
        title="what to expect: the SmolLM2-135M atlas replay (docs/adaptive.md) at the nearest measured budgets; "
        "an expectation from one model's replay, not a promise for this one (on the Gemma 3 270M replay the "
        "adaptive screen found less than predicted order)"
    )
    for col in (
        "budget",
        "probe",
        "top 1 % found: adaptive",
        "predicted order",
        "random order",
        "Spearman, unscreened",
    ):
        table.add_column(col, justify="right")
    for b in budgets:
        for probe, (found, predicted, random, rho) in SMOLLM2_REPLAY[b].items():
            table.add_row(f"{b:.0%}", probe, f"{found:.1%}", f"{predicted:.1%}", f"{random:.1%}", f"{rho:.2f}")
    out.print(table)


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
