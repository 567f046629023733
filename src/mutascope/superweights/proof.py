"""The paper's evidence, as tables: each ablation and each quantization, measured.

:func:`ablation_table` runs the original model and every ablation of
:mod:`.ablate` through the measurements of :mod:`mutascope.evaluate`;
:func:`quantization_table` compares naive and super-weight-aware
round-to-nearest weight quantization with the original, for every bit width
and block size asked for (the paper's block-size sweep);
:func:`activation_quant_table` does the same for per-tensor activation
quantization with and without the super activation held. Each checks at the
end that the model's content hash is what it was at the start, so a table
is never computed on a model a bug left modified.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from .. import evaluate
from ..errors import InputError
from ..model.subject import Subject
from . import ablate, quantize
from .ablate import Coord
from .stopwords import STOPWORD_PROMPTS, STOPWORDS, stopword_probs

SCALES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


@dataclass(frozen=True)
class Measurement:
    """One row: perplexity, MC accuracy (None without questions) and stopword probabilities."""

    name: str
    detail: str
    perplexity: float
    accuracy: float | None
    stopwords: dict[str, float] = field(default_factory=dict)
    n_changed: int = 0
    config: dict = field(default_factory=dict)  # what was varied (bits, block, method ...), for tidy tables


@dataclass
class Workload:
    """What every row is measured on, prepared (tokenized) once."""

    corpus: torch.Tensor
    window: int = 256
    questions: evaluate.ChoiceSet | None = None
    prompts: tuple[str, ...] = STOPWORD_PROMPTS
    words: tuple[str, ...] = STOPWORDS

    def measure(
        self, subject: Subject, name: str, detail: str = "", n_changed: int = 0, config: dict | None = None
    ) -> Measurement:
        return Measurement(
            name=name,
            detail=detail,
            perplexity=evaluate.perplexity(subject, self.corpus, self.window),
            accuracy=evaluate.choice_accuracy(subject, self.questions) if self.questions else None,
            stopwords=stopword_probs(subject, self.prompts, self.words) if self.prompts else {},
            n_changed=n_changed,
            config=dict(config or {}),
        )


def _label(c: Coord) -> str:
    return f"L{c[0]}[{c[1]},{c[2]}]"


def ablation_table(
    subject: Subject,
    weights: list[Coord],
    work: Workload,
    *,
    fraction: float = 1e-6,
    scales: tuple[float, ...] = SCALES,
    each: bool = True,
    restore_threshold: float = 50.0,
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Original model, then: zero all super weights, zero each (``each``), zero the top
    ``fraction`` of other weights, zero the super weights but restore the super
    activation, and scale the super weights by each of ``scales`` (1 and 0 reuse
    the original and zero-all rows instead of running again)."""
    if not weights:
        raise InputError("no super weights to ablate; detection found none")
    before = subject.content_hash()
    originals = {c: float(subject.anatomy.weight(c[0], "down")[c[1], c[2]]) for c in weights}
    all_label = ", ".join(map(_label, weights))
    rows: list[Measurement] = []

    def run(name, detail, manager, n=0):
        if progress:
            progress(name)
        with manager as chosen:
            count = len(chosen) if isinstance(chosen, list) else n
            rows.append(work.measure(subject, name, detail, count))
        return rows[-1]

    original = run("original", "unmodified", contextlib.nullcontext())
    zero_all = run("zero super weights", all_label, ablate.zeroed(subject, weights), len(weights))
    if each and len(weights) > 1:
        for c in weights:
            run(f"zero {_label(c)}", _label(c), ablate.zeroed(subject, [c]), 1)
    run(
        f"zero top {fraction:g} others",
        "largest |w| except super weights",
        ablate.top_zeroed(subject, fraction, exclude=weights),
    )
    run(
        "zero SW, restore activation",
        all_label,
        ablate.activation_restored(subject, weights, originals, restore_threshold),
        len(weights),
    )
    for s in scales:
        if s == 1.0:
            rows.append(
                Measurement(
                    f"scale x{s:g}",
                    all_label + " (= original)",
                    original.perplexity,
                    original.accuracy,
                    original.stopwords,
                    0,
                )
            )
        elif s == 0.0:
            rows.append(
                Measurement(
                    f"scale x{s:g}",
                    all_label + " (= zero super weights)",
                    zero_all.perplexity,
                    zero_all.accuracy,
                    zero_all.stopwords,
                    len(weights),
                )
            )
        else:
            run(f"scale x{s:g}", all_label, ablate.scaled(subject, weights, s), len(weights))
    _same(subject, before)
    return rows


