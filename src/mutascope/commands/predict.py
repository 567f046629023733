"""``mutascope predict``: the predicted effect and cheap scores of every mutant of a plan, from one
forward and backward pass per probe, into a results file (docs/methods.md, "Predicted maps")."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from . import common
from .common import err, load_subject, out, resumable, set_threads, working

SuperweightsOpt = typer.Option(
    None,
    "--superweights",
    help="Super weights of this model (a `mutascope superweights` DuckDB file or JSON export): "
    "fills the `superweight` score (tile on a marked row or column), also of predictions stored earlier "
    "without it (marks already stored are kept).",
)


def predict(
    probe: list[str] = common.ProbeOpt,
    out_file: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="A screen's results file (the plan must match) or a new file "
        "(a screen with these options can later run into it).",
    ),
    model: str | None = common.ModelOpt,
    layers: str = common.LayersOpt,
    matrices: str = common.MatricesOpt,
    rows: str = common.RowsOpt,
    cols: str = common.ColsOpt,
    kinds: str = common.KindsOpt,
    tile: str = common.TileOpt,
    shard: str = typer.Option("0/1", help="Only shard INDEX/COUNT of the plan (as `screen --shard`)."),
    superweights: Path | None = SuperweightsOpt,
    max_new_tokens: int | None = common.TokensOpt,
    decoding: str | None = common.DecodingOpt,
    mmlu_dir: Path | None = common.MmluOpt,
    dtype: str = common.DtypeOpt,
    device: str = common.DeviceOpt,
    threads: int | None = common.ThreadsOpt,
    top: int = typer.Option(10, "--top", help="Print the N mutants of each probe with the largest predicted effect."),
) -> None:
    """Predict every mutant's effect from one backward pass per probe (first order, and local: exact through the
    mutated block's first nonlinearity; no mutant is run). Stored predictions are kept; a file predicted before
    the local estimate existed gets only its `local` values added."""
    import time
    from dataclasses import replace

    from ..errors import InputError

    if top < 0:
        raise InputError(f"--top must be 0 or more, got {top}")
    if superweights is not None and not superweights.is_file():
        raise InputError(f"superweights file not found: {superweights}")
    config = common.screen_config(locals())
    from ..screen import Screen, check_screen

    check_screen(config)
    set_threads(threads)
    start = time.perf_counter()
    with resumable(out_file):
        subject = load_subject(model, dtype, device)
        if superweights is not None:
            from ..analysis.superweight_tiles import subject_marks
            from ..plan import build_plan

            planned = build_plan(config.plan, subject.anatomy).shard(*config.shard)
            matrices_planned = {(m.layer, m.matrix) for m in planned}
            marked = subject_marks(superweights, subject, matrices_planned, config.plan.tile)
            config = replace(config, marked=marked)
        with err.status("preparing probes ..."):
            job = Screen(subject, config)
        columns = (
            TextColumn("predict (probes)"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        with working("predict", *columns) as shown:
            table = job.predict(shown.progress, shown.status)
    _print_top(table, job, top)
    noise = sorted({str(m.kind) for m in job.mutations if m.kind.name == "noise"})
    if noise:
        out.print(
            f"note: {', '.join(noise)} mutants get no predicted effect (`predicted` is NULL): the first-order "
            "term of a random tile is a random projection of the gradient; their cheap scores are filled"
        )
    out.print(
        f"{len(job.mutations)} mutants x {len(job.probes)} probes predicted ({time.perf_counter() - start:.1f} s); "
        f"table `predictions` in {out_file}"
    )


def _print_top(table, job, top: int) -> None:
    if not top:
        return
    from ..predict import ordering_estimate

    sites = {m.mutation_id: m for m in job.mutations}
    local = "local" in table.columns
    for probe_id, rows in table[table["mutation_id"].isin(sites)].groupby("probe_id", sort=False):
        best = rows.assign(a=ordering_estimate(rows)).nlargest(top, "a")
        shown = Table(
            title=f"largest predicted effects, probe {probe_id} (logprob_drop in nats; local: exact to the "
            "first nonlinearity, first order after it)"
        )
        for col in ("layer", "matrix", "row", "col", "kind", "predicted", *(["local"] if local else [])):
            shown.add_column(col, justify="right")
        for r in best.itertuples():
            m = sites[r.mutation_id]
            shown.add_row(
                str(m.layer),
                m.matrix,
                str(m.row),
                str(m.col),
                str(m.kind),
                f"{r.predicted:.3g}",
                *([f"{r.local:.3g}"] if local else []),
            )
        out.print(shown)
