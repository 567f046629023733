"""Multiple-choice probes from a directory in MMLU's original CSV layout.

The layout is ``dev/{subject}_dev.csv``, ``val/{subject}_val.csv`` and
``test/{subject}_test.csv``, header-less rows of question, four choices and
the answer letter. Prompts follow the standard 5-shot format the paper used
for its MMLU21 probe (first 14 questions the wild type gets right, first 7 it
gets wrong).
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import InputError
from .probe import Decoding, Probe

__all__ = [
    "LETTERS",
    "SPLITS",
    "Question",
    "answer_letter",
    "choice_probes",
    "five_shot_prompt",
    "format_subject",
    "load_questions",
    "mmlu21_score",
    "select_mmlu21",
    "subjects",
]

LETTERS = ("A", "B", "C", "D")
SPLITS = ("dev", "val", "test")
N_SHOTS = 5

_SUBJECT_RE = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Question:
    """One row of an MMLU CSV; ``index`` is its 0-based position in the file."""

    subject: str
    index: int
    question: str
    choices: tuple[str, str, str, str]
    answer: str


def _check_directory(directory: str | Path) -> Path:
    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"MMLU directory {d}: not found; pass a directory holding dev/, val/ and test/ CSV folders")
    return d


def subjects(directory: str | Path) -> list[str]:
    """Subjects that have a test file (``test/{subject}_test.csv``), sorted."""
    d = _check_directory(directory)
    found = sorted(p.name[: -len("_test.csv")] for p in (d / "test").glob("*_test.csv") if p.is_file())
    if not found:
        raise InputError(f"MMLU directory {d}: no subjects found; expected files like test/SUBJECT_test.csv")
    return found


def load_questions(directory: str | Path, subject: str, split: str = "test") -> list[Question]:
    """Read one subject's split, checking every row (so a bad file fails at load, not mid-screen)."""
    if split not in SPLITS:
        raise InputError(f"MMLU split {split!r} is unknown; use one of {', '.join(SPLITS)}")
    d = _check_directory(directory)
    if not isinstance(subject, str) or not _SUBJECT_RE.fullmatch(subject):
        raise InputError(f"MMLU subject {subject!r} is invalid; use a name like international_law")
    path = d / split / f"{subject}_{split}.csv"
    if not path.is_file():
        available = sorted(p.name[: -len(f"_{split}.csv")] for p in (d / split).glob(f"*_{split}.csv"))
        close = difflib.get_close_matches(subject, available, n=5, cutoff=0.5)
        shown = close or available[:5]
        hint = f"; available include {', '.join(shown)}" if shown else f"; {d / split} has no *_{split}.csv files"
        more = f" ({len(available)} in all)" if len(available) > len(shown) else ""
        raise InputError(f"MMLU file {path}: not found for subject {subject!r}{hint}{more}")

    questions: list[Question] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            start = 1
            for row in reader:
                line = start
                start = reader.line_num + 1
                if not row or all(not cell.strip() for cell in row):
                    continue
                if len(row) != 6:
                    raise InputError(
                        f"MMLU file {path}:{line}: expected 6 fields (question, A, B, C, D, answer), got {len(row)}"
                    )
                answer = row[5].strip()
                if answer not in LETTERS:
                    raise InputError(f"MMLU file {path}:{line}: answer must be one of A, B, C, D, got {row[5]!r}")
                questions.append(
                    Question(
                        subject=subject,
                        index=len(questions),
                        question=row[0],
                        choices=(row[1], row[2], row[3], row[4]),
                        answer=answer,
                    )
                )
    except UnicodeDecodeError:
        raise InputError(f"MMLU file {path}: not valid UTF-8 text") from None
    except csv.Error as e:
        raise InputError(f"MMLU file {path}:{reader.line_num}: malformed CSV: {e}") from None
    return questions


def format_subject(subject: str) -> str:
    """``international_law`` -> ``international law``, as in the standard MMLU prompt."""
    return " ".join(subject.split("_"))


def format_question(q: Question, with_answer: bool) -> str:
    text = q.question
    for letter, choice in zip(LETTERS, q.choices):
        text += f"\n{letter}. {choice}"
    text += "\nAnswer:"
    if with_answer:
        text += f" {q.answer}\n\n"
    return text


