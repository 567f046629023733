"""From final hidden states to decoding decisions, without batch x positions x vocab logits.

The LM head is applied a few positions at a time and each slice is reduced at
once to what an engine needs per (row, step): the decoder's chosen token, the
top-1 minus top-2 decoder-score margin (how close the decision was to a tie)
and the log-probability of a given target token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..decoding import Decoder

# Bytes of float32 logits (and their temporaries) held at once per scoring slice.
LOGITS_BUDGET = 128 * 2**20


class LogitHead:
    """The model's output layer, as its own causal-LM forward applies it.

    Found generically (``get_output_embeddings``) plus the two post-processing
    steps some families apply (Gemma 2/3 final soft-capping, Cohere's logit
    scale). :meth:`check` compares against the model's own logits once.
    """

    def __init__(self, model: torch.nn.Module):
        self.lm_head = model.get_output_embeddings()
        config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        self.softcap = getattr(config, "final_logit_softcapping", None)
        self.scale = getattr(config, "logit_scale", None)
        self.vocab_size = int(self.lm_head.weight.shape[0])

    def __call__(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(hidden)
        if self.scale is not None:
            logits = logits * self.scale
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


@dataclass
class StepScores:
    """Per (row, step): chosen token, top-1/top-2 score margin and its relative size, log p(target)."""

    tokens: torch.Tensor  # (B, n) long
    margins: torch.Tensor  # (B, n) float32
    relative: torch.Tensor  # (B, n) float32: margin / largest |score|
    logprobs: torch.Tensor | None  # (B, n) float32, when targets were given


def decide(logits: torch.Tensor, decoder: Decoder, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The decoder's token, the top-1/top-2 margin and the margin relative to the scores' scale.

    Uses exactly :meth:`Decoder.scores`, the function the reference engine's
    ``generate`` takes the argmax of. Rounding noise is proportional to the
    size of the scores, hence the relative margin for near-tie checks.
    """
    scores = decoder.scores(logits, step)
    top = scores.topk(2, dim=-1)
    margin = top.values[:, 0] - top.values[:, 1]
    scale = scores.abs().amax(dim=-1).clamp(min=1.0)
    return top.indices[:, 0], margin, margin / scale


def score_steps(
    hidden: torch.Tensor,
    head: LogitHead,
    decoder: Decoder,
    first_step: int,
    targets: torch.Tensor | None = None,
) -> StepScores:
    """Decide every position of ``hidden`` (B, n, d); position ``j`` is step ``first_step + j``.

    ``targets`` (n,) are the tokens whose log-probability (under the model's
    own softmax, independent of the decoding policy) is wanted per step.
    """
    b, n, _ = hidden.shape
    per_step = max(1, LOGITS_BUDGET // (3 * 4 * b * head.vocab_size))
    tokens = torch.empty(b, n, dtype=torch.long, device=hidden.device)
    margins = torch.empty(b, n, dtype=torch.float32, device=hidden.device)
    relative = torch.empty_like(margins)
    logprobs = None if targets is None else torch.empty(b, n, dtype=torch.float32, device=hidden.device)
    for s0 in range(0, n, per_step):
        s1 = min(n, s0 + per_step)
        logits = head(hidden[:, s0:s1]).to(torch.float32)
        for j in range(s0, s1):
            tokens[:, j], margins[:, j], relative[:, j] = decide(logits[:, j - s0], decoder, first_step + j)
        if targets is not None:
            lse = torch.logsumexp(logits, dim=-1)
            picked = logits.gather(-1, targets[s0:s1].view(1, -1, 1).expand(b, -1, 1)).squeeze(-1)
            logprobs[:, s0:s1] = picked - lse
        del logits
    return StepScores(tokens, margins, relative, logprobs)
