"""Perplexity on a plain-text corpus: pooled next-token negative log-likelihood.

The project ships a few KB of original English prose as the default corpus
(:func:`default_corpus`); any text file can replace it. NLL is summed over
non-overlapping windows, each started afresh (with BOS where the tokenizer
uses one), so several texts pool into one perplexity. Pure reads of the
model under ``torch.no_grad``.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path

import torch

from ..errors import InputError
from ..files.text import read_text_file
from ..model.subject import Subject


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
        raise InputError(f"corpus file {p}: is empty")
    return text


def corpus_ids(subject: Subject, text: str, max_tokens: int | None = None) -> torch.Tensor:
    """Token ids of ``text`` (1-D), truncated to ``max_tokens``; tokenized once, reused per ablation."""
    ids = subject.tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if len(ids) < 2:
        raise InputError("the corpus is too short: perplexity needs at least 2 tokens")
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
        raise InputError(f"perplexity window must be >= 2 tokens, got {window}")
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
        raise InputError("perplexity needs at least one predicted token")
    value = math.exp(total / n) if total / n < 709 else float("inf")
    return value if math.isfinite(value) else float("inf")


def perplexity(subject: Subject, ids: torch.Tensor, window: int = 256) -> float:
    """exp(mean next-token NLL) over non-overlapping windows of ``window`` tokens (see :func:`nll`)."""
    return pooled_perplexity([nll(subject, ids, window)])
