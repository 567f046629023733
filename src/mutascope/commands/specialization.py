"""``mutascope specialization``: how concentrated a model's knowledge of a concept is (PSS), and
with ``--finetune`` the causal experiment (fine-tune a concept's specific value vectors against others).

A shell over :func:`mutascope.specialization.run.run`: options in, each
model's table printed as it is scored.
"""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .common import DeviceOpt, DtypeOpt, err, load_subject, out, working

TINY = "tiny"  # as mutascope.specialization.run.TINY, kept here so --help needs no torch import
DEFAULT_KS = (100, 1000)  # as mutascope.specialization.DEFAULT_KS, likewise
DEFAULT_DRAWS = 2  # as mutascope.specialization.DEFAULT_DRAWS, likewise
FINETUNE_KS = (10, 100)  # as mutascope.specialization.causal.FINETUNE_KS, likewise
DEFAULT_STEPS, DEFAULT_LR, DEFAULT_REPEATS, DEFAULT_HELDOUT = 10, 1e-2, 1, 0.5  # as specialization.causal
DEFAULT_CONFIDENCE = 0.8  # as specialization.hallucination


def specialization(
    model: list[str] = typer.Option(
        ["SmolLM2-135M-Instruct"],
        "--model",
        "-m",
        help=f"Model to score; repeat for several. '{TINY}' is a tiny random model (the floor).",
    ),
    concepts: Path | None = typer.Option(
        None,
        "--concepts",
        "-c",
        help="Concept file (.yaml or .jsonl; default: the shipped 10-concept example set, or with --finetune the "
        "shipped 30 MMLU subjects x 20 questions, concepts_finetune.jsonl).",
    ),
    concept: list[str] | None = typer.Option(
        None, "--concept", help="Score only this concept (repeatable; default: all)."
    ),
    k: list[int] | None = typer.Option(
        None,
        "--k",
        "-k",
        help="Number of value vectors to mask (or fine-tune); repeat for a sweep (sizes above a model's count are "
        f"skipped for it). Default {', '.join(map(str, DEFAULT_KS))}; with --finetune "
        f"{', '.join(map(str, FINETUNE_KS))}.",
    ),
    random_draws: int = typer.Option(
        DEFAULT_DRAWS, "--random-draws", help="Random masks of each size (the baseline; not used by --finetune)."
    ),
    seed: int = typer.Option(0, help="Seed of the random masks and of the drawn controls."),
    method: str = typer.Option("cloze", help="How answers are read: cloze (choice likelihood) or letter (A-D logit)."),
    out_file: Path | None = typer.Option(None, "--out", "-o", help="DuckDB file for the tables."),
    figure: Path | None = typer.Option(None, "--figure", help="PNG of PSS against k."),
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    finetune: bool = typer.Option(
        False,
        "--finetune",
        help="Run the fine-tuning experiment: per concept, fine-tune only its k most specific value vectors, k random "
        "ones and the k most generally active ones, and compare held-out accuracy, interference and hallucination.",
    ),
    steps: int = typer.Option(
        DEFAULT_STEPS, "--steps", help="--finetune: training steps per arm (one training question each)."
    ),
    lr: float = typer.Option(DEFAULT_LR, "--lr", help="--finetune: Adam learning rate of the tuned value vectors."),
    repeats: int = typer.Option(
        DEFAULT_REPEATS,
        "--repeats",
        help="--finetune: repeats per concept (seeds --seed, --seed + 1, ...: split, random arm, data order).",
    ),
    heldout: float = typer.Option(
        DEFAULT_HELDOUT, "--heldout", help="--finetune: share of each concept's questions held out from training."
    ),
    confidence: float = typer.Option(
        DEFAULT_CONFIDENCE,
        "--confidence",
        help="--finetune: choice probability below which the model counts as abstaining (hallucination).",
    ),
) -> None:
    """Parameter specialization score (arXiv 2505.17260): mask each concept's top-k value vectors.

    With the defaults, SmolLM2-135M-Instruct takes about 4 minutes on 2 CPU cores (900 question
    evaluations; --k 10 and a third --random-draws add 700); the first line says the count, and
    a progress bar (plain lines with an ETA when stderr is a log file) follows it.

    --finetune runs the paper's causal experiment instead (docs/specialization.md), by default on
    its own shipped set, 30 MMLU subjects x 20 questions (enough concepts for the paired tests to
    have power; --concepts to use another): the defaults (k = 10 and 100, 10 steps, one repeat)
    take about an hour for SmolLM2-135M on one CPU thread; --concept picks a few for a quick look."""
    from ..specialization.answers import check_method
    from ..specialization.run import Settings, run

    settings = Settings(
        model=tuple(model),
        concepts=concepts,
        concept=tuple(concept) if concept else None,
        k=tuple(k) if k else None,
        random_draws=random_draws,
        seed=seed,
        method=check_method(method),
        out_file=out_file,
        figure=figure,
        dtype=dtype,
        device=device,
        finetune=finetune,
        steps=steps,
        lr=lr,
        repeats=repeats,
        heldout=heldout,
        confidence=confidence,
    )
    printers = {
        "note": lambda text: err.print(text),
        "model": _print_concepts,
        "summary": lambda table: _print_summary(table, random_draws),
        "finetune": lambda result: None,
        "arms": _print_arms,
        "tests": _print_tests,
    }
    label = "fine-tuning (steps + question reads)" if finetune else "specialization (questions)"
    columns = (
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with working("specialization", *columns) as shown:
        run(
            settings,
            lambda model, dtype, device: load_subject(model, dtype, device, status=shown.status),
            status=shown.status,
            show=lambda name, value: printers[name](value),
            progress=shown.progress,
        )
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
        table.add_row(
            r.concept,
            str(r.k),
            f"{r.concept_before:.2f} -> {r.concept_after:.2f}",
            f"{r.general_before:.2f} -> {r.general_after:.2f}",
            _fmt(r.pss),
            _fmt(r.pss_random),
        )
    out.print(table)


def _print_summary(table, draws: int) -> None:
    view = Table(title=f"PSS by model (mean over concepts; random: {draws} draws, mean +- sd)")
    for col in ("model", "accuracy", "k", "PSS", "PSS random"):
        view.add_column(col, justify="left" if col == "model" else "right")
    for r in table.itertuples():
        rnd = f"{_fmt(r.pss_random)} +- {_fmt(r.pss_random_sd)}" if draws else "-"
        view.add_row(r.model_id, f"{r.accuracy:.3f}", str(r.k), _fmt(r.pss), rnd)
    out.print(view)


def _print_arms(table) -> None:
    view = Table(title="Fine-tuning arms (mean over concepts and repeats): accuracy before -> after")
    for col in ("model", "k", "arm", "train", "held-out", "controls", "hallucination", "loss"):
        view.add_column(col, justify="left" if col in ("model", "arm") else "right")
    for r in table.itertuples():
        view.add_row(
            r.model_id,
            str(r.k),
            r.arm,
            f"{r.train_before:.2f} -> {r.train_after:.2f}",
            f"{r.heldout_before:.2f} -> {r.heldout_after:.2f}",
            f"{r.control_before:.2f} -> {r.control_after:.2f}",
            _fmt(r.hallucination),
            f"{r.loss_start:.2f} -> {r.loss_end:.2f}",
        )
    out.print(view)


def _print_tests(table) -> None:
    family = table["family"].iloc[0] if len(table) else ""
    view = Table(title=f"Paired over concepts (exact Wilcoxon; BH over each model's family: {family})")
    for col in ("model", "k", "measure", "comparison", "median diff [95 % CI]", "p", "q", "verdict"):
        view.add_column(col, justify="left" if col in ("model", "measure", "comparison", "verdict") else "right")
    for r in table.itertuples():
        view.add_row(
            r.model_id,
            str(r.k),
            r.measure,
            r.comparison,
            f"{_fmt(r.median_difference)} [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]",
            _fmt(r.p_value),
            _fmt(r.q_value),
            r.verdict,
        )
    out.print(view)
