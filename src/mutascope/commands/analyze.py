"""`mutascope analyze FILE`: compute a screen's statistics tables."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import err, out


def analyze(
    results_file: Path = typer.Argument(..., help="A screen's results file."),
    csv_dir: Optional[Path] = typer.Option(None, "--csv", help="Also write each table as CSV into this directory (default: next to the file)."),
    alpha: float = typer.Option(0.05, help="False discovery rate for enrichment and bias calls."),
    permutations: int = typer.Option(999, help="Permutations for the COPA null."),
    effect: str = typer.Option("logprob_drop", help="Effect-size column: logprob_drop (summed over the WT output) or logprob_drop_per_token."),
    superweights: Optional[Path] = typer.Option(
        None, "--superweights",
        help="Super weights of the screened model (the --out DuckDB file or --export JSON of `mutascope superweights`): "
             "mark their tiles and rank them (table analysis_superweight_tiles).",
    ),
) -> None:
    """Compute counts, max/min bias, enrichment, COPA, overlap (and writers, severity), for NSMs and effect sizes."""
    from ..analysis.findings import findings, saturation_note
    from ..analysis.run import analyze as run_analyze

    target = csv_dir or results_file.with_name(results_file.stem + "_analysis")
    with err.status("analysing ..."):
        tables = run_analyze(results_file, csv_dir=target, alpha=alpha, n_perm=permutations, effect=effect,
                             superweights=superweights)
    summary = Table(title=f"analysis of {results_file}")
    summary.add_column("table")
    summary.add_column("rows", justify="right")
    for name, table in tables.items():
        summary.add_row(f"analysis_{name}", str(len(table)))
    out.print(summary)
    bias = tables["bias"]
    called = bias[bias["bias"] != "none"]
    if len(called):
        out.print(f"matrices with a max/min NSM bias (q < {alpha}): {len(called)} of {len(bias)}")
    recurrent = tables["recurrent_axes"]
    if len(recurrent):
        out.print(f"rows/columns enriched in several probes: {len(recurrent)}")
    if tables["effect_enrichment"].empty:
        out.print("no effect sizes in this screen (reference engine?): the effect_* tables are empty")
    note = saturation_note(tables["saturation"])
    if note:
        out.print(note, markup=False, highlight=False)
    found = findings(tables, alpha, effect)
    if found:
        out.print(f"findings (q < {alpha}):")
        for sentence in found:
            out.print(f"  - {sentence}", markup=False, highlight=False)
    else:
        out.print(f"no finding survives the false discovery rate {alpha}")
    out.print(f"tables stored in {results_file} and as CSV in {target}")
