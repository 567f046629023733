"""``mutascope specialization``: how concentrated a model's knowledge of a concept is (PSS).

Registered in ``cli.py`` with ``app.command()(specialization)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .common import DeviceOpt, DtypeOpt, err, load_subject, out

TINY = "tiny"
DEFAULT_KS = (10, 100, 1000)  # same as mutascope.specialization.DEFAULT_KS, kept here so --help needs no torch import


def specialization(
    model: List[str] = typer.Option(
        ["SmolLM2-135M-Instruct"], "--model", "-m",
        help=f"Model to score; repeat for several. '{TINY}' is a tiny random model (the floor).",
    ),
    concepts: Optional[Path] = typer.Option(None, "--concepts", "-c", help="Concept file (.yaml or .jsonl; default: the shipped example set)."),
    concept: Optional[List[str]] = typer.Option(None, "--concept", help="Score only this concept (repeatable; default: all)."),
    k: List[int] = typer.Option(list(DEFAULT_KS), "--k", "-k", help="Number of value vectors to mask; repeat for a sweep (sizes above a model's count are skipped for it)."),
    random_draws: int = typer.Option(3, "--random-draws", help="Random masks of each size (the baseline)."),
    seed: int = typer.Option(0, help="Seed of the random masks and of the drawn controls."),
    method: str = typer.Option("cloze", help="How answers are read: cloze (choice likelihood) or letter (A-D logit)."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="DuckDB file for the tables."),
    figure: Optional[Path] = typer.Option(None, "--figure", help="PNG of PSS against k."),
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
) -> None:
    """Parameter specialization score (arXiv 2505.17260): mask each concept's top-k value vectors."""
    from .. import specialization as sp
    from ..errors import MutascopeError
    from ..testing import tiny_model

    from ..outfiles import check_output_file, check_tables_file

    sp.answers.check_method(method)
    if random_draws < 0:
        raise MutascopeError(f"--random-draws must be >= 0, got {random_draws}")
    inputs = [concepts] if concepts is not None else []
    if out_file is not None:
        check_tables_file(out_file, inputs=inputs)
    if figure is not None:
        if out_file is not None and figure.resolve() == out_file.resolve():
            raise MutascopeError(f"--figure {figure} is the --out file; give the figure another name")
        check_output_file(figure, inputs=inputs, what="--figure")
    chosen = sp.select(sp.resolve_controls(sp.load_concepts(concepts), seed), concept)
    results = []
    for name in dict.fromkeys(model):
        subject = tiny_model("llama", dtype=dtype) if name == TINY else load_subject(name, dtype, device)
        n_layers, d_ff = sp.n_vectors(subject)
        ks = [x for x in k if x <= n_layers * d_ff]
        if not ks:
            raise MutascopeError(f"every --k exceeds the {n_layers * d_ff} value vectors of {subject.model_id}")
        if len(ks) < len(k):
            err.print(f"{subject.model_id} has {n_layers * d_ff} value vectors: k > that skipped")
        name = subject.model_id
        status = err.status(f"{name}: starting ...")
        with status:
            result = sp.specialization(
                subject, chosen, ks, random_draws=random_draws, seed=seed, method=method,
                progress=lambda msg: status.update(f"{name}: {msg} ..."),
            )
        results.append(result)
        _print_concepts(result)
        del subject
    table = sp.summary(results)
    _print_summary(table, random_draws)
    if out_file is not None:
        settings = dict(concepts=str(concepts or "shipped"), concept=concept, k=k, random_draws=random_draws,
                        seed=seed, method=method, dtype=dtype)
        sp.write_results(out_file, results, settings)
        out.print(f"tables written to {out_file}")
    if figure is not None:
        sp.write_figure(figure, table)
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
