"""Scores of a mutant on a multiple-choice probe set (MMLU21 and alike).

A choice probe's phenotype is the letter it answers, not its text, and what
matters is the *set*: the paper's MMLU21 score ``a|b`` counts correct answers
among the questions the wild type got right (``a``, 14 of them) and among
those it got wrong (``b``, 7). A mutant that only loses knowledge lowers
``a``; one that answers at random moves both towards chance. The split is
made here from the WT outputs stored with the screen, so it works for any
choice set (``mmlu:SUBJECT`` too), not only the 14/7 selection.

"Malignant" (paper, section 1 item 6): an NSM whose text output moved far
from WT's (cosine similarity <= 0.5) *and* that broke the model's knowledge
(MMLU21 score <= 8). The paper writes the score as ``a|b`` but compares it
with one number; the project reads that number as the total ``a + b``
correct out of 21 (WT itself scores 14|0 = 14), so 8 means the mutant lost
at least 6 of WT's 14 right answers net of lucky guesses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InputError
from ..probes.mmlu import answer_letter, mmlu21_score

__all__ = [
    "MALIGNANT_MAX_SCORE",
    "MALIGNANT_MAX_SIMILARITY",
    "NO_ANSWER",
    "ChoiceScore",
    "is_malignant",
    "is_mmlu21_group",
    "score_choices",
]

MALIGNANT_MAX_SIMILARITY = 0.5
MALIGNANT_MAX_SCORE = 8
NO_ANSWER = "-"  # stands for an output that is not a letter A-D in an answers string


def is_mmlu21_group(group: str | None) -> bool:
    """Whether a probe group is the paper's 21-question set (the malignancy rule applies only there)."""
    return group is not None and group.startswith("mmlu21:")


@dataclass(frozen=True)
class ChoiceScore:
    """One mutant's answers to one choice set, against WT's.

    ``answers`` and ``wt_answers`` hold one letter per question in probe
    order, :data:`NO_ANSWER` where the output was not an answer letter.
    """

    group: str
    answers: str
    wt_answers: str
    key: str  # the correct letters
    correct_right: int  # a: correct among the questions WT got right
    correct_wrong: int  # b: correct among those WT got wrong

    @property
    def n_questions(self) -> int:
        return len(self.key)

    @property
    def n_wt_right(self) -> int:
        return sum(w == k for w, k in zip(self.wt_answers, self.key))

    @property
    def score(self) -> str:
        """The paper's ``a|b``."""
        return mmlu21_score(self.correct_right, self.correct_wrong)

    @property
    def total(self) -> int:
        """``a + b``: correct answers out of :attr:`n_questions`."""
        return self.correct_right + self.correct_wrong

    @property
    def changed(self) -> bool:
        """Whether any answer differs from WT's (the paper's MMLU21 NSM, read on letters)."""
        return self.answers != self.wt_answers


def _letter(text: str) -> str:
    return answer_letter(text) or NO_ANSWER


def score_choices(group: str, key: Sequence[str], wt_outputs: Sequence[str], outputs: Sequence[str]) -> ChoiceScore:
    """Score one mutant: ``key`` the correct letters, ``wt_outputs``/``outputs`` the decoded new tokens."""
    if not (len(key) == len(wt_outputs) == len(outputs)) or not key:
        raise InputError(
            f"choice set {group!r}: need one key letter, WT output and mutant output per question, "
            f"got {len(key)}, {len(wt_outputs)}, {len(outputs)}"
        )
    wt = "".join(_letter(t) for t in wt_outputs)
    mutant = "".join(_letter(t) for t in outputs)
    key_s = "".join(key)
    a = sum(m == k for m, w, k in zip(mutant, wt, key_s) if w == k)
    b = sum(m == k for m, w, k in zip(mutant, wt, key_s) if w != k)
    return ChoiceScore(group, mutant, wt, key_s, a, b)


def is_malignant(similarity: float, score_total: int) -> bool:
    """The paper's malignant NSM: similarity <= 0.5 and MMLU21 score (a + b) <= 8."""
    return similarity <= MALIGNANT_MAX_SIMILARITY and score_total <= MALIGNANT_MAX_SCORE
