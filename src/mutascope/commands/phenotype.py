"""``mutascope phenotype FILE``: similarity, severity, categories and multiple-choice scores of a screen."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .common import out, progress_bar


def phenotype(
    results_file: Path = typer.Argument(..., dir_okay=False, help="A screen's results file."),
    batch_size: int = typer.Option(64, help="Texts per embedding batch."),
) -> None:
    """(Re)compute similarity, severity, categories and multiple-choice scores of a screen."""
    from ..phenotype import phenotype_results

    columns = (TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with progress_bar(*columns, label="embedding") as bar:
        task = bar.add_task("embed", total=None)
        summary = phenotype_results(
            results_file,
            batch_size=batch_size,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(
        f"{summary.n_outcomes} outcomes, {summary.n_nsm} text NSMs, {summary.n_distinct} distinct outputs; "
        f"{summary.n_embedded} texts embedded in {summary.n_embed_calls} batches ({summary.seconds:.1f} s)"
    )
    for title, counts in (
        ("severity (cosine to WT)", summary.severity),
        ("category", summary.categories),
        ("mutants with a changed answer", summary.choice_changed),
    ):
        if counts:
            table = Table(title=title)
            table.add_column(title.split(" ")[0])
            table.add_column("NSMs", justify="right")
            for key, n in counts.items():
                table.add_row(str(key), str(n))
            out.print(table)
    if summary.n_unfilled:
        out.print(
            f"{summary.n_unfilled} NSMs have no output yet (a calls-only screen); they are phenotyped once "
            f"`mutascope fill {results_file} ...` computes them"
        )
    if summary.n_malignant is not None:
        out.print(f"malignant NSMs (similarity <= 0.5 and MMLU21 score <= 8): {summary.n_malignant}")
    out.print(f"phenotypes stored in {results_file}")
