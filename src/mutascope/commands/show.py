"""``mutascope show FILE --site ...``: one mutant, side by side with the wild type."""

from __future__ import annotations

from pathlib import Path

import typer


def show(
    results_file: Path = typer.Argument(..., dir_okay=False, help="A screen's results file."),
    site: str = typer.Option(..., "--site", help="LAYER.MATRIX.ROW.COL in tile units, e.g. 3.down.0.5."),
    kind: str = typer.Option("max", "--kind", help="Mutation kind of that site."),
    width: int = typer.Option(100, help="Total width of the side-by-side view."),
) -> None:
    """Show one mutant: WT and mutant outputs side by side, divergence, similarity, category, scores."""
    from ..errors import MutascopeError
    from ..phenotype import render_show, show_mutant

    if width < 40:
        raise MutascopeError(f"--width must be at least 40 characters, got {width}")
    typer.echo(render_show(show_mutant(results_file, site, kind), width=width), nl=False)