def five_shot_prompt(dev: list[Question], q: Question) -> str:
    """The standard 5-shot MMLU prompt (Hendrycks et al.), ending in ``Answer:`` with no space."""
    if len(dev) < N_SHOTS:
        raise InputError(
            f"MMLU subject {q.subject!r}: the 5-shot prompt needs {N_SHOTS} dev questions, found {len(dev)}"
        )
    prompt = f"The following are multiple choice questions (with answers) about {format_subject(q.subject)}.\n\n"
    for shot in dev[:N_SHOTS]:
        prompt += format_question(shot, with_answer=True)
    return prompt + format_question(q, with_answer=False)


def choice_probes(directory: str | Path, subject: str, *, split: str = "test", limit: int | None = None) -> list[Probe]:
    """One greedy, one-token choice probe per question of a subject's split."""
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise InputError(f"MMLU limit must be a positive integer or None, got {limit!r}")
    dev = load_questions(directory, subject, "dev")
    questions = load_questions(directory, subject, split)
    if not questions:
        raise InputError(f"MMLU file {Path(directory) / split / f'{subject}_{split}.csv'}: holds no questions")
    if limit is not None:
        questions = questions[:limit]
    return [
        Probe(
            id=f"mmlu:{subject}:{q.index:04d}",
            text=five_shot_prompt(dev, q),
            max_new_tokens=1,
            decoding=Decoding(),
            kind="choice",
            answer=q.answer,
            group=f"mmlu:{subject}",
        )
        for q in questions
    ]


def answer_letter(text: str) -> str | None:
    """The answer a decoded new token stands for (``"A"``, ``" A"``, ``"A."`` -> ``"A"``), else None.

    Only capital letters count: a lone ``" a"`` is far more likely the article.
    """
    s = text.strip()
    if not s or s[0] not in LETTERS:
        return None
    if len(s) > 1 and s[1].isalnum():
        return None  # a word such as "All" or "Answer", not a label
    return s[0]


def _split_choice_id(probe: Probe) -> tuple[str, int]:
    parts = probe.id.split(":")
    if probe.kind != "choice" or len(parts) != 3 or parts[0] != "mmlu" or not parts[2].isdigit():
        raise InputError(f"probe {probe.id!r} is not an MMLU choice probe; build the candidates with choice_probes()")
    return parts[1], int(parts[2])


def select_mmlu21(
    probes: list[Probe],
    answer_fn: Callable[[Probe], str],
    n_right: int = 14,
    n_wrong: int = 7,
) -> list[Probe]:
    """The paper's MMLU21 set: the first ``n_right`` questions WT answers right and first ``n_wrong`` it gets wrong.

    ``answer_fn`` returns WT's decoded new token; it is called in order and no
    more often than needed, since each call is a model run.
    """
    for name, n in (("n_right", n_right), ("n_wrong", n_wrong)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"select_mmlu21: {name} must be an integer >= 0, got {n!r}")
    if n_right + n_wrong == 0:
        raise InputError("select_mmlu21: n_right and n_wrong are both 0; nothing to select")
    if not probes:
        raise InputError("select_mmlu21: no candidate probes given; build them with choice_probes()")
    keys = [_split_choice_id(p) for p in probes]
    subject_names = sorted({s for s, _ in keys})
    if len(subject_names) != 1:
        raise InputError(f"select_mmlu21: candidates must come from one subject, got {', '.join(subject_names)}")
    subject = subject_names[0]

    right: list[int] = []
    wrong: list[int] = []
    for i, probe in enumerate(probes):
        if len(right) >= n_right and len(wrong) >= n_wrong:
            break
        correct = answer_letter(answer_fn(probe)) == probe.answer
        bucket, limit = (right, n_right) if correct else (wrong, n_wrong)
        if len(bucket) < limit:
            bucket.append(i)
    if len(right) < n_right or len(wrong) < n_wrong:
        raise InputError(
            f"MMLU subject {subject!r} ran out after {len(probes)} questions: the model answered "
            f"{len(right)} of the {n_right} needed right and {len(wrong)} of the {n_wrong} needed wrong; "
            "use another subject or split"
        )
    chosen = sorted(right + wrong)
    return [replace(probes[i], id=f"mmlu21:{subject}:{keys[i][1]:04d}", group=f"mmlu21:{subject}") for i in chosen]


def mmlu21_score(correct_right: int, correct_wrong: int) -> str:
    """The paper's ``a|b`` score: correct among the WT-right questions | correct among the WT-wrong ones."""
    for name, n in (("correct_right", correct_right), ("correct_wrong", correct_wrong)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise InputError(f"mmlu21_score: {name} must be an integer >= 0, got {n!r}")
    return f"{correct_right}|{correct_wrong}"
