"""``mutascope screen``: run (or resume) a mutagenesis screen into a results file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import common
from .common import err, load_subject, out, resumable, set_threads, working

OutputsOpt = typer.Option(
    "full",
    "--outputs",
    help="full: decode every NSM's output; calls: NSM calls, divergence steps and effect sizes only "
    "(several times faster; `mutascope fill` computes chosen outputs later).",
)


def screen(
    probe: list[str] = common.ProbeOpt,
    out_file: Path = typer.Option(..., "--out", "-o", help="Results file (DuckDB); rerun the same command to resume."),
    model: str | None = common.ModelOpt,
    layers: str = common.LayersOpt,
    matrices: str = common.MatricesOpt,
    rows: str = common.RowsOpt,
    cols: str = common.ColsOpt,
    kinds: str = common.KindsOpt,
    tile: str = common.TileOpt,
    outputs: str = OutputsOpt,
    engine: str = typer.Option("batched", help="batched (fast, identical results) or reference (the paper's loop)."),
    order: str = typer.Option(
        "plan",
        "--order",
        help="plan; predicted: chunks with the largest predicted effect first (the local estimate, exact "
        "through the mutated block's first nonlinearity; predictions are computed once, stored in the file "
        "as `predictions`; outcomes are identical to plan order); adaptive: a random audit sample, then "
        "rounds of the chunks a surrogate expects to hold most of the top 1 %, until --budget; every "
        "mutant's effect, measured or estimated, goes to the table `estimates` (docs/adaptive.md).",
    ),
    budget: str | None = typer.Option(
        None, "--budget", help="--order adaptive: the mutants to screen, a count (5000) or a share of the plan (10%)."
    ),
    audit: int | None = typer.Option(
        None,
        "--audit",
        help="--order adaptive: at least this many mutants in the audit sample (default 300; also at least 2 % "
        "of the chunks, at most the budget). A resume must use the same.",
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="--order adaptive: seed of the audit sample (default 0). A resume must use the same."
    ),
    replay: Path | None = typer.Option(
        None,
        "--replay",
        help="Answer every chunk from this complete screen (a results file, or its compact export directory such "
        "as docs/atlas/tables) instead of a model; the plan and probe options must be the ones it was screened "
        "with. For measuring --order adaptive offline.",
    ),
    shard: str = typer.Option(
        "0/1", help="Run only shard INDEX/COUNT of the plan (one file per shard; `mutascope merge` joins them)."
    ),
    chunk_size: int | None = typer.Option(None, help="Mutations per committed transaction (default: the engine's)."),
    batch_size: int | None = typer.Option(
        None, help="Batched engine: mutants per forward pass (default: from free memory)."
    ),
    float32_head: bool = typer.Option(
        False, "--float32-head", help="Batched engine: float32 LM head throughout (exact effect sizes, slower)."
    ),
    max_new_tokens: int | None = common.TokensOpt,
    decoding: str | None = common.DecodingOpt,
    mmlu_dir: Path | None = common.MmluOpt,
    dtype: str = common.DtypeOpt,
    device: str = common.DeviceOpt,
    threads: int | None = common.ThreadsOpt,
    workers: int | None = common.WorkersOpt,
    ray_address: str | None = common.RayAddressOpt,
    threads_per_worker: int = common.ThreadsPerWorkerOpt,
) -> None:
    """Run (or resume) a mutagenesis screen into a results file."""
    config = common.screen_config(locals())
    from ..screen import check_screen
    from ..store import open_results

    replayed = config.placement.replay is not None
    if replayed:
        with resumable(out_file):
            summary = _replay(config)
    else:
        check_screen(config)
        set_threads(threads)
        with resumable(out_file):
            summary = _run(config)
    with open_results(summary.path) as results:
        _print_summary(results, summary, replayed)


def _run(config):
    """Load the model, resolve the probes and run the screen with a progress bar."""
    from ..screen import Screen

    subject = load_subject(config.model.name, config.model.dtype, config.model.device)
    with err.status("preparing probes ..."):
        job = Screen(subject, config)
    columns = (
        TextColumn("screen"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with working("screen", *columns) as shown:
        return job.run(shown.progress, shown.status)


def _replay(config):
    """``--replay``: the same screen answered from a complete one, without loading a model."""
    from ..screen.replay import ReplayScreen

    with err.status("reading the replay source ..."):
        job = ReplayScreen(config)
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with working("screen", *columns) as shown:
        return job.run(shown.progress, shown.status)


def _choice_timing(rounds, replayed: bool) -> str:
    """The surrogate's fits and chunk choices, in seconds; for a real screen also as a share of
    the rounds' screening time. A replay's screening is a read of the source, so a share of it
    means nothing (it can exceed 100 %): seconds alone."""
    fit = sum(rounds.fit_seconds)
    if not rounds.fit_seconds:
        return ""
    if replayed:
        return f"; surrogate fits and chunk choices took {fit:.1f} s (a replay reads its outcomes: no screening time)"
    share = rounds.choice_share
    if share != share:
        return f"; surrogate fits and chunk choices took {fit:.1f} s"
    return (
        f"; surrogate fits and chunk choices took {fit:.1f} s, {share:.1%} of the rounds' screening time "
        f"({sum(rounds.screen_seconds[1:]):.1f} s)"
    )


def _print_summary(results, summary, replayed: bool = False) -> None:
    counts = results.query(
        "SELECT m.matrix, m.kind, count(DISTINCT m.mutation_id) AS mutants,"
        " count(DISTINCT CASE WHEN o.nsm THEN m.mutation_id END) AS nsm_mutants"
        " FROM mutations m JOIN outcomes o USING (mutation_id) GROUP BY ALL ORDER BY ALL"
    )
    table = Table(title="NSMs by matrix and kind (mutants with any NSM)")
    for col in ("matrix", "kind", "mutants", "NSM"):
        table.add_column(col)
    for r in counts.itertuples():
        table.add_row(r.matrix, r.kind, str(r.mutants), str(r.nsm_mutants))
    out.print(table)
    per_probe = results.query(
        "SELECT probe_id, sum(nsm::INT) AS nsm, count(*) AS n FROM outcomes GROUP BY ALL ORDER BY ALL"
    )
    for r in per_probe.itertuples():
        out.print(f"probe {r.probe_id}: {int(r.nsm)} NSM of {int(r.n)}")
    rounds = summary.rounds
    if rounds is not None:
        for f in rounds.found:
            out.print(f"audited: {f.describe()}")
        timing = _choice_timing(rounds, replayed)
        out.print(
            f"adaptive: {rounds.rounds} rounds (audit {rounds.audit_mutants} mutants), budget {rounds.budget}{timing}; "
            "every mutant's effect, measured or estimated, is in the table estimates"
        )
    out.print(
        f"{summary.n_done}/{summary.n_mutations} mutants done ({summary.n_run_now} this run, {summary.seconds:.1f} s); "
        f"results in {summary.path}"
    )
