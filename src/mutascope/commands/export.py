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
        "without output texts (table tiles), runs, probes and the analysis tables.",
    ),
) -> None:
    """Write every table of a results file as Parquet."""
    from ..store import open_results

    target = out_dir or results_file.with_suffix("").with_name(results_file.stem + "_parquet")
    with open_results(results_file) as results:
        for path in results.export(target, compact=compact):
            out.print(str(path))
