"""The reference engine: the paper's loop, kept simple on purpose.

For each mutation: write the tile into the weight, generate every probe with
Hugging Face ``generate`` under the probe's deterministic decoding, and
restore the tile in a ``finally``. Slow, obviously right, and the ground truth
that every faster engine is tested against. It always decodes in full.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from ..model.subject import decode_text, eos_ids
from ..plan.mutation import Mutation, applied
from ..probes.prepared import PreparedProbe, generate
from ..store.rows import OutcomeRow
from .base import RowsDone, divergence_step

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


class ReferenceEngine:
    """Mutate in place, ``generate``, restore."""

    name = description = "reference"
    chunk_size = 8  # mutations per committed chunk: a few seconds of work each
    outputs: ClassVar[tuple[str, ...]] = ("full",)
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, subject: Subject):
        self.subject = subject
        self.eos = eos_ids(subject)

    def generate(self, probe: PreparedProbe, max_new_tokens: int | None = None) -> tuple[int, ...]:
        """The current model's output for ``probe`` (its first ``max_new_tokens`` tokens if given)."""
        return generate(self.subject, probe, max_new_tokens, self.eos)

    def run(
        self,
        mutations: Sequence[Mutation],
        probes: Sequence[PreparedProbe],
        outputs: str = "full",
        rows_done: RowsDone | None = None,
    ) -> Iterator[list[OutcomeRow]]:
        anatomy = self.subject.anatomy
        done = 0
        for m in mutations:
            with applied(anatomy.weight(m.layer, m.matrix), m):
                rows = []
                for p in probes:
                    tokens = self.generate(p)
                    rows.append(
                        OutcomeRow(
                            mutation_id=m.mutation_id,
                            probe_id=p.id,
                            tokens=tokens,
                            text=decode_text(self.subject, tokens),
                            divergence=divergence_step(tokens, p.wt_tokens),
                        )
                    )
                    done += 1
                    if rows_done:
                        rows_done(done)
            yield rows
