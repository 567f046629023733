"""``mutascope export FILE``: every table of a results file as Parquet."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import out


def export(
    results_file: Path = typer.Argument(..., help="A screen's results file."),
    out_dir: Path = typer.Option(
        None, "--out", "-o", help="Directory for the Parquet files (default: next to the file)."
    ),
    compact: bool = typer.Option(
        False,
        "--compact",
        help="Only what the statistics read: one row per mutant and probe "
        "without output texts (table tiles), runs, probes, the analysis tables and the filled NSMs' "
        "texts with their first words and categories (table outputs).",
    ),
    control: Path | None = typer.Option(
        None,
        "--control",
        dir_okay=False,
        help="With --compact: another screen of the same model, probes and tile (the size-matched control), "
        "whose per-tile rows are written as control_tiles.",
    ),
    only: list[str] | None = typer.Option(
        None,
        "--only",
        help="Write only this table (repeatable), e.g. outputs or control_tiles, leaving the directory's "
        "other files alone: adds a table to a published export.",
    ),
) -> None:
    """Write every table of a results file as Parquet."""
    from ..store import open_results

    target = out_dir or results_file.with_suffix("").with_name(results_file.stem + "_parquet")
    with open_results(results_file) as results:
        for path in results.export(target, compact=compact, control=control, only=only or ()):
            out.print(str(path))
