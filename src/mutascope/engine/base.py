"""What all engines share: prepared probes, the NSM call, the interface."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Iterator, Protocol, Sequence

import torch

from ..decoding import Decoder
from ..mutation import Mutation
from ..probes import Probe, encode_probe
from ..store import OutcomeRow


@dataclass(frozen=True)
class PreparedProbe:
    """A probe ready to run: prompt token ids, its decoder, and the WT output."""

    probe: Probe
    prompt: tuple[int, ...]
    decoder: Decoder
    wt_tokens: tuple[int, ...] = ()

    @property
    def id(self) -> str:
        return self.probe.id


def divergence_step(output: Sequence[int], wild_type: Sequence[int]) -> int | None:
    """First generated step at which ``output`` differs from the WT output.

    ``None`` means silent (identical). If one output is a prefix of the other
    (one stopped at end-of-sequence earlier), the step after the shorter one.
    """
    for step, (a, b) in enumerate(zip(output, wild_type)):
        if a != b:
            return step
    if len(output) != len(wild_type):
        return min(len(output), len(wild_type))
    return None


class Engine(Protocol):
    """Runs mutants on prepared probes."""

    name: str
    description: str  # the name plus options that change measurements (stored per committed chunk)
    chunk_size: int  # default mutations per committed chunk

    def generate(self, probe: PreparedProbe) -> tuple[int, ...]:
        """The unmutated model's output tokens for ``probe``."""

    def run(self, mutations: Sequence[Mutation], probes: Sequence[PreparedProbe]) -> Iterator[list[OutcomeRow]]:
        """Yield, per mutation in order, its outcome rows for every probe."""


def prepare_probes(subject, engine: Engine, probes: Sequence[Probe]) -> list[PreparedProbe]:
    """Encode each probe and compute its wild-type output with ``engine``."""
    vocab = subject.model.get_output_embeddings().weight.shape[0]
    prepared = []
    for probe in probes:
        p = PreparedProbe(probe, tuple(encode_probe(subject.tokenizer, probe)), Decoder(probe.decoding, vocab))
        prepared.append(replace(p, wt_tokens=engine.generate(p)))
    return prepared


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread inside the block (reductions then never split inside a row)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def wild_type_logprob(subject, probe: PreparedProbe) -> float:
    """log p(WT output | prompt) under the unmutated model: the scale every effect size of the
    probe is a drop from. Teacher-forced, float32 log-softmax at temperature 1 (what
    ``logprob_drop`` measures), on one thread so that it never depends on the thread count."""
    wt = list(probe.wt_tokens)
    if not wt:
        return 0.0
    device = next(subject.model.parameters()).device
    ids = torch.tensor([list(probe.prompt) + wt[:-1]], dtype=torch.long, device=device)
    with torch.inference_mode(), one_thread():
        logits = subject.model(input_ids=ids, logits_to_keep=len(wt)).logits[0].float()
        targets = torch.tensor(wt, device=device)
        return float(torch.log_softmax(logits, dim=-1).gather(1, targets[:, None]).sum())
