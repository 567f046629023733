"""What the layers hand the store: outcome rows, a probe's record and a run's record.

Plain values with no database behind them, so engines and backends (and Ray
workers, which pickle them) need nothing else of the store.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class MeasuredOutcomeRow(OutcomeRow):
    """An outcome plus what an engine's teacher-forced pass measures on the way (the batched
    engine's rows). These fields are the ``outcomes`` table's effect columns
    (:data:`EFFECT_FIELDS`; the store's types for them: ``store.schema.EFFECT_COLUMNS``),
    so a field added or renamed here is a column added or renamed there, and a test
    compares them with the table's declaration.

    ``margin``: top-1 minus top-2 decoder score at the divergence step (NSMs
    only). ``min_margin``: the smallest such margin over the decisions that
    made the call (every step of a silent mutant; up to the divergence step
    of an NSM): a near-tie indicator. ``logprob_drop``: summed over the WT
    output tokens, log p_WT - log p_mutant when the WT tokens are fed to both
    (teacher-forced); ``logprob_drop_per_token`` is its mean. ``rechecked``:
    a decision of the call was within ``tie_tolerance`` of a tie, so the
    reference engine re-decided it (``divergence``, and ``tokens``/``text``
    where they were regenerated, are then the reference's; the other fields
    stay this engine's measurements). All of these come from the detection
    pass, so a calls-only run records them exactly as a full run does.
    """

    margin: float | None = None
    min_margin: float | None = None
    logprob_drop: float = 0.0
    logprob_drop_per_token: float = 0.0
    rechecked: bool = False


_BASE_FIELDS = {f.name for f in fields(OutcomeRow)}
# The measurements beside the call, in declaration order: the outcomes table's effect columns.
EFFECT_FIELDS = tuple((f.name, str(f.type)) for f in fields(MeasuredOutcomeRow) if f.name not in _BASE_FIELDS)


@dataclass(frozen=True, kw_only=True)
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


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """What the ``runs`` table keeps of a screen besides its identity: the model, its
    precision and device, the probes' decodings, the tile, the shard and the versions of the
    software that ran it."""

    model_id: str
    model_hash: str
    dtype: str
    device: str
    decoding: str
    tile: tuple[int, int]
    shard: str
    versions: dict[str, str]
