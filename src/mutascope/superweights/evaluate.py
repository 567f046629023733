"""The three measurements the paper reports for every ablation.

* perplexity on a plain-text corpus (the project ships a few KB of original
  English prose as the default, :func:`default_corpus`);
* accuracy on multiple-choice questions from an MMLU-format directory
  (standard 5-shot prompt; the answer is the letter whose token has the
  highest next-token logit, so a broken model still gets a definite answer
  and chance is 25 %);
* next-token probability of stopwords after a set of prompts (the paper saw
  "the", "." and "," become 2-10x more likely without the super weight).

All are pure reads of the model under ``torch.no_grad``; they never modify it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from mutascope.errors import MutascopeError
from mutascope.textfile import read_text_file
from mutascope.subject import Subject

STOPWORDS = (" the", ".", ",")

# Prompts after which a stopword is a plausible next token, so its probability
# is well above the floor and its change can be read.
STOPWORD_PROMPTS = (
    "She opened the door and walked into",
    "The results of the experiment were clear",
    "After dinner we went for a walk along",
    "He bought apples, pears",
    "The capital of France is Paris",
    "In the middle of",
    "They waited for a long time",
    "The meeting was moved to the end of",
)


def default_corpus() -> str:
    """The shipped evaluation corpus (original public-domain-style prose)."""
    return resources.files("mutascope").joinpath("data/corpus.txt").read_text(encoding="utf-8")


def read_corpus(path: str | Path | None) -> str:
    """Text of ``path``, or the shipped corpus when None."""
    if path is None:
        return default_corpus()
    p = Path(path)
    text = read_text_file(p, "corpus file", "pass a plain-text file")
    if not text.strip():
        raise MutascopeError(f"corpus file {p}: is empty")
    return text


def corpus_ids(subject: Subject, text: str, max_tokens: int | None = None) -> torch.Tensor:
    """Token ids of ``text`` (1-D), truncated to ``max_tokens``; tokenized once, reused per ablation."""
    ids = subject.tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if len(ids) < 2:
        raise MutascopeError("the corpus is too short: perplexity needs at least 2 tokens")
    return ids


def _prefix(subject: Subject) -> list[int]:
    """BOS when the tokenizer adds one by itself, so windows look like ordinary inputs."""
    probe = subject.tokenizer("a").input_ids
    bos = subject.tokenizer.bos_token_id
    return [bos] if bos is not None and probe and probe[0] == bos else []


def nll(subject: Subject, ids: torch.Tensor, window: int = 256) -> tuple[float, int]:
    """Summed next-token negative log-likelihood of ``ids`` and how many tokens it covers,
    over non-overlapping windows of ``window`` tokens.

    Each window starts afresh (with BOS if the tokenizer uses one) so the
    super activation forms at its first token as in any ordinary input.
    Sums (not means) so that several texts can be pooled into one perplexity.
    """
    if window < 2:
        raise MutascopeError(f"perplexity window must be >= 2 tokens, got {window}")
    prefix = _prefix(subject)
    total, n = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start : start + window + 1]
            if len(chunk) < 2:
                break
            inp = torch.tensor(prefix + chunk[:-1].tolist())[None].to(subject.device)
            logits = subject.model(inp).logits[0, len(prefix) :].float()
            total += float(torch.nn.functional.cross_entropy(logits, chunk[1:].to(logits.device), reduction="sum"))
            n += len(chunk) - 1
    return total, n


def pooled_perplexity(parts: list[tuple[float, int]]) -> float:
    """exp(summed NLL / summed tokens) of several :func:`nll` results; inf when it overflows."""
    total, n = sum(t for t, _ in parts), sum(k for _, k in parts)
    if n == 0:
        raise MutascopeError("perplexity needs at least one predicted token")
    value = math.exp(total / n) if total / n < 709 else float("inf")
    return value if math.isfinite(value) else float("inf")


def perplexity(subject: Subject, ids: torch.Tensor, window: int = 256) -> float:
    """exp(mean next-token NLL) over non-overlapping windows of ``window`` tokens (see :func:`nll`)."""
    return pooled_perplexity([nll(subject, ids, window)])


def token_id(subject: Subject, text: str) -> int:
    ids = subject.tokenizer(text, add_special_tokens=False).input_ids
    if len(ids) != 1:
        stripped = subject.tokenizer(text.strip(), add_special_tokens=False).input_ids
        if len(stripped) != 1:
            raise MutascopeError(f"{text!r} is not a single token for this tokenizer; pick another word")
        ids = stripped
    return ids[0]


def stopword_probs(
    subject: Subject, prompts: tuple[str, ...] | list[str] = STOPWORD_PROMPTS, words: tuple[str, ...] = STOPWORDS
) -> dict[str, float]:
    """Mean next-token probability of each stopword over ``prompts``.

    A word the tokenizer splits into several tokens has no single next-token
    probability; it is left out of the result rather than approximated.
    """
    if not prompts:
        raise MutascopeError("stopword probabilities need at least one prompt")
    ids = {}
    for w in words:
        try:
            ids[w] = token_id(subject, w)
        except MutascopeError:
            continue  # not one token here (e.g. a byte-level test tokenizer): not measurable
    totals = dict.fromkeys(ids, 0.0)
    with torch.no_grad():
        for prompt in prompts:
            inp = subject.tokenizer(prompt, return_tensors="pt").input_ids.to(subject.device)
            probs = subject.model(inp).logits[0, -1].float().softmax(-1)
            for w, i in ids.items():
                totals[w] += float(probs[i])
    return {w: v / len(prompts) for w, v in totals.items()}


@dataclass(frozen=True)
class ChoiceSet:
    """Prepared multiple-choice prompts: token ids, answers, and the letters' token ids."""

    prompts: tuple[torch.Tensor, ...]
    answers: tuple[int, ...]
    letter_ids: tuple[int, ...]


def choice_set(subject: Subject, mmlu_dir: str | Path, mmlu_subject: str, limit: int | None = 20) -> ChoiceSet:
    """Tokenize ``limit`` test questions of one subject with the standard 5-shot prompt."""
    from mutascope.mmlu import LETTERS, five_shot_prompt, load_questions

    dev = load_questions(mmlu_dir, mmlu_subject, "dev")
    questions = load_questions(mmlu_dir, mmlu_subject, "test")[:limit]
    if not questions:
        raise MutascopeError(f"MMLU subject {mmlu_subject!r} has no test questions")
    return choice_prompts(subject, [five_shot_prompt(dev, q) for q in questions],
                          [LETTERS.index(q.answer) for q in questions])


def choice_prompts(subject: Subject, prompts: list[str], answers: list[int]) -> ChoiceSet:
    """A :class:`ChoiceSet` from prompts that end where the answer letter is due (``Answer:``)."""
    from mutascope.mmlu import LETTERS

    if len(prompts) != len(answers) or not prompts:
        raise MutascopeError("multiple-choice accuracy needs one answer per prompt, and at least one prompt")
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
