"""Build the fine-tuning experiment's shipped concept set from MMLU: 30 subjects x 20 questions.

``mutascope specialization --finetune`` compares arms over concepts, so its
power is set by the number of concepts (docs/specialization.md, "Power").
The 10-concept example set (``data/concepts.yaml``) stays what the PSS
measurement uses; this script writes the larger set the fine-tuning
experiment reads by default, ``src/mutascope/data/concepts_finetune.jsonl``,
from a directory in MMLU's original CSV layout (``test/{subject}_test.csv``;
MIT licence, Hendrycks et al. 2021), given as an argument:

    python benchmarks/make_mmlu_concepts.py PATH/TO/mmlu

A concept is one MMLU subject; its questions come from the subject's test
split. Only questions the cloze reading can score are eligible (the
experiment's default answer method scores each choice's text as the
continuation of ``Question: ...\\nAnswer:``, so a choice must make sense
without the others):

* no choice that points at the other choices ("all of the above", "both",
  "none", "A and B", ...) and four distinct choices;
* no "Statement 1 | Statement 2" item (its choices are "True, False" pairs);
* a question of at most 200 characters and choices of at most 60 (the cost
  of a reading grows with the tokens, and the experiment reads every
  question about 20 times on a CPU).

Subjects with at least ``--questions`` eligible questions qualify, except
``miscellaneous`` (a grab bag, not a concept); ``--concepts`` of them are
drawn with ``random.Random(seed)`` from the sorted list, and each one's
questions with ``random.Random(f"{seed}:{subject}")``, kept in file order.
MMLU holds a few questions twice (within a subject and across subjects);
each is eligible once only, the first time it is met (subjects in sorted
order, rows in file order), so no held-out question is also a training
question or another concept's.
The output is one JSON object per line in the format
:mod:`mutascope.specialization.concepts` reads; the same CSVs and seed give
the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

from mutascope.probes.mmlu import Question, load_questions, subjects

EXCLUDED = {"miscellaneous"}
MAX_QUESTION_CHARS = 200
MAX_CHOICE_CHARS = 60
# a choice that only means something next to the others
POINTER = re.compile(
    r"\b(of the above|of these|of them|above|both|neither|none|all of)\b"
    r"|\b[A-D] and [A-D]\b|^\(?[A-D]\)? and",
    re.IGNORECASE,
)
OUT = Path(__file__).resolve().parents[1] / "src" / "mutascope" / "data" / "concepts_finetune.jsonl"


def eligible(q: Question) -> bool:
    """Whether the cloze reading can score ``q`` (see the module docstring)."""
    return (
        len(q.question) <= MAX_QUESTION_CHARS
        and max(len(c) for c in q.choices) <= MAX_CHOICE_CHARS
        and not any(POINTER.search(c) for c in q.choices)
        and "Statement 1" not in q.question
        and len({c.strip().lower() for c in q.choices}) == 4
    )


def _key(q: Question) -> tuple:
    return q.question.strip(), tuple(c.strip() for c in q.choices)


def build(mmlu: Path, n_concepts: int, n_questions: int, seed: int) -> list[dict]:
    """The lines of the concept file, in order (concepts by name, questions by their MMLU row)."""
    pools = {}
    for subject in subjects(mmlu):
        if subject in EXCLUDED:
            continue
        pool = [q for q in load_questions(mmlu, subject, "test") if eligible(q)]
        if len(pool) >= n_questions:
            pools[subject] = pool
    if len(pools) < n_concepts:
        raise SystemExit(f"only {len(pools)} subjects have {n_questions} eligible questions; asked for {n_concepts}")
    chosen = sorted(random.Random(seed).sample(sorted(pools), n_concepts))
    lines = []
    taken: set = set()  # MMLU repeats a few questions, within and across subjects: each is used once
    for subject in chosen:
        pool = [q for q in pools[subject] if _key(q) not in taken and not taken.add(_key(q))]
        if len(pool) < n_questions:
            raise SystemExit(f"{subject}: only {len(pool)} distinct eligible questions; asked for {n_questions}")
        drawn = random.Random(f"{seed}:{subject}").sample(pool, n_questions)
        for q in sorted(drawn, key=lambda q: q.index):
            lines.append(
                {
                    "concept": subject,
                    "question": q.question.strip(),
                    "choices": [c.strip() for c in q.choices],
                    "answer": q.answer,
                }
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mmlu", type=Path, help="directory in MMLU's CSV layout (dev/, val/, test/)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--concepts", type=int, default=30)
    parser.add_argument("--questions", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    lines = build(args.mmlu, args.concepts, args.questions, args.seed)
    text = "".join(json.dumps(line, ensure_ascii=True) + "\n" for line in lines)
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: {len({x['concept'] for x in lines})} concepts, {len(lines)} questions, {len(text)} bytes")


if __name__ == "__main__":
    main()
