"""Answers with their confidence, and hallucination defined on the shipped questions.

The shipped concept set has no "unknowable" questions, so hallucination is
read from the model's own abstentions. Every question has four choices and
the model's four choice scores (:func:`.answers.choice_scores`: summed
log-probabilities of the choice texts for ``cloze``, the letters' logits for
``letter``); their softmax is its *choice distribution*, and its confidence
is the largest probability. The model **abstains** on a question when that
confidence is below a threshold (``--confidence``, default 0.8: SmolLM2-135M-Instruct
abstains on 41 % of the shipped questions at 0.8, on 12 % at 0.5).

A fine-tuned model **hallucinates** on a question when the base model
abstained on it and the tuned model answers it confidently and wrongly: the
tuning made it sure of a false answer where it had not been sure of anything.
The hallucination rate of an arm is the share of the base model's
abstentions (among the held-out questions and the controls, which no arm
trained on) turned into confident wrong answers; NaN when the base model
abstained on none of them. Beside it, ``confident_wrong`` is the plain share
of those questions answered confidently and wrongly, base and tuned.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch

from ..errors import InputError
from ..model.subject import Subject
from .answers import choice_scores

DEFAULT_CONFIDENCE = 0.8


def check_confidence(threshold: float) -> float:
    if not 0.25 < threshold < 1:
        raise InputError(f"--confidence must be above 0.25 (chance over four choices) and below 1, got {threshold}")
    return threshold


@dataclass(frozen=True)
class Reading:
    """One question as the model answers it: the chosen option, whether it is right, and the
    probability the choice distribution gives it."""

    choice: int
    right: bool
    confidence: float

    def confident(self, threshold: float) -> bool:
        return self.confidence >= threshold


def read(subject: Subject, prepared: Mapping, questions: Iterable, answers: Mapping) -> dict:
    """The :class:`Reading` of each of ``questions`` (``prepared[q]``: :func:`.answers.prepare`
    of ``[q]``; ``answers[q]``: its right option) from the model as it stands."""
    out = {}
    for q in questions:
        scores = choice_scores(subject, prepared[q])[0]
        probs = torch.softmax(scores.double(), 0)
        choice = int(scores.argmax())
        out[q] = Reading(choice, choice == answers[q], float(probs[choice]))
    return out


def hallucination(base: Mapping, tuned: Mapping, questions: Iterable, threshold: float) -> tuple[float, int]:
    """``(rate, abstained)``: of the ``questions`` the base model abstained on (``abstained`` of
    them), the share the tuned model answers confidently and wrongly; NaN when there are none."""
    abstained = [q for q in questions if not base[q].confident(threshold)]
    if not abstained:
        return math.nan, 0
    wrong = sum(tuned[q].confident(threshold) and not tuned[q].right for q in abstained)
    return wrong / len(abstained), len(abstained)


def confident_wrong(readings: Mapping, questions: Iterable, threshold: float) -> float:
    """Share of ``questions`` answered confidently and wrongly."""
    qs = list(questions)
    return sum(readings[q].confident(threshold) and not readings[q].right for q in qs) / len(qs)
