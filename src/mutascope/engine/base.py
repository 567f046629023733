"""What all engines share: the interface, what an engine can compute, the NSM call.

An engine turns (mutations x prepared probes) into outcome rows. It says what
it supports instead of callers knowing engines by name: :attr:`Engine.outputs`
lists the output modes it can run (:data:`OUTPUTS`: every NSM's output, or the
calls and effect sizes only), and :attr:`Engine.options` the keyword options
it takes (the batched engine's ``batch_size`` and ``fast_head``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar, Protocol

import torch

from ..errors import InputError
from ..plan.mutation import Mutation
from ..probes.prepared import PreparedProbe
from ..store.rows import OutcomeRow

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


# What a run computes: every output ("full"), or the NSM calls and effect sizes only ("calls").
OUTPUTS = ("full", "calls")

# ``rows_done(n)``: an engine's report, while a run is under way, that ``n`` of its
# (mutation, probe) rows are finished (a count that only grows). A chunk of a screen
# is one call of ``run`` and takes minutes, so this is what moves a screen's progress
# between chunks; it changes nothing the engine computes.
RowsDone = Callable[[int], None]


def check_outputs(outputs: str) -> str:
    """``outputs`` if it names a mode of :data:`OUTPUTS`, else a one-line error."""
    if outputs not in OUTPUTS:
        raise InputError(f"unknown --outputs {outputs!r}: choose full or calls")
    return outputs


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
    chunk_size: int  # default mutations per committed chunk
    outputs: ClassVar[tuple[str, ...]]  # the modes of OUTPUTS it can run ("full" always)
    options: ClassVar[tuple[str, ...]]  # keyword options its constructor takes besides the subject

    @property
    def description(self) -> str:
        """The name plus options that change measurements (stored per committed chunk)."""

    def generate(self, probe: PreparedProbe) -> tuple[int, ...]:
        """The unmutated model's output tokens for ``probe``."""

    def run(
        self,
        mutations: Sequence[Mutation],
        probes: Sequence[PreparedProbe],
        outputs: str = "full",
        rows_done: RowsDone | None = None,
    ) -> Iterator[list[OutcomeRow]]:
        """Yield, per mutation in order, its outcome rows for every probe.

        ``outputs="calls"`` (where :attr:`outputs` has it) may leave an NSM's
        output unknown (``tokens=None``); its call and measurements never are.
        ``rows_done`` (:data:`RowsDone`) hears of finished rows as the work goes,
        at least after every batch of work (a mutant's probe run, a detection batch).
        """


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread inside the block (reductions then never split inside a row)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def wild_type_logprob(subject: Subject, probe: PreparedProbe) -> float:
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
