"""Probes made ready to run on one model: prompt token ids, a token chooser, the WT output.

:func:`generate` is the model's output for a probe as it stands (Hugging Face
``generate`` under the probe's deterministic decoding): the wild-type (WT)
output when the model is unmutated, and the reference engine's output under a
mutation. Selecting an MMLU21 set and every engine start from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from transformers import GenerationConfig, LogitsProcessorList

from ..errors import InputError
from ..model.subject import Subject, eos_ids, vocab_size
from .chooser import ChooserLogitsProcessor, TokenChooser
from .probe import Probe, encode_probe


@dataclass(kw_only=True, frozen=True)
class PreparedProbe:
    """A probe ready to run: prompt token ids, its token chooser, and the WT output."""

    probe: Probe
    prompt: tuple[int, ...]
    chooser: TokenChooser
    wt_tokens: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        return self.probe.id


class Generator(Protocol):
    """Anything that gives the unmutated model's output for a prepared probe (an engine)."""

    def generate(self, probe: PreparedProbe) -> tuple[int, ...]: ...


def context_length(subject: Subject) -> int | None:
    """The longest sequence the model was built for (its config's position count), if it says."""
    config = getattr(subject.model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def prepare(subject: Subject, probe: Probe) -> PreparedProbe:
    """``probe`` encoded for ``subject`` with its chooser; no WT output yet.

    A prompt whose tokens plus ``max_new_tokens`` exceed the model's context is refused:
    positions past it are garbage (or an index error), and a screen would record them."""
    prompt = tuple(encode_probe(subject.tokenizer, probe))
    limit = context_length(subject)
    if limit is not None and len(prompt) + probe.max_new_tokens > limit:
        raise InputError(
            f"probe {probe.id!r}: {len(prompt)} prompt tokens + {probe.max_new_tokens} new tokens exceed the "
            f"model's context of {limit} tokens; shorten the probe or lower --max-new-tokens"
        )
    return PreparedProbe(probe=probe, prompt=prompt, chooser=TokenChooser(probe.decoding, vocab_size(subject)))


def prepare_probes(subject: Subject, engine: Generator, probes: Sequence[Probe]) -> list[PreparedProbe]:
    """Encode each probe and compute its wild-type output with ``engine``."""
    prepared = []
    for probe in probes:
        p = prepare(subject, probe)
        prepared.append(replace(p, wt_tokens=engine.generate(p)))
    return prepared


@torch.inference_mode()
def generate(
    subject: Subject, probe: PreparedProbe, max_new_tokens: int | None = None, eos: Sequence[int] | None = None
) -> tuple[int, ...]:
    """The model's current output for ``probe`` (its first ``max_new_tokens`` tokens if given).

    Generation stops at the first end-of-sequence token (``eos``, default the
    tokenizer's), which is kept; padding after it is dropped.
    """
    eos = list(eos_ids(subject) if eos is None else eos)
    model = subject.model
    device = next(model.parameters()).device
    ids = torch.tensor([probe.prompt], dtype=torch.long, device=device)
    pad = subject.tokenizer.pad_token_id
    config = GenerationConfig(
        max_new_tokens=probe.probe.max_new_tokens if max_new_tokens is None else max_new_tokens,
        min_new_tokens=0,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos or None,
        pad_token_id=pad if pad is not None else (eos[0] if eos else 0),
    )
    processors = LogitsProcessorList([ChooserLogitsProcessor(probe.chooser, len(probe.prompt))])
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), generation_config=config, logits_processor=processors
    )
    tokens = out[0, len(probe.prompt) :].tolist()
    for i, t in enumerate(tokens):  # keep the first end-of-sequence, drop any padding after it
        if t in eos:
            return tuple(tokens[: i + 1])
    return tuple(tokens)
