"""Multiple-choice accuracy: the answer is the letter whose token has the highest next-token logit.

Prompts end where the answer letter is due (``Answer:``); a broken model
still gets a definite answer, so chance is 25 %. Questions come from an
MMLU-format directory (standard 5-shot prompt) or any prompts with answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError
from ..model.subject import Subject


def token_id(subject: Subject, text: str) -> int:
    ids = subject.tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) != 1:
        stripped = subject.tokenizer(text.strip(), add_special_tokens=False).input_ids
        if len(stripped) != 1:
            raise InputError(f"{text!r} is not a single token for this tokenizer; pick another word")
        ids = stripped
    return ids[0]


@dataclass(frozen=True)
class ChoiceSet:
    """Prepared multiple-choice prompts: token ids, answers, and the letters' token ids."""

    prompts: tuple[torch.Tensor, ...]
    answers: tuple[int, ...]
    letter_ids: tuple[int, ...]


def choice_set(subject: Subject, mmlu_dir: str | Path, mmlu_subject: str, limit: int | None = 20) -> ChoiceSet:
    """Tokenize ``limit`` test questions of one subject with the standard 5-shot prompt."""
    from ..probes.mmlu import LETTERS, five_shot_prompt, load_questions

    dev = load_questions(mmlu_dir, mmlu_subject, "dev")
    questions = load_questions(mmlu_dir, mmlu_subject, "test")[:limit]
    if not questions:
        raise InputError(f"MMLU subject {mmlu_subject!r} has no test questions")
    return choice_prompts(
        subject, [five_shot_prompt(dev, q) for q in questions], [LETTERS.index(q.answer) for q in questions]
    )


def choice_prompts(subject: Subject, prompts: list[str], answers: list[int]) -> ChoiceSet:
    """A :class:`ChoiceSet` from prompts that end where the answer letter is due (``Answer:``)."""
    from ..probes.mmlu import LETTERS

    if len(prompts) != len(answers) or not prompts:
        raise InputError("multiple-choice accuracy needs one answer per prompt, and at least one prompt")
    letters = tuple(token_id(subject, " " + letter) for letter in LETTERS)
    ids = tuple(subject.tokenizer(p, return_tensors="pt").input_ids for p in prompts)
    return ChoiceSet(ids, tuple(int(a) for a in answers), letters)


def choice_accuracy(subject: Subject, questions: ChoiceSet) -> float:
    """Fraction answered right: the letter whose token has the highest logit wins."""
    right = 0
    with torch.no_grad():
        for ids, answer in zip(questions.prompts, questions.answers):
            logits = subject.model(ids.to(subject.device)).logits[0, -1]
            right += int(int(logits[list(questions.letter_ids)].argmax()) == answer)
    return right / len(questions.answers)
