"""Inputs for activation maps, grouped into named domains.

A domain is a name and a list of texts. The paper compares domains (e.g.
code vs. law), so every statistic is kept per domain. Texts come from a
plain file (one input per paragraph; per line when the file has no blank
lines), from an MMLU-format directory (``mmlu:DIR:SUBJECT``, zero-shot
question prompts; ``mmlu:DIR:SUBJECT:5`` for the standard 5-shot prompt),
or, when the user names none, from the shipped defaults (:data:`SHIPPED`:
prose about biology, prose about law, and Python code, written for the
project). Zero-shot is the default because 5-shot prompts are ~10x longer,
and one backward pass per input over hundreds of tokens is what costs on a
CPU.

**Held-out text.** The first ``limit`` texts of a source are the domain's
inputs (activation maps, Wanda calibration); the texts after them are its
*held-out* texts, used only to evaluate a pruned model, so evaluation never
sees a calibration input. One rule for every source: each shipped file
holds sixteen paragraphs, the eight inputs the default ``-n 8`` reads and
eight held-out ones; an MMLU subject's held-out texts are the questions
after the first ``limit``, with their answers, so accuracy can be read too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..files.text import read_text_file

__all__ = ["ALL", "SHIPPED", "Domain", "default_domains", "mmlu_texts", "parse_domain", "read_texts", "shipped_texts"]

ALL = "all"  # the pseudo-domain pooling every input; reserved as a domain name
SHIPPED = ("biology", "law", "python")  # data/domains/NAME.txt, used when no --domain is given
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Domain:
    """A named group of input texts, where they came from, and its held-out texts.

    ``answers`` is empty, or holds the right choice (0-3) of each held-out
    text when those are multiple-choice prompts (MMLU domains).
    """

    name: str
    texts: tuple[str, ...]
    source: str
    heldout: tuple[str, ...] = ()
    answers: tuple[int, ...] = ()


def _split(text: str) -> list[str]:
    """Paragraphs separated by blank lines, else one text per non-empty line."""
    if re.search(r"\n[ \t]*\n", text.strip()):
        chunks = re.split(r"\n[ \t]*\n", text)
    else:
        chunks = text.splitlines()
    return [c.strip() for c in chunks if c.strip()]


def read_texts(path: str | Path) -> list[str]:
    """Inputs of a text file: paragraphs separated by blank lines, else one per non-empty line."""
    p = Path(path)
    texts = _split(read_text_file(p, "domain file", "pass a text file or mmlu:DIR:SUBJECT"))
    if not texts:
        raise InputError(f"domain file {p}: holds no text")
    return texts


def shipped_texts(name: str) -> list[str]:
    """The paragraphs of a shipped domain (:data:`SHIPPED`): inputs first, held-out after."""
    if name not in SHIPPED:
        raise InputError(f"no shipped domain {name!r}; have: {', '.join(SHIPPED)}")
    return _split(resources.files("mutascope").joinpath(f"data/domains/{name}.txt").read_text(encoding="utf-8"))


def _zero_shot(subject: str, q) -> str:
    from ..probes.mmlu import LETTERS, format_subject

    text = f"The following are multiple choice questions (with answers) about {format_subject(subject)}.\n\n"
    text += q.question
    for letter, choice in zip(LETTERS, q.choices):
        text += f"\n{letter}. {choice}"
    return text + "\nAnswer:"


def mmlu_texts(directory: str | Path, subject: str, *, shots: int = 0, split: str = "test") -> list[str]:
    """Prompts for every question of one MMLU subject, ending in ``Answer:``."""
    return [text for text, _ in _mmlu_items(directory, subject, shots, split)]


def _mmlu_items(directory: str | Path, subject: str, shots: int = 0, split: str = "test") -> list[tuple[str, int]]:
    """(prompt, index of the right choice) for every question of one MMLU subject."""
    from ..probes.mmlu import LETTERS, five_shot_prompt, load_questions

    if shots not in (0, 5):
        raise InputError(f"MMLU domain shots must be 0 or 5, got {shots}")
    questions = load_questions(directory, subject, split)
    if not questions:
        raise InputError(f"MMLU subject {subject!r} has no {split} questions in {directory}")
    if shots == 5:
        dev = load_questions(directory, subject, "dev")
        prompts = [five_shot_prompt(dev, q) for q in questions]
    else:
        prompts = [_zero_shot(subject, q) for q in questions]
    return [(p, LETTERS.index(q.answer)) for p, q in zip(prompts, questions)]


def _domain(
    name: str, source: str, texts: list[str], answers: list[int] | None, limit: int | None, heldout: int | None
) -> Domain:
    """The first ``limit`` texts as inputs, at most ``heldout`` of the rest held out."""
    if limit is not None and limit < 1:
        raise InputError(f"inputs per domain must be >= 1, got {limit}")
    if heldout is not None and heldout < 0:
        raise InputError(f"held-out texts per domain must be >= 0, got {heldout}")
    n = len(texts) if limit is None else min(limit, len(texts))
    stop = len(texts) if heldout is None else n + heldout
    return Domain(
        name, tuple(texts[:n]), source, tuple(texts[n:stop]), tuple(answers[n:stop]) if answers is not None else ()
    )


def default_domains(limit: int | None = None, heldout: int | None = None) -> list[Domain]:
    """The shipped domains (biology prose, law prose, Python code), used when no domain is given."""
    return [_domain(name, f"shipped:{name}", shipped_texts(name), None, limit, heldout) for name in SHIPPED]


def parse_domain(spec: str, limit: int | None = None, heldout: int | None = None) -> Domain:
    """``NAME=PATH`` or ``NAME=mmlu:DIR:SUBJECT[:SHOTS]`` -> a :class:`Domain` of at most ``limit``
    input texts; the source's later texts (at most ``heldout``; all when None) are held out."""
    name, sep, source = spec.partition("=")
    name, source = name.strip(), source.strip()
    if not sep or not name or not source:
        raise InputError(f"bad domain {spec!r}: use NAME=FILE or NAME=mmlu:DIR:SUBJECT")
    if not _NAME_RE.fullmatch(name) or name == ALL:
        raise InputError(f"bad domain name {name!r}: use letters, digits, _ . - (and not {ALL!r})")
    answers = None
    if source.startswith("mmlu:"):
        parts = source[len("mmlu:") :].rsplit(":", 2)
        shots = 0
        if len(parts) == 3 and parts[2].isdigit():
            shots = int(parts[2])
            parts = parts[:2]
        elif len(parts) == 3:
            parts = [parts[0] + ":" + parts[1], parts[2]]
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise InputError(f"bad MMLU domain {source!r}: use mmlu:DIR:SUBJECT or mmlu:DIR:SUBJECT:5")
        items = _mmlu_items(parts[0], parts[1], shots)
        texts, answers = [t for t, _ in items], [a for _, a in items]
    else:
        texts = read_texts(source)
    return _domain(name, source, texts, answers, limit, heldout)
