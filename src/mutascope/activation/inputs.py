"""Inputs for activation maps, grouped into named domains.

A domain is a name and a list of texts. The paper compares domains (e.g.
code vs. law), so every statistic is kept per domain. Texts come from a
plain file (one input per paragraph; per line when the file has no blank
lines) or from an MMLU-format directory (``mmlu:DIR:SUBJECT``, zero-shot
question prompts; ``mmlu:DIR:SUBJECT:5`` for the standard 5-shot prompt).
Zero-shot is the default because 5-shot prompts are ~10x longer, and one
backward pass per input over hundreds of tokens is what costs on a CPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mutascope.errors import MutascopeError
from mutascope.textfile import read_text_file

__all__ = ["ALL", "Domain", "mmlu_texts", "parse_domain", "read_texts"]

ALL = "all"  # the pseudo-domain pooling every input; reserved as a domain name
_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Domain:
    """A named group of input texts and where they came from."""

    name: str
    texts: tuple[str, ...]
    source: str


def read_texts(path: str | Path) -> list[str]:
    """Inputs of a text file: paragraphs separated by blank lines, else one per non-empty line."""
    p = Path(path)
    text = read_text_file(p, "domain file", "pass a text file or mmlu:DIR:SUBJECT")
    if re.search(r"\n[ \t]*\n", text.strip()):
        chunks = re.split(r"\n[ \t]*\n", text)
    else:
        chunks = text.splitlines()
    texts = [c.strip() for c in chunks if c.strip()]
    if not texts:
        raise MutascopeError(f"domain file {p}: holds no text")
    return texts


def _zero_shot(subject: str, q) -> str:
    from mutascope.mmlu import LETTERS, format_subject

    text = f"The following are multiple choice questions (with answers) about {format_subject(subject)}.\n\n"
    text += q.question
    for letter, choice in zip(LETTERS, q.choices):
        text += f"\n{letter}. {choice}"
    return text + "\nAnswer:"


def mmlu_texts(directory: str | Path, subject: str, *, shots: int = 0, split: str = "test") -> list[str]:
    """Prompts for every question of one MMLU subject, ending in ``Answer:``."""
    from mutascope.mmlu import five_shot_prompt, load_questions

    if shots not in (0, 5):
        raise MutascopeError(f"MMLU domain shots must be 0 or 5, got {shots}")
    questions = load_questions(directory, subject, split)
    if not questions:
        raise MutascopeError(f"MMLU subject {subject!r} has no {split} questions in {directory}")
    if shots == 5:
        dev = load_questions(directory, subject, "dev")
        return [five_shot_prompt(dev, q) for q in questions]
    return [_zero_shot(subject, q) for q in questions]


def parse_domain(spec: str, limit: int | None = None) -> Domain:
    """``NAME=PATH`` or ``NAME=mmlu:DIR:SUBJECT[:SHOTS]`` -> a :class:`Domain` of at most ``limit`` texts."""
    name, sep, source = spec.partition("=")
    name, source = name.strip(), source.strip()
    if not sep or not name or not source:
        raise MutascopeError(f"bad domain {spec!r}: use NAME=FILE or NAME=mmlu:DIR:SUBJECT")
    if not _NAME_RE.fullmatch(name) or name == ALL:
        raise MutascopeError(f"bad domain name {name!r}: use letters, digits, _ . - (and not {ALL!r})")
    if limit is not None and limit < 1:
        raise MutascopeError(f"inputs per domain must be >= 1, got {limit}")
    if source.startswith("mmlu:"):
        parts = source[len("mmlu:"):].rsplit(":", 2)
        shots = 0
        if len(parts) == 3 and parts[2].isdigit():
            shots = int(parts[2])
            parts = parts[:2]
        elif len(parts) == 3:
            parts = [parts[0] + ":" + parts[1], parts[2]]
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise MutascopeError(f"bad MMLU domain {source!r}: use mmlu:DIR:SUBJECT or mmlu:DIR:SUBJECT:5")
        texts = mmlu_texts(parts[0], parts[1], shots=shots)
    else:
        texts = read_texts(source)
    return Domain(name, tuple(texts[:limit] if limit else texts), source)
