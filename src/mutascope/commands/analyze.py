"""`mutascope analyze FILE`: compute a screen's statistics tables."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import err, out


def analyze(
    results_file: Path = typer.Argument(..., help="A screen's results file."),
    csv_dir: Path | None = typer.Option(
        None, "--csv", help="Also write each table as CSV into this directory (default: next to the file)."
    ),
    alpha: float = typer.Option(0.05, help="False discovery rate for enrichment and bias calls."),
    permutations: int = typer.Option(
        999, help="Least number of permutations (COPA) and draws (writers); a family of m tests gets at least 4m/alpha."
    ),
    effect: str = typer.Option(
        "logprob_drop", help="Effect-size column: logprob_drop (summed over the WT output) or logprob_drop_per_token."
    ),
    superweights: Path | None = typer.Option(
        None,
        "--superweights",
        help="Super weights of the screened model (the --out DuckDB file or --export JSON of `mutascope "
        "superweights`): "
        "mark their tiles and rank them (table analysis_superweight_tiles).",
    ),
    control: list[Path] = typer.Option(
        [],
        "--control",
        help="A control screen of the same model, probes and tiles (e.g. --kinds sym, or noise:0.001) covering every "
        "site of FILE (extra sites are dropped; fewer are refused), analysed with this one: its kinds join the "
        "tables (the size-matched pair decides which biases size explains).",
    ),
) -> None:
    """Compute every statistic (counts, bias and its size control, enrichment, recurrence, COPA, the
    cross-validated re-ordering, overlap, writers, super-weight tiles), for NSMs and effect sizes;
    each table's unit, family and test are printed with it."""
    from ..analysis.findings import findings, saturation_note
    from ..analysis.registry import STATISTICS
    from ..analysis.run import analyze as run_analyze

    target = csv_dir or results_file.with_name(results_file.stem + "_analysis")
    with err.status("analysing ...") as status:
        tables = run_analyze(
            results_file,
            csv_dir=target,
            alpha=alpha,
            n_perm=permutations,
            effect=effect,
            superweights=superweights,
            controls=control,
            progress=lambda name: status.update(f"analysing: {name} ..."),
        )
    out.print(f"analysis of {results_file} (q below {alpha} counted as hits):")
    _estimates_note(results_file)
    for stat in STATISTICS:
        if stat.name not in tables:
            continue
        table = tables[stat.name]
        q = [c for c in table.columns if c == "q_value" or c.startswith("q_")]
        hits = f", {int((table[q].astype(float) < alpha).any(axis=1).sum())} hits" if q and len(table) else ""
        out.print(f"  {stat.describe()} ({len(table)} rows{hits})", markup=False, highlight=False, soft_wrap=True)
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


def _estimates_note(results_file: Path) -> None:
    """An adaptive screen's file holds estimated effects (table ``estimates``): say that every
    table rests on the measured mutants only (the statistics read ``outcomes``, never ``estimates``)."""
    from ..store import open_results
    from ..store.adaptive import estimate_counts

    with open_results(results_file) as results:
        counts = estimate_counts(results.con)
    if counts is not None:
        measured, estimated = counts
        out.print(
            f"every table rests on the {measured} measured mutants only; the {estimated} estimated effects of the "
            "table estimates (an adaptive screen's surrogate) enter no test"
        )
