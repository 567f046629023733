"""``mutascope compare A.duckdb B.duckdb [...]``: analysed screens side by side (models, probe sets)."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import out


def compare(
    results_files: list[Path] = typer.Argument(
        ..., help="Two or more analysed results files (`mutascope analyze`), or their compact exports (directories)."
    ),
    out_dir: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Also write the tables (CSV), comparison.md and one profile figure per matrix type (PNG) into this "
        "directory.",
    ),
    alpha: float = typer.Option(0.05, help="False discovery rate: q-values below it count as hits."),
) -> None:
    """Each statistic every file has, each model's figure and verdict side by side; per-layer profiles
    aligned by matrix type and relative depth; whether each model's most sensitive v column tile holds
    its super-activation channel (after `analyze --superweights`)."""
    from ..analysis.compare import check_alpha, statistic_title
    from ..analysis.compare import compare as run_compare
    from ..report.comparison import check_comparison_dir, write_comparison

    check_alpha(alpha)
    if out_dir is not None:
        check_comparison_dir(out_dir, results_files)
    result = run_compare(results_files, alpha=alpha)
    for line in result.header:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    # Plain lines, not a table: figures are long, and a terminal (or a log) folds wide tables unreadably;
    # the table itself is comparison.md / comparison.csv under --out.
    say = lambda line: out.print(line, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    say(f"statistics side by side, each model's verdict then its figure (q below {alpha} counted as hits):")
    for name, rows in result.statistics.groupby("statistic", sort=False):
        say(f"{name}: {statistic_title(name)}")
        for key, cells in rows.groupby("key", sort=False):
            say(f"  {key}")
            for label in [s.label for s in result.inputs]:
                cell = cells[cells["model"] == label]
                say(f"    {label}: " + (f"{cell.iloc[0]['verdict']} | {cell.iloc[0]['figure']}" if len(cell) else "-"))
    say("does the most sensitive v column tile hold the model's super-activation channel?")
    for r in result.link.itertuples():
        say(f"  {r.model}, {r.probe_id}: {r.holds} | {r.figure}")
    if out_dir is not None:
        written = write_comparison(result, out_dir)
        out.print(f"{len(written)} files written to {out_dir} (comparison.md, CSV tables, profile figures)")
