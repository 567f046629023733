"""`mutascope zoom FILE`: refine screened tiles into sub-blocks, down to single weights, in place."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .common import DeviceOpt, ThreadsOpt, load_subject, out, resumable, set_threads, working


def zoom(
    results_file: Path = typer.Argument(
        ..., dir_okay=False, help="A screen's results file (its zoom table is written in place)."
    ),
    site: list[str] | None = typer.Option(
        None, "--site", help="Zoom tile LAYER.MATRIX.ROW.COL (tile units), e.g. 3.down.0.5 (repeatable)."
    ),
    top: int | None = typer.Option(
        None,
        "--top",
        help="Zoom the N strongest sites of the screen (largest logprob_drop over probes, of --kind where screened).",
    ),
    kind: str = typer.Option(
        "max",
        "--kind",
        help="Mutation kind of every sub-block: max/min write the whole matrix's max/min, as for tiles; zero, value:X, "
        "scale:X, sym:X, noise:X.",
    ),
    probe: list[str] | None = typer.Option(
        None, "--probe", "-p", help="Only this probe id of the screen (repeatable; default: all)."
    ),
    share: float = typer.Option(
        0.5,
        help="Follow a half whose logprob_drop is at least this share of its parent's (each level cuts a region into "
        "top/bottom and left/right halves and keeps the axis whose stronger half carries more).",
    ),
    beam: int = typer.Option(2, help="Follow at most this many regions per level (the strongest)."),
    floor: int = typer.Option(1, help="Do not cut regions of at most this many weights (1: down to single weights)."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Where to load the screen's model from (default: the model id stored in the file)."
    ),
    device: str = DeviceOpt,
    figures: Path | None = typer.Option(
        None,
        "--figures",
        file_okay=False,
        help="Also draw each zoomed site's regions inside its tile, coloured by effect, as PNGs in this directory.",
    ),
    batch_size: int | None = typer.Option(None, help="Mutants per forward pass (default: from free memory)."),
    threads: int | None = ThreadsOpt,
) -> None:
    """Where a tile's effect sits: hierarchical refinement into exact sub-block mutants (resumable)."""
    from ..analysis.carriers import carriers, sentence
    from ..errors import InputError
    from ..plan import Kind
    from ..screen.zoom import ZoomRule
    from ..screen.zoom import zoom as run_zoom
    from ..store import open_results, read_zoom

    if not site and top is None:
        raise InputError("choose what to zoom: --site L.m.r.c (repeatable) or --top N (the strongest sites)")
    parsed = Kind.parse(kind)
    rule = ZoomRule(share, beam, floor).check()
    if top is not None and top < 1:
        raise InputError(f"--top must be at least 1, got {top}")
    if figures is not None:
        from ..files.outputs import check_output_dir

        check_output_dir(figures, inputs=[results_file], what="--figures directory")
    with open_results(results_file) as results:
        run = results.runs.iloc[0]
        model_id, dtype = run["model_id"], run["dtype"]
    set_threads(threads)
    with resumable(results_file):
        subject = load_subject(model or model_id, dtype, device)
        columns = (
            TextColumn("zoom"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        )
        with working("zoom", *columns) as shown:
            summary = run_zoom(
                results_file,
                subject,
                sites=site or (),
                top=top,
                kind=parsed,
                probe_ids=probe or (),
                rule=rule,
                engine_options={"batch_size": batch_size},
                progress=shown.progress,
                status=shown.status,
            )
    with open_results(results_file) as results:
        table = read_zoom(results.con)
    table = table[
        table["site"].isin(summary.sites) & (table["kind"] == summary.kind) & table["probe_id"].isin(summary.probes)
    ]
    for row in carriers(table).itertuples(index=False):
        out.print(sentence(row), markup=False, highlight=False, soft_wrap=True)
    if figures is not None:
        from ..files.outputs import save_figure
        from ..report.zoom import zoom_figure

        figures.mkdir(parents=True, exist_ok=True)
        for s in summary.sites:
            save_figure(
                zoom_figure(table, s, summary.kind),
                figures / f"zoom_{s.replace('.', '_')}_{summary.kind.replace(':', '_')}.png",
                dpi=110,
            )
    out.print(
        f"{len(summary.sites)} sites x {len(summary.probes)} probes zoomed with {summary.kind}: "
        f"{summary.computed} exact mutants screened now, {summary.total} zoom rows in {results_file} "
        f"({summary.seconds:.1f} s)",
        markup=False,
        highlight=False,
    )
