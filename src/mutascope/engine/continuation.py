"""Decoding NSMs from their divergence step on, many mutants per step.

A mutant that diverges from the wild type (WT) at step ``d`` produced the WT
tokens before ``d``, so the keys/values its detection pass computed for the
first ``prompt + d`` positions are exactly those it would have computed while
generating. Rows that diverged at different steps (and come from different
detection batches) are left-padded to a common length and masked, as in
batched generation, and decoded together, each with its own tile delta.

Padding changes the attention's arithmetic, by whole steps in bfloat16. Where
an engine needs the reference's arithmetic bit for bit (:mod:`.incremental`),
it names the projections to run row by row (``single_row``) and either
computes each row's attention over its own positions (``ragged``,
:mod:`.ragged`) or continues only rows of one length together.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from ..probes.chooser import TokenChooser
from .deltas import TileDelta, row_deltas
from .prefix import WildTypePass, cache_kwargs
from .ragged import attention_per_length
from .rowwise import one_row_at_a_time
from .scoring import LogitHead, decide


@dataclass(kw_only=True)
class RowState:
    """One mutant on one probe: its output so far and what its decisions looked like.

    The *call* (NSM or not, divergence step) is made by the decisions up to
    and including the divergence step, all taken in the detection pass;
    ``margin``, ``min_margin`` and ``call_tie`` describe those decisions only,
    so a calls-only screen records them exactly as a full one does. Decisions
    of the continuation only shape the output text; their near ties are in
    ``output_tie``.
    """

    divergence: int | None
    tokens: list[int]
    margin: float | None  # top-1/top-2 score margin at the divergence step
    min_margin: float  # smallest margin over the decisions that made the call
    call_tie: int | None  # the last call decision within the tie tolerance (None: none was)
    logprob_drop: float
    finished: bool = True
    output_tie: int | None = None  # the last continuation decision within the tie tolerance


@dataclass(kw_only=True)
class Seed:
    """An NSM waiting to be continued: its state, its delta, and its keys/values.

    ``keys[l]``/``values[l]`` (1, heads, >= prompt + d, head_dim) are the
    row's own for layers ``>= layer``; below ``layer`` the WT's are used.
    """

    state: RowState
    delta: TileDelta | None  # None: the WT row itself
    layer: int
    keys: list[torch.Tensor | None]
    values: list[torch.Tensor | None]


class _BufferLayer(DynamicLayer):
    """A cache layer writing new positions into a preallocated buffer.

    ``DynamicLayer`` concatenates on every step, copying the whole cache; for a
    batch of dozens of rows that copy costs as much as the step itself.
    """

    def __init__(self, buffer: torch.Tensor, vbuffer: torch.Tensor, length: int):
        super().__init__()
        self.kbuf, self.vbuf, self.length = buffer, vbuffer, length
        self.dtype, self.device = buffer.dtype, buffer.device
        self.is_initialized = True
        self._views()

    def _views(self) -> None:
        self.keys = self.kbuf[:, :, : self.length]
        self.values = self.vbuf[:, :, : self.length]

    def update(self, key_states, value_states, *args, **kwargs):
        n = key_states.shape[-2]
        self.kbuf[:, :, self.length : self.length + n] = key_states
        self.vbuf[:, :, self.length : self.length + n] = value_states
        self.length += n
        self._views()
        return self.keys, self.values

    def select_rows(self, index: torch.Tensor) -> None:
        self.kbuf, self.vbuf = self.kbuf[index], self.vbuf[index]
        self._views()


def _divergence(seed: Seed) -> int:
    """A seed's divergence step (every seed is an NSM, or the WT row seeded at step 1)."""
    if seed.state.divergence is None:
        raise ValueError("a silent mutant has nothing to continue")
    return seed.state.divergence


