"""How a model's answer to a concept question is read: ``letter`` or ``cloze``.

* ``letter``: the zero-shot multiple-choice prompt (question, lettered
  choices, ``Answer:``); the letter whose next token has the highest logit
  wins. This is :func:`mutascope.evaluate.choice_accuracy`
  reused as is. Small models are at chance here: SmolLM2-135M-Instruct puts
  every question of the shipped set on the same letter (27.5 % measured).
* ``cloze`` (the default): prompt ``Question: ...\\nAnswer:`` and score each
  choice by the summed log-probability of its text as the continuation
  (`` <choice>``); the most likely choice wins. This is how small models'
  knowledge is usually measured (SmolLM2's own MMLU "cloze" numbers);
  SmolLM2-135M answers 60 % of the shipped questions right this way. The
  four continuations of a question run as one right-padded batch, which
  leaves every real position exactly as unpadded (causal attention).

In both methods the *answer position* used for coefficients is the last
prompt token (``:`` of ``Answer:``), where the answer starts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..evaluate import ChoiceSet, choice_accuracy, token_id
from ..model.subject import Subject
from ..probes.mmlu import LETTERS, Question, format_question

METHODS = ("cloze", "letter")
HEADER = "The following is a multiple choice question (with answer).\n\n"


def check_method(method: str) -> str:
    if method not in METHODS:
        raise InputError(f"unknown answer method {method!r}; use one of {', '.join(METHODS)}")
    return method


def prompt(question: Question, method: str = "cloze") -> str:
    """The text the model reads before answering; it ends at the answer position."""
    if check_method(method) == "letter":
        return HEADER + format_question(question, with_answer=False)
    return f"Question: {question.question}\nAnswer:"


def letter_ids(subject: Subject) -> tuple[int, ...]:
    """Token ids of the answer letters (" A" when one token, else "A")."""
    return tuple(token_id(subject, " " + letter) for letter in LETTERS)


@dataclass(frozen=True)
class ClozeSet:
    """Per question: the 4 choice sequences (right-padded), their masks, and where the choice tokens are."""

    inputs: tuple[torch.Tensor, ...]
    attention: tuple[torch.Tensor, ...]
    targets: tuple[torch.Tensor, ...]  # (4, T) next-token ids of choice tokens, -1 elsewhere
    answers: tuple[int, ...]


def prompt_ids(subject: Subject, questions: Sequence[Question], method: str) -> list[torch.Tensor]:
    """Tokenized prompts, ``(1, T)`` each (what the coefficients are read on)."""
    return [subject.tokenizer(prompt(q, method), return_tensors="pt").input_ids for q in questions]


def prepare(subject: Subject, questions: Sequence[Question], method: str = "cloze"):
    """Tokenize ``questions`` once for :func:`accuracy` (a ChoiceSet or a ClozeSet)."""
    answers = tuple(LETTERS.index(q.answer) for q in questions)
    if check_method(method) == "letter":
        return ChoiceSet(tuple(prompt_ids(subject, questions, method)), answers, letter_ids(subject))
    tok = subject.tokenizer
    inputs, attention, targets = [], [], []
    for q in questions:
        stem = tok(prompt(q, "cloze"), return_tensors="pt").input_ids[0]
        conts = [tok(" " + c, add_special_tokens=False).input_ids for c in q.choices]
        width = len(stem) + max(len(c) for c in conts)
        ids = torch.zeros(4, width, dtype=torch.long)
        mask = torch.zeros(4, width, dtype=torch.long)
        tgt = torch.full((4, width), -1, dtype=torch.long)
        for i, cont in enumerate(conts):
            n = len(stem) + len(cont)
            ids[i, : len(stem)] = stem
            ids[i, len(stem) : n] = torch.tensor(cont, dtype=torch.long)
            mask[i, :n] = 1
            # position p predicts token p + 1: the choice tokens are predicted from len(stem) - 1 on
            tgt[i, len(stem) - 1 : n - 1] = torch.tensor(cont, dtype=torch.long)
        inputs.append(ids)
        attention.append(mask)
        targets.append(tgt)
    return ClozeSet(tuple(inputs), tuple(attention), tuple(targets), answers)


def cloze_scores(subject: Subject, questions: ClozeSet) -> list[torch.Tensor]:
    """Per question, the summed log-probability of each choice's text, shape ``(4,)`` (float32, CPU)."""
    out = []
    with torch.no_grad():
        for ids, mask, tgt in zip(questions.inputs, questions.attention, questions.targets):
            logp = subject.model(ids.to(subject.device), attention_mask=mask.to(subject.device)).logits.float()
            logp = logp.log_softmax(-1).cpu()
            picked = logp.gather(2, tgt.clamp(min=0)[..., None])[..., 0]
            out.append((picked * (tgt >= 0)).sum(1))
    return out


def letter_scores(subject: Subject, questions: ChoiceSet) -> list[torch.Tensor]:
    """Per question, the next-token logits of the four answer letters, shape ``(4,)`` (float32, CPU)."""
    out = []
    with torch.no_grad():
        for ids in questions.prompts:
            logits = subject.model(ids.to(subject.device)).logits[0, -1]
            out.append(logits[list(questions.letter_ids)].float().cpu())
    return out


def choice_scores(subject: Subject, prepared) -> list[torch.Tensor]:
    """Each question's four choice scores (the highest is the model's answer), whichever method
    ``prepared`` is for: what the fine-tuning experiment reads confidence from."""
    if isinstance(prepared, ChoiceSet):
        return letter_scores(subject, prepared)
    return cloze_scores(subject, prepared)


def cloze_accuracy(subject: Subject, questions: ClozeSet) -> float:
    """Fraction of questions whose right choice has the highest summed log-probability."""
    scores = cloze_scores(subject, questions)
    right = sum(int(int(s.argmax()) == answer) for s, answer in zip(scores, questions.answers))
    return right / len(questions.answers)


def accuracy(subject: Subject, prepared) -> float:
    """Accuracy on a set from :func:`prepare`, whichever method it was prepared for."""
    if isinstance(prepared, ChoiceSet):
        return choice_accuracy(subject, prepared)
    return cloze_accuracy(subject, prepared)
