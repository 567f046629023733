"""What an engine hands the store: one outcome row per (mutation, probe), and a probe's record.

Plain values with no database behind them, so engines and backends (and Ray
workers, which pickle them) need nothing else of the store.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OutcomeRow:
    """One (mutation, probe) result as an engine reports it.

    ``tokens``/``text`` are None for an NSM whose output was not computed (a
    calls-only screen); the call (``divergence``) is always known.
    """

    mutation_id: int
    probe_id: str
    tokens: tuple[int, ...] | None
    text: str | None
    divergence: int | None

    @property
    def nsm(self) -> bool:
        return self.divergence is not None

    @property
    def filled(self) -> bool:
        return self.tokens is not None


@dataclass(frozen=True)
class ProbeRecord:
    """What the store keeps of a probe: its definition, prompt and WT output."""

    probe_id: str
    kind: str
    text: str
    chat: bool
    max_new_tokens: int
    decoding: str
    answer: str | None
    group: str | None
    prompt_tokens: tuple[int, ...]
    wt_tokens: tuple[int, ...]
    wt_text: str
    wt_logprob: float | None = None
