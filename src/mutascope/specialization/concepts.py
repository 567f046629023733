"""Concept question sets: loading, validating, choosing controls, building prompts.

The paper's dataset (SpecWiki) is not available, so the project takes concept
question sets as files and ships two: a small example (``data/concepts.yaml``:
ten well-known entities, ten questions each), the default of the PSS
measurement, and a larger set for the fine-tuning experiment, whose
comparisons over concepts need more of them to have power
(``data/concepts_finetune.jsonl``: 30 MMLU subjects, 20 questions each,
built by ``benchmarks/make_mmlu_concepts.py``; its MIT notice is
``data/concepts_finetune.README.md``). Two formats are read:

* **YAML**: a top-level ``concepts:`` list (or a bare list); each entry has
  ``concept`` (a unique name), ``questions`` and optionally ``controls``,
  both lists of ``{question, choices: [4 strings], answer: A-D}``.
* **JSONL**: one question per line,
  ``{"concept": ..., "question": ..., "choices": [...], "answer": "B"}``,
  plus ``"role": "control"`` for a control question listed for that concept
  (``"role"`` defaults to ``"question"``).

Controls (the paper's "unrelated questions"): a concept that lists its own
controls uses them. One that lists none gets ``n`` questions drawn without
replacement from the *other* concepts' questions, ``n`` = its own number of
questions, with a ``random.Random`` seeded by ``seed`` and the concept's
name, so the draw is reproducible and independent of file order.

Questions are :class:`mutascope.probes.mmlu.Question` (``subject`` = concept name;
``control:<name>`` for listed controls); how they are prompted and answered
is :mod:`.answers`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..files.text import read_jsonl, read_text_file
from ..probes.mmlu import LETTERS, Question


@dataclass(frozen=True)
class Concept:
    """One concept: its questions and its controls (``None`` until resolved)."""

    name: str
    questions: tuple[Question, ...]
    controls: tuple[Question, ...] | None = None

    @property
    def control_questions(self) -> tuple[Question, ...]:
        """The controls of a resolved concept (:func:`resolve_controls`); what scoring reads."""
        if self.controls is None:
            raise ValueError(f"concept {self.name!r} has no controls yet: resolve_controls() first")
        return self.controls


def default_concepts_path() -> Path:
    """The shipped example set (package data), so the command works with no file."""
    return Path(str(resources.files("mutascope").joinpath("data/concepts.yaml")))


def finetune_concepts_path() -> Path:
    """The shipped set of the fine-tuning experiment (package data): 30 concepts x 20 questions,
    enough concepts for its paired comparisons to have power (docs/specialization.md)."""
    return Path(str(resources.files("mutascope").joinpath("data/concepts_finetune.jsonl")))


def load_concepts(path: str | Path | None = None) -> list[Concept]:
    """Read and check a concept file (YAML or JSONL by suffix; default the shipped example set).

    Every problem is reported with the file and the concept or line, so a
    bad file fails at load and not in the middle of a model run.
    """
    p = default_concepts_path() if path is None else Path(path)
    text = read_text_file(p, "concept file", "pass a .yaml or .jsonl file")
    if p.suffix.lower() == ".jsonl":
        concepts = _from_jsonl(p, text)
    elif p.suffix.lower() in (".yaml", ".yml"):
        concepts = _from_yaml(p, text)
    else:
        raise InputError(f"concept file {p}: unknown format; use a .yaml, .yml or .jsonl file")
    if not concepts:
        raise InputError(f"concept file {p}: holds no concepts")
    return concepts


def _question(where: str, concept: str, index: int, raw) -> Question:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: a question must be a mapping with question, choices and answer")
    missing = [k for k in ("question", "choices", "answer") if k not in raw]
    if missing:
        raise InputError(f"{where}: question lacks {', '.join(missing)}")
    text, choices, answer = raw["question"], raw["choices"], raw["answer"]
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: question text must be a non-empty string")
    if not isinstance(choices, list) or len(choices) != 4:
        raise InputError(f"{where}: choices must be a list of exactly 4 options (A-D)")
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise InputError(f"{where}: every choice must be a non-empty string (quote numbers in YAML)")
    if answer not in LETTERS:
        raise InputError(f"{where}: answer must be one of A, B, C, D, got {answer!r}")
    return Question(subject=concept, index=index, question=text.strip(), choices=tuple(choices), answer=answer)


def _concept_name(where: str, raw) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(f"{where}: concept must be a non-empty string")
    return raw.strip()


def _from_yaml(p: Path, text: str) -> list[Concept]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = str(e).replace("\n", " ")
        raise InputError(f"concept file {p}: malformed YAML: {first}") from None
    if isinstance(data, dict):
        if "concepts" not in data:
            raise InputError(f"concept file {p}: expected a top-level 'concepts:' list")
        data = data["concepts"]
    if not isinstance(data, list):
        raise InputError(f"concept file {p}: expected a list of concepts")
    concepts: list[Concept] = []
    seen: set[str] = set()
    for i, entry in enumerate(data):
        where = f"concept file {p}, entry {i + 1}"
        if not isinstance(entry, dict) or "concept" not in entry:
            raise InputError(f"{where}: each entry needs 'concept' and 'questions'")
        name = _concept_name(where, entry["concept"])
        where = f"concept file {p}, concept {name!r}"
        if name in seen:
            raise InputError(f"{where}: the name is used twice; concept names must be unique")
        seen.add(name)
        unknown = set(entry) - {"concept", "questions", "controls"}
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        raw_q = entry.get("questions")
        if not isinstance(raw_q, list) or not raw_q:
            raise InputError(f"{where}: 'questions' must be a non-empty list")
        questions = tuple(_question(f"{where}, question {j + 1}", name, j, q) for j, q in enumerate(raw_q))
        controls = None
        if entry.get("controls") is not None:
            raw_c = entry["controls"]
            if not isinstance(raw_c, list) or not raw_c:
                raise InputError(f"{where}: 'controls' must be a non-empty list when given")
            controls = tuple(
                _question(f"{where}, control {j + 1}", f"control:{name}", j, q) for j, q in enumerate(raw_c)
            )
        concepts.append(Concept(name, questions, controls))
    return concepts


def _from_jsonl(p: Path, text: str) -> list[Concept]:
    questions: dict[str, list[Question]] = {}
    controls: dict[str, list[Question]] = {}
    for n, raw in read_jsonl(p, text, "concept file"):
        where = f"concept file {p}:{n}"
        if not isinstance(raw, dict):
            raise InputError(f"{where}: each line must be a JSON object")
        name = _concept_name(where, raw.get("concept"))
        role = raw.get("role", "question")
        if role not in ("question", "control"):
            raise InputError(f"{where}: role must be 'question' or 'control', got {role!r}")
        unknown = set(raw) - {"concept", "question", "choices", "answer", "role"}
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        bucket = questions if role == "question" else controls
        items = bucket.setdefault(name, [])
        subject = name if role == "question" else f"control:{name}"
        items.append(_question(where, subject, len(items), raw))
    orphans = sorted(set(controls) - set(questions))
    if orphans:
        raise InputError(f"concept file {p}: concept {orphans[0]!r} has controls but no questions")
    return [
        Concept(name, tuple(qs), tuple(controls[name]) if name in controls else None) for name, qs in questions.items()
    ]


def resolve_controls(concepts: list[Concept], seed: int = 0) -> list[Concept]:
    """Every concept with its controls filled in (see the module docstring for the rule)."""
    out = []
    for c in concepts:
        if c.controls is not None:
            out.append(c)
            continue
        # Sorted so the draw does not depend on the order of concepts in the file.
        pool = sorted(
            (q for other in concepts if other.name != c.name for q in other.questions),
            key=lambda q: (q.subject, q.index),
        )
        if not pool:
            raise InputError(
                f"concept {c.name!r} lists no controls and there is no other concept to draw them from; "
                "add a 'controls:' list or more concepts"
            )
        n = min(len(c.questions), len(pool))
        drawn = random.Random(f"{seed}:{c.name}").sample(pool, n)
        out.append(Concept(c.name, c.questions, tuple(drawn)))
    return out


def select(concepts: list[Concept], names: Sequence[str] | None) -> list[Concept]:
    """The named concepts, in the given order (all when ``names`` is empty or None)."""
    if not names:
        return list(concepts)
    by_name = {c.name: c for c in concepts}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise InputError(f"concept {missing[0]!r} is not in the concept file; it has: {', '.join(by_name)}")
    return [by_name[n] for n in dict.fromkeys(names)]
