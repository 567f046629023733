"""The reference engine: the paper's loop, kept simple on purpose.

For each mutation: write the tile into the weight, generate every probe with
Hugging Face ``generate`` under the probe's deterministic decoding, and
restore the tile in a ``finally``. Slow, obviously right, and the ground truth
that every faster engine is tested against.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from transformers import GenerationConfig, LogitsProcessorList

from ..decoding import DecoderLogitsProcessor
from ..mutation import Mutation, applied
from ..store import OutcomeRow
from .base import PreparedProbe, divergence_step


def eos_ids(subject) -> list[int]:
    """The end-of-sequence token ids generation stops at (the tokenizer's)."""
    eos = subject.tokenizer.eos_token_id
    return [] if eos is None else [int(eos)]


def decode_text(subject, tokens: Sequence[int]) -> str:
    """Output text as a user reads it (special tokens dropped)."""
    return subject.tokenizer.decode(list(tokens), skip_special_tokens=True)


class ReferenceEngine:
    """Mutate in place, ``generate``, restore."""

    name = description = "reference"
    chunk_size = 8  # mutations per committed chunk: a few seconds of work each

    def __init__(self, subject):
        self.subject = subject
        self.eos = eos_ids(subject)

    @torch.inference_mode()
    def generate(self, probe: PreparedProbe, max_new_tokens: int | None = None) -> tuple[int, ...]:
        """The current model's output for ``probe`` (its first ``max_new_tokens`` tokens if given)."""
        model = self.subject.model
        device = next(model.parameters()).device
        ids = torch.tensor([probe.prompt], dtype=torch.long, device=device)
        pad = self.subject.tokenizer.pad_token_id
        config = GenerationConfig(
            max_new_tokens=probe.probe.max_new_tokens if max_new_tokens is None else max_new_tokens,
            min_new_tokens=0,
            do_sample=False,
            num_beams=1,
            eos_token_id=self.eos or None,
            pad_token_id=pad if pad is not None else (self.eos[0] if self.eos else 0),
        )
        processors = LogitsProcessorList([DecoderLogitsProcessor(probe.decoder, len(probe.prompt))])
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), generation_config=config, logits_processor=processors
        )
        tokens = out[0, len(probe.prompt) :].tolist()
        for i, t in enumerate(tokens):  # keep the first end-of-sequence, drop any padding after it
            if t in self.eos:
                return tuple(tokens[: i + 1])
        return tuple(tokens)

    def run(self, mutations: Sequence[Mutation], probes: Sequence[PreparedProbe]) -> Iterator[list[OutcomeRow]]:
        anatomy = self.subject.anatomy
        for m in mutations:
            with applied(anatomy.weight(m.layer, m.matrix), m):
                rows = []
                for p in probes:
                    tokens = self.generate(p)
                    rows.append(
                        OutcomeRow(m.mutation_id, p.id, tokens, decode_text(self.subject, tokens),
                                   divergence_step(tokens, p.wt_tokens))
                    )
            yield rows
