"""``mutascope show FILE --site ...``: one mutant, side by side with the wild type; with
``--region``, one region of the file's zoom table (``mutascope zoom``)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import DeviceOpt, ThreadsOpt, load_subject, set_threads


def show(
    results_file: Path = typer.Argument(..., dir_okay=False, help="A screen's results file."),
    site: str = typer.Option(..., "--site", help="LAYER.MATRIX.ROW.COL in tile units, e.g. 3.down.0.5."),
    kind: str = typer.Option(
        "max", "--kind", help="Mutation kind of that site (with --region: the kind it was zoomed with)."
    ),
    region: str | None = typer.Option(
        None,
        "--region",
        help="A zoomed region of that tile, as `mutascope zoom` prints it: R0:R1,C0:C1 in the matrix's weights (ends "
        "exclusive), e.g. 507:508,90:91, or ROW,COL for one weight.",
    ),
    decode: bool = typer.Option(
        False,
        "--decode",
        help="With --region: load the screen's model and decode the region's mutant (the zoom table keeps calls and "
        "effects, no outputs).",
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="With --decode: where to load the screen's model from (default: the model id stored in the file).",
    ),
    device: str = DeviceOpt,
    threads: int | None = ThreadsOpt,
    width: int = typer.Option(100, help="Total width of the side-by-side view."),
) -> None:
    """Show one mutant: WT and mutant outputs side by side, divergence, similarity, category, scores."""
    from ..errors import InputError
    from ..phenotype import render_show, show_mutant

    if width < 40:
        raise InputError(f"--width must be at least 40 characters, got {width}")
    if region is None:
        if decode:
            raise InputError("--decode needs --region: a tile's outputs are read from the file (`mutascope fill`)")
        typer.echo(render_show(show_mutant(results_file, site, kind), width=width), nl=False)
        return
    from ..phenotype import render_region, show_region, with_outputs

    view = show_region(results_file, site, kind, region)
    if decode:
        from ..screen.zoom import region_outputs
        from ..store import open_results

        with open_results(results_file) as results:
            run = results.runs.iloc[0]
            model_id, dtype = run["model_id"], run["dtype"]
        set_threads(threads)
        subject = load_subject(model or model_id, dtype, device)
        value, rows = region_outputs(
            results_file, subject, view.site, view.kind, view.region, [p.probe_id for p in view.probes]
        )
        view = with_outputs(view, value, rows)
    typer.echo(render_region(view, width=width), nl=False)
