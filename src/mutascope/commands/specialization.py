"""``mutascope specialization``: how concentrated a model's knowledge of a concept is (PSS).

A shell over :func:`mutascope.specialization.run.run`: options in, each
model's table printed as it is scored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .common import DeviceOpt, DtypeOpt, err, load_subject, out, working

TINY = "tiny"  # as mutascope.specialization.run.TINY, kept here so --help needs no torch import
DEFAULT_KS = (100, 1000)  # as mutascope.specialization.DEFAULT_KS, likewise
DEFAULT_DRAWS = 2  # as mutascope.specialization.DEFAULT_DRAWS, likewise


def specialization(
    model: List[str] = typer.Option(
        ["SmolLM2-135M-Instruct"], "--model", "-m",
        help=f"Model to score; repeat for several. '{TINY}' is a tiny random model (the floor).",
    ),
    concepts: Optional[Path] = typer.Option(None, "--concepts", "-c", help="Concept file (.yaml or .jsonl; default: the shipped example set)."),
    concept: Optional[List[str]] = typer.Option(None, "--concept", help="Score only this concept (repeatable; default: all)."),
    k: List[int] = typer.Option(list(DEFAULT_KS), "--k", "-k", help="Number of value vectors to mask; repeat for a sweep (sizes above a model's count are skipped for it)."),
    random_draws: int = typer.Option(DEFAULT_DRAWS, "--random-draws", help="Random masks of each size (the baseline)."),
    seed: int = typer.Option(0, help="Seed of the random masks and of the drawn controls."),
    method: str = typer.Option("cloze", help="How answers are read: cloze (choice likelihood) or letter (A-D logit)."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="DuckDB file for the tables."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="PNG of PSS against k."),
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
) -> None:
    """Parameter specialization score (arXiv 2505.17260): mask each concept's top-k value vectors.

    With the defaults, SmolLM2-135M-Instruct takes about 4 minutes on 2 CPU cores (900 question
    evaluations; --k 10 and a third --random-draws add 700); the first line says the count, and
    a progress bar (plain lines with an ETA when stderr is a log file) follows it."""
    from ..specialization.run import Settings, run

    settings = Settings(model=model, concepts=concepts, concept=concept, k=k, random_draws=random_draws, seed=seed,
                        method=method, out_file=out_file, figure=figure, dtype=dtype, device=device)
    printers = {"note": lambda text: err.print(text), "model": _print_concepts,
                "summary": lambda table: _print_summary(table, random_draws)}
    columns = (TextColumn("specialization (questions)"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("eta"), TimeRemainingColumn())
    with working("specialization", *columns) as shown:
        run(settings, lambda *where: load_subject(*where, status=shown.status), status=shown.status,
            show=lambda name, value: printers[name](value), progress=shown.progress)
    if out_file is not None:
        out.print(f"tables written to {out_file}")
    if figure is not None:
        out.print(f"figure written to {figure}")


def _fmt(x: float) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _print_concepts(result) -> None:
    from ..specialization import concept_table

    table = Table(title=f"{result.model_id}: accuracy before -> after masking the concept's top-k ({result.method})")
    for col in ("concept", "k", "concept acc", "general acc", "PSS", "PSS random"):
        table.add_column(col, justify="left" if col == "concept" else "right")
    for r in concept_table(result).itertuples():
        table.add_row(r.concept, str(r.k), f"{r.concept_before:.2f} -> {r.concept_after:.2f}",
                      f"{r.general_before:.2f} -> {r.general_after:.2f}", _fmt(r.pss), _fmt(r.pss_random))
    out.print(table)


def _print_summary(table, draws: int) -> None:
    view = Table(title=f"PSS by model (mean over concepts; random: {draws} draws, mean +- sd)")
    for col in ("model", "accuracy", "k", "PSS", "PSS random"):
        view.add_column(col, justify="left" if col == "model" else "right")
    for r in table.itertuples():
        rnd = f"{_fmt(r.pss_random)} +- {_fmt(r.pss_random_sd)}" if draws else "-"
        view.add_row(r.model_id, f"{r.accuracy:.3f}", str(r.k), _fmt(r.pss), rnd)
    out.print(view)