NAIVE, SW_AWARE, SA_HELD = "naive", "sw-aware", "sa-held"


def _values(x) -> tuple:
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def quantization_table(
    subject: Subject,
    weights: list[Coord],
    work: Workload,
    *,
    block_size=64,
    bits=4,
    clip: float = 6.0,
    original: Measurement | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Original, then for every bit width and block size: naive RTN, and clip + RTN + super weights restored.

    ``block_size`` and ``bits`` are one value or a sequence (the sweep);
    block sizes are those of :func:`.quantize.rtn`. Each row's ``config``
    holds ``bits``, ``block_size`` and ``method`` (:data:`NAIVE` or
    :data:`SW_AWARE`).
    """
    before = subject.content_hash()
    blocks, widths = _values(block_size), _values(bits)
    for b in blocks:
        quantize._check_block(b)
    rows = [original or work.measure(subject, "original", "unmodified")]
    for width in widths:
        for block in blocks:
            label = quantize.block_label(block)
            suffix = f", block {label}" if len(blocks) > 1 else ""  # one block size: the names as before sweeps
            cases: list[tuple[str, str, str, dict[str, Any]]] = [
                (f"INT{width} RTN naive{suffix}", f"block {label}", NAIVE, dict(clip=None, keep=())),
                (
                    f"INT{width} RTN + SW handling{suffix}",
                    f"block {label}, clip z={clip:g}, {len(weights)} SW kept",
                    SW_AWARE,
                    dict(clip=clip, keep=weights),
                ),
            ]
            for name, detail, method, kw in cases:
                if progress:
                    progress(name)
                with quantize.quantized(subject, block, bits=width, **kw):
                    rows.append(
                        work.measure(subject, name, detail, config=dict(bits=width, block_size=label, method=method))
                    )
    _same(subject, before)
    return rows


def activation_quant_table(
    subject: Subject,
    weights: list[Coord],
    work: Workload,
    *,
    bits=8,
    channels: tuple[int, ...] = (),
    original: Measurement | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[Measurement]:
    """Original, then for every bit width: per-tensor activation RTN naive, and with the super activation held.

    ``weights`` and ``channels`` say where super activations can sit
    (:func:`.actquant.hold_channels`). ``config`` holds ``bits``, ``method``
    (:data:`NAIVE` or :data:`SA_HELD`) and the held / quantized element counts
    over the whole measurement.
    """
    from .actquant import activations_quantized, hold_channels

    before = subject.content_hash()
    hold = hold_channels(subject, weights, channels)
    rows = [original or work.measure(subject, "original", "unmodified")]
    for width in _values(bits):
        for name, method, h in (
            (f"W16A{width} RTN naive", NAIVE, None),
            (f"W16A{width} RTN, super activation held", SA_HELD, hold),
        ):
            if progress:
                progress(name)
            with activations_quantized(subject, width, h) as stats:
                m = work.measure(subject, name, f"per-tensor activations, {width} bits")
            rows.append(
                Measurement(
                    m.name,
                    m.detail,
                    m.perplexity,
                    m.accuracy,
                    m.stopwords,
                    0,
                    dict(
                        bits=width,
                        method=method,
                        held_elements=stats.held,
                        quantized_elements=stats.elements,
                        quantized_tensors=stats.tensors,
                    ),
                )
            )
    _same(subject, before)
    return rows


def _same(subject: Subject, before: str) -> None:
    if subject.content_hash() != before:  # pragma: no cover - a restore bug
        raise RuntimeError("the model was not restored exactly after an ablation")
