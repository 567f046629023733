"""One super-weight run, as ``mutascope superweights`` does it: check, detect, measure, keep.

:func:`run` checks every setting and output path before the model loads,
detects the super weights, compares them with the catalogue when asked,
measures the ablation table and the weight and activation quantization
sweeps the settings ask for, and writes the tables, the JSON export and the
figure. Each result is handed to ``show(name, value)`` as soon as it exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..evaluate import choice_set, corpus_ids, read_corpus
from ..files.outputs import check_output_file
from ..model.subject import Subject
from ..progress import Show, Status, listeners
from ..store import check_tables_file
from .catalogue import check
from .detect import Detection, detect
from .export import write_export
from .proof import Workload, ablation_table, activation_quant_table, quantization_table
from .store import frames, sweep_frame, write_results


@dataclass
class Settings:
    """What ``mutascope superweights`` takes (its options, by the same names), parsed: the command
    turns ``--bits 4,3`` into ``(4, 3)`` (:func:`.quantize.parse_bits`), so a library caller
    passes values, not option strings."""

    model: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    threshold: float = 50.0
    relative: float = 100.0
    weight_z: float = 10.0
    max_iterations: int = 10
    detect_only: bool = False
    corpus: Path | None = None
    max_tokens: int = 1024
    window: int = 256
    mmlu_dir: Path | None = None
    subject_name: str = "international_law"
    questions: int = 20
    fraction: float = 1e-6
    check: bool = False
    quantize: bool = False
    block_size: tuple[int | str, ...] = (64,)  # weights per block, PER_ROW or PER_TENSOR (parse_blocks)
    bits: tuple[int, ...] = (4,)  # widest first (parse_bits)
    clip: float = 6.0
    quantize_activations: bool = False
    activation_bits: tuple[int, ...] = (8,)
    out_file: Path | None = None
    export: Path | None = None
    figure: Path | None = None
    tile: tuple[int, int] = (64, 64)  # (parse_tile)


@dataclass
class Result:
    """What a run found and measured (None: not asked for, or nothing to measure)."""

    detection: object = None
    ablations: list | None = None
    quantization: list | None = None
    activation_quant: list | None = None
    figure: Path | None = None
    tables: dict = field(default_factory=dict)


def _same_path(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def run(settings: Settings, load: Callable, *, status: Status | None = None, show: Show | None = None) -> Result:
    """Run the super-weight study of ``settings``; ``load(model, dtype, device)`` loads the model
    once everything that can be checked without it has been."""
    s = settings
    say, tell = listeners(status, show)
    _check_settings(s)
    measuring = not s.detect_only or s.quantize or s.quantize_activations
    text = read_corpus(s.corpus) if measuring else None
    subject = load(s.model, s.dtype, s.device)
    say("detecting super weights ...")
    found = detect(
        subject, threshold=s.threshold, relative=s.relative, weight_z=s.weight_z, max_iterations=s.max_iterations
    )
    out = Result(detection=found)
    tell("detection", found)
    if s.check:
        tell("check", (check(subject.model_id, found.coords), subject.model_id))
    if found.weights and measuring:
        _measure(s, subject, found, text, out, say, tell)
    elif not found.weights:
        tell("none", None)
    _write(s, subject, found, out)
    return out


def _check_settings(s: Settings) -> None:
    """Refuse bad settings and output paths before the model loads (minutes on a large model)."""
    if s.max_tokens < 2:
        raise InputError(f"--max-tokens must be >= 2, got {s.max_tokens}")
    if s.figure is not None and not s.quantize:
        raise InputError("--figure draws the quantization sweep: add --quantize")
    inputs = [p for p in (s.corpus,) if p is not None]
    if s.out_file is not None:
        check_tables_file(s.out_file, inputs=inputs)
    for path, what in ((s.export, "--export"), (s.figure, "--figure")):
        if path is None:
            continue
        if s.out_file is not None and _same_path(path, s.out_file):
            raise InputError(f"{what} {path} is the --out file; give the {what} file another name")
        check_output_file(path, inputs=inputs, what=what)
    if s.export is not None and s.figure is not None and _same_path(s.export, s.figure):
        raise InputError(f"--export and --figure are the same file {s.export}; give them different names")


def _measure(s: Settings, subject: Subject, found: Detection, text: str | None, out: Result, say, tell) -> None:
    """The ablation table and the quantization sweeps the settings ask for, each shown as soon as it
    exists; each sweep is relative to the first row measured before it (the unchanged model)."""
    assert text is not None  # read whenever something is measured (run)
    work = Workload(corpus_ids(subject, text, s.max_tokens), s.window)
    if s.mmlu_dir is not None and not s.detect_only:
        work.questions = choice_set(subject, s.mmlu_dir, s.subject_name, s.questions)
    say("measuring ...")

    def measure(name: str) -> None:
        say(f"measuring: {name} ...")

    if not s.detect_only:
        out.ablations = ablation_table(
            subject, found.coords, work, fraction=s.fraction, restore_threshold=s.threshold or 1.0, progress=measure
        )
        tell("ablations", out.ablations)
    base = out.ablations[0] if out.ablations else None
    if s.quantize:
        out.quantization = quantization_table(
            subject,
            found.coords,
            work,
            block_size=list(s.block_size),
            bits=list(s.bits),
            clip=s.clip,
            original=base,
            progress=measure,
        )
        base = out.quantization[0]
    if s.quantize_activations:
        out.activation_quant = activation_quant_table(
            subject,
            found.coords,
            work,
            bits=list(s.activation_bits),
            channels=tuple(a.channel for a in found.activations),
            original=base,
            progress=measure,
        )
    if out.quantization:
        tell("sweep", (sweep_frame(out.quantization), out.quantization[0].perplexity))
    if out.activation_quant:
        tell("activation_quant", out.activation_quant)


def _write(s: Settings, subject: Subject, found: Detection, out: Result) -> None:
    """The tables (with the settings that shaped them), the JSON export and the figure asked for."""
    if s.out_file is not None:
        recorded = dict(
            corpus=str(s.corpus or "shipped"),
            max_tokens=s.max_tokens,
            window=s.window,
            fraction=s.fraction,
            mmlu_dir=str(s.mmlu_dir) if s.mmlu_dir else None,
            subject=s.subject_name,
            block_size=[str(b) for b in s.block_size],
            bits=list(s.bits),
            clip_z=s.clip,
            activation_bits=list(s.activation_bits) if s.quantize_activations else None,
        )
        out.tables = frames(subject, found, out.ablations, out.quantization, recorded, out.activation_quant)
        write_results(s.out_file, out.tables)
    if s.export is not None:
        write_export(s.export, subject, found, s.tile)
    if s.figure is not None and out.quantization:
        from .figures import write_figure

        write_figure(s.figure, sweep_frame(out.quantization), out.quantization[0].perplexity)
        out.figure = s.figure
