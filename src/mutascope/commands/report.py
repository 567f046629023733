"""``mutascope report FILE``: one self-contained, offline HTML report of a screen."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn

from .common import out, progress_bar


def report(
    results_file: Path = typer.Argument(..., dir_okay=False, help="A screen's results file."),
    out_html: Path | None = typer.Option(None, "--out", "-o", help="HTML file (default: beside the results, .html)."),
    figures: Path | None = typer.Option(
        None, "--figures", help="Also write the report's figures as PNG files into this directory."
    ),
    control: list[Path] = typer.Option(
        [],
        "--control",
        help="A control screen of the same model, probes and tiles "
        "(as `mutascope analyze --control`): its kinds join the statistics.",
    ),
) -> None:
    """Write one self-contained, offline HTML report of a screen."""
    from ..report import check_report, write_report

    target = check_report(results_file, out_html, figures_dir=figures, controls=control)
    with progress_bar(
        TextColumn("report"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), label="report"
    ) as bar:
        task = bar.add_task("report", total=5)
        path = write_report(
            results_file,
            target,
            figures_dir=figures,
            controls=control,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(f"report: {path}")
    if figures is not None:
        out.print(f"figures: {figures}")
