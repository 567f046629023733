"""One specialization run, as ``mutascope specialization`` does it: check, score each model, keep.

:func:`run` checks the settings and output paths before any model loads,
resolves the concepts and their controls, scores every model in turn (the
name ``tiny`` is a tiny random model, the floor), and writes the tables and
the figure. Each model's result is handed to ``show("model", result)`` as
soon as it exists, and the summary table as ``show("summary", table)``;
``progress(done, total)`` counts question evaluations over all models, the
first line to ``show("note", ...)`` says how many there will be.

With ``finetune`` set it runs the fine-tuning experiment instead
(:mod:`.causal`): the same models and output rules, and by default its own
shipped concept set (:func:`concepts_file`: 30 MMLU subjects, so that the
comparisons over concepts have power; the PSS default stays the 10-concept
example, which the first PSS numbers were measured on); each model's
:class:`.causal.FinetuneResult` to ``show("finetune", result)``, the per-arm
means as ``show("arms", table)`` and the paired tests as ``show("tests", table)``;
``progress`` counts training steps and question reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..files.outputs import check_output_file
from ..progress import Progress, Show, Status, listeners
from ..store import check_tables_file
from ..testing import tiny_model
from .answers import check_method
from .causal import (
    DEFAULT_HELDOUT,
    DEFAULT_LR,
    DEFAULT_REPEATS,
    DEFAULT_STEPS,
    FINETUNE_KS,
    arm_table,
    check_finetune,
    comparisons,
    finetune_experiment,
    finetune_work,
)
from .concepts import finetune_concepts_path, load_concepts, resolve_controls, select
from .figures import write_figure, write_finetune_figure
from .finetune import split
from .hallucination import DEFAULT_CONFIDENCE
from .masking import n_vectors
from .score import DEFAULT_DRAWS, DEFAULT_KS, evaluations, specialization, summary
from .store import write_finetune, write_results

TINY = "tiny"  # the model name that means a tiny random model (the floor)


@dataclass
class Settings:
    """What ``mutascope specialization`` takes (its options, by the same names), as values: the
    command turns repeated options into tuples and checks ``--method`` before anything runs."""

    model: tuple[str, ...] = ("SmolLM2-135M-Instruct",)  # each a model, or TINY
    concepts: Path | None = None
    concept: tuple[str, ...] | None = None  # None: every concept of the file
    k: tuple[int, ...] | None = None  # None: DEFAULT_KS, or FINETUNE_KS with finetune
    random_draws: int = DEFAULT_DRAWS
    seed: int = 0
    method: str = "cloze"
    out_file: Path | None = None
    figure: Path | None = None
    dtype: str = "float32"
    device: str = "cpu"
    finetune: bool = False
    steps: int = DEFAULT_STEPS
    lr: float = DEFAULT_LR
    repeats: int = DEFAULT_REPEATS
    heldout: float = DEFAULT_HELDOUT
    confidence: float = DEFAULT_CONFIDENCE


@dataclass
class Result:
    """Every model's result and the summary table over them (with ``finetune``: the per-arm
    means, and ``tests``, the paired comparisons)."""

    models: list = field(default_factory=list)
    summary: object = None
    tests: object = None


def run(
    settings: Settings,
    load: Callable,
    *,
    status: Status | None = None,
    show: Show | None = None,
    progress: Progress | None = None,
) -> Result:
    """Score every model of ``settings``; ``load(model, dtype, device)`` loads one (not ``tiny``)."""
    s = settings
    say, tell = listeners(status, show)
    check_method(s.method)
    ks = list(s.k) if s.k else list(FINETUNE_KS if s.finetune else DEFAULT_KS)
    if s.finetune:
        # every argument error first; k is checked against each model's size once it loads
        check_finetune(
            ks, max(ks), repeats=s.repeats, steps=s.steps, lr=s.lr, heldout=s.heldout, confidence=s.confidence
        )
    if s.random_draws < 0:
        raise InputError(f"--random-draws must be >= 0, got {s.random_draws}")
    inputs = [s.concepts] if s.concepts is not None else []
    if s.out_file is not None:
        check_tables_file(s.out_file, inputs=inputs)
    if s.figure is not None:
        if s.out_file is not None and s.figure.resolve() == s.out_file.resolve():
            raise InputError(f"--figure {s.figure} is the --out file; give the figure another name")
        check_output_file(s.figure, inputs=inputs, what="--figure")
    chosen = select(resolve_controls(load_concepts(concepts_file(s)), s.seed), s.concept)
    if s.finetune:
        return _run_finetune(s, ks, chosen, load, say, tell, progress)
    out = Result()
    names = list(dict.fromkeys(s.model))
    finished = 0  # evaluations of the models already scored
    for index, name in enumerate(names):
        subject, model_ks = _loaded(name, s, ks, load, tell)
        name = subject.model_id
        work = evaluations(chosen, model_ks, s.random_draws)
        if index == 0:
            tell(
                "note",
                f"{work} question evaluations per model (one forward pass each; SmolLM2-135M on "
                f"2 CPU cores: about {_minutes(work)} with nothing else running)",
            )
        say(f"{name}: starting ...")

        def counted(done: int, total: int | None, before: int = finished, left: int = len(names) - index) -> None:
            if progress and total is not None:
                progress(before + done, before + total * left)  # later models taken to cost as much

        def said(msg: str, name: str = name) -> None:
            say(f"{name}: {msg} ...")

        result = specialization(
            subject,
            chosen,
            model_ks,
            random_draws=s.random_draws,
            seed=s.seed,
            method=s.method,
            progress=said,
            count=counted,
        )
        finished += work
        out.models.append(result)
        tell("model", result)
        del subject
    out.summary = summary(out.models)
    tell("summary", out.summary)
    if s.out_file is not None:
        recorded = dict(
            concepts=str(s.concepts or "shipped"),
            concept=s.concept,
            k=ks,
            random_draws=s.random_draws,
            seed=s.seed,
            method=s.method,
            dtype=s.dtype,
        )
        write_results(s.out_file, out.models, recorded)
    if s.figure is not None:
        write_figure(s.figure, out.summary)
    return out


def _loaded(name: str, s: Settings, ks: list[int], load: Callable, tell: Show):
    """The model called ``name`` and the sizes of ``ks`` it has value vectors for (a note for those skipped)."""
    subject = tiny_model("llama", dtype=s.dtype) if name == TINY else load(name, s.dtype, s.device)
    n_layers, d_ff = n_vectors(subject)
    model_ks = [x for x in ks if x <= n_layers * d_ff]
    if not model_ks:
        raise InputError(f"every --k exceeds the {n_layers * d_ff} value vectors of {subject.model_id}")
    if len(model_ks) < len(ks):
        tell("note", f"{subject.model_id} has {n_layers * d_ff} value vectors: k > that skipped")
    return subject, model_ks


def concepts_file(s: Settings) -> Path | None:
    """The concept file a run reads: ``--concepts`` when given, else the shipped set of its kind
    (the 10-concept example for PSS, ``None`` to the loader; the 30 MMLU concepts for ``--finetune``,
    whose comparisons over concepts need that many to have power)."""
    if s.concepts is not None or not s.finetune:
        return s.concepts
    return finetune_concepts_path()


def _run_finetune(
    s: Settings, ks: list[int], chosen: list, load: Callable, say: Status, tell: Show, progress: Progress | None
) -> Result:
    """The fine-tuning experiment on every model of ``s`` (see the module docstring)."""
    for c in chosen:  # a concept too small to split is refused before any model loads
        split(c.questions, s.seed, c.name, s.heldout)
    out = Result()
    names = list(dict.fromkeys(s.model))
    finished = 0
    for index, name in enumerate(names):
        subject, model_ks = _loaded(name, s, ks, load, tell)
        name = subject.model_id
        work = finetune_work(chosen, model_ks, repeats=s.repeats, steps=s.steps, heldout=s.heldout)
        if index == 0:
            tell(
                "note",
                f"{work} training steps and question reads per model ({len(chosen)} concepts x "
                f"{s.repeats} repeat(s) x {len(model_ks)} k x 3 arms; SmolLM2-135M on one CPU thread: "
                f"about {_minutes(work * SECONDS_PER_FINETUNE_UNIT / SECONDS_PER_EVALUATION)})",
            )
        say(f"{name}: starting ...")

        def counted(done: int, total: int | None, before: int = finished, left: int = len(names) - index) -> None:
            if progress and total is not None:
                progress(before + done, before + total * left)

        def said(msg: str, name: str = name) -> None:
            say(f"{name}: {msg} ...")

        result = finetune_experiment(
            subject,
            chosen,
            model_ks,
            repeats=s.repeats,
            seed=s.seed,
            steps=s.steps,
            lr=s.lr,
            heldout=s.heldout,
            confidence=s.confidence,
            method=s.method,
            progress=said,
            count=counted,
        )
        finished += work
        out.models.append(result)
        tell("finetune", result)
        del subject
    out.summary = arm_table(out.models)
    out.tests = comparisons(out.models)
    tell("arms", out.summary)
    tell("tests", out.tests)
    if s.out_file is not None:
        recorded = dict(
            concepts=str(s.concepts or f"shipped: {finetune_concepts_path().name}"),
            concept=s.concept,
            k=ks,
            repeats=s.repeats,
            seed=s.seed,
            steps=s.steps,
            lr=s.lr,
            heldout=s.heldout,
            confidence=s.confidence,
            method=s.method,
            dtype=s.dtype,
        )
        write_finetune(s.out_file, out.models, recorded)
    if s.figure is not None:
        write_finetune_figure(s.figure, out.summary)
    return out


# Seconds per unit of the fine-tuning experiment (a training step or a question read) of
# SmolLM2-135M-Instruct on one CPU thread, measured on the shipped set (docs/specialization.md).
SECONDS_PER_FINETUNE_UNIT = 0.33

# Seconds per question evaluation of SmolLM2-135M-Instruct (cloze, the shipped questions) on
# two CPU cores (benchmarks/bench_specialization.py: 0.36 s of CPU at one thread on a busy
# machine, so about 0.2-0.25 s on two idle cores); a first line's rough figure only.
SECONDS_PER_EVALUATION = 0.25


def _minutes(evaluations: float) -> str:
    seconds = evaluations * SECONDS_PER_EVALUATION
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