def _cache_for(
    seeds: list[Seed], wt: WildTypePass, lengths: list[int], room: int
) -> tuple[DynamicCache, list[_BufferLayer], torch.Tensor]:
    """A cache holding each seed's first ``lengths[i]`` positions, right-aligned, with ``room`` free slots.

    Returns the cache, its layers (typed as ours, for compaction) and the (rows, width) 0/1
    attention mask of its filled part.
    """
    width = max(lengths)
    rows = len(seeds)
    device = wt.keys[0].device
    layers = []
    for index, (wk, wv) in enumerate(zip(wt.keys, wt.values)):
        kbuf = wk.new_zeros(rows, wk.shape[1], width + room, wk.shape[3])
        vbuf = wv.new_zeros(rows, wv.shape[1], width + room, wv.shape[3])
        for i, (seed, n) in enumerate(zip(seeds, lengths)):
            own_k, own_v = seed.keys[index], seed.values[index]
            k, v = (own_k, own_v) if index >= seed.layer and own_k is not None and own_v is not None else (wk, wv)
            kbuf[i, :, width - n : width] = k[0, :, :n]
            vbuf[i, :, width - n : width] = v[0, :, :n]
        layers.append(_BufferLayer(kbuf, vbuf, width))
    cache = DynamicCache()
    cache.layers = []
    cache.layers.extend(layers)
    mask = torch.zeros(rows, width, dtype=torch.long, device=device)
    for i, n in enumerate(lengths):
        mask[i, width - n :] = 1
    return cache, layers, mask


def decide_rows(
    hidden: torch.Tensor,
    head: LogitHead,
    chooser: TokenChooser,
    states: list[RowState],
    eos: set[int],
    max_new: int,
    tolerance: float,
) -> None:
    """Append each row's next token from its final hidden state; rows may be at different steps."""
    steps = torch.tensor([len(s.tokens) for s in states], device=hidden.device)
    decided = decide(hidden, head, chooser, steps, tolerance=tolerance)
    for s, token, rel in zip(states, decided.tokens.tolist(), decided.relative.tolist()):
        if rel < tolerance:
            s.output_tie = len(s.tokens)
        s.tokens.append(token)
        s.finished = token in eos or len(s.tokens) >= max_new


def continue_seeds(
    model: torch.nn.Module,
    decoder_model: torch.nn.Module,
    head: LogitHead,
    chooser: TokenChooser,
    wt: WildTypePass,
    prompt_len: int,
    max_new: int,
    eos: set[int],
    seeds: list[Seed],
    tolerance: float = 0.0,
    single_row: list[str] | None = None,
    observe=None,
    ragged: bool = False,
) -> None:
    """Decode every seed to end-of-sequence or ``max_new`` tokens, updating its state.

    With ``single_row`` (the reference's arithmetic) those projections run row
    by row, and seeds that diverged at different steps need ``ragged``
    (each row's attention over its own positions, :mod:`.ragged`).
    ``observe``, if given, sees each step's final hidden states of the rows
    still decoding and their states (the engine's check against the reference uses it).
    """
    device = wt.keys[0].device
    steps = [_divergence(s) for s in seeds]
    lengths = [prompt_len + d for d in steps]
    if single_row is not None and len(set(lengths)) > 1 and not ragged:
        raise ValueError("rows continued with the reference's arithmetic must share their length, or be ragged")
    room = max_new - min(steps)
    cache, layers, mask = _cache_for(seeds, wt, lengths, room)
    padding = [max(lengths) - n for n in lengths]  # each row's left padding, in cache order
    rows = list(seeds)  # in cache order; finished rows stay until compaction
    while True:
        live = [i for i, s in enumerate(rows) if not s.state.finished]
        if not live:
            return
        if len(rows) - len(live) >= max(1, len(rows) // 4):  # drop finished rows once a quarter are
            index = torch.tensor(live, device=device)
            for layer in layers:
                layer.select_rows(index)
            mask = mask[index]
            padding = [padding[i] for i in live]
            rows = [rows[i] for i in live]
            live = list(range(len(rows)))
        feed = torch.tensor([[s.state.tokens[-1]] for s in rows], device=device)
        pos = torch.tensor([[prompt_len + len(s.state.tokens) - 1] for s in rows], device=device)
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        own_attention = attention_per_length(model, padding) if ragged else contextlib.nullcontext()
        with row_deltas(model, [s.delta for s in rows]), one_row_at_a_time(model, single_row or []), own_attention:
            out = decoder_model(
                input_ids=feed,
                attention_mask=mask,
                position_ids=pos,
                use_cache=True,
                **cache_kwargs(decoder_model, cache),
            )
        hidden = out.last_hidden_state[:, -1]
        del out
        if len(live) < len(rows):
            hidden = hidden[torch.tensor(live, device=device)]
        if observe is not None:
            observe(hidden, [rows[i].state for i in live])
        decide_rows(hidden, head, chooser, [rows[i].state for i in live], eos, max_new, tolerance)
