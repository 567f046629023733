"""Detection one token at a time, with the reference's arithmetic, for low-precision models.

The teacher-forced detection pass (one forward over ``prompt + WT[:-1]``)
computes the same function as the reference's ``generate`` (a prompt pass,
then one position per step with a key/value cache) but not the same
operations: attention over a longer sequence, and projections over many
positions at once. In float32 that changes the last bits, far below the
near-tie tolerance. In bfloat16 it moves logits by whole bfloat16 steps, so
a bound covering it re-checks most decisions of a screen.

This pass does what ``generate`` does instead, for a batch of mutants fed the
WT tokens: the prompt for every row at once, then one position per step,
with the same masks and cache positions; projections that round differently
for one row than for many (:mod:`.rowwise`) run row by row in the steps.
Where the kernels depend on shapes only, a row's logits are then those of
the reference with the mutant's tile written, bit for bit, which
:func:`matches_reference` checks on the wild type before an engine relies on
it.

Rows start at their mutated layer (:func:`.prefix.rows_starting_at`): below
it a mutant fed the WT tokens computes the wild type, which one pass of the
unmutated model (:func:`capture_incremental`, the same arithmetic) records
once per probe.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import torch
from transformers import DynamicCache, GenerationConfig, LogitsProcessorList

from ..probes.chooser import ChooserLogitsProcessor
from .prefix import WildTypePass, cache_kwargs, layer_keys_values, recording_block_inputs, rows_starting_at
from .rowwise import one_row_at_a_time


@dataclass(kw_only=True)
class Starts:
    """Where each row of an incremental pass starts: ``layers[r]`` (sorted), the decoder's
    ``blocks``, and the wild type's pass (:func:`capture_incremental`) supplying what is below."""

    blocks: torch.nn.ModuleList
    layers: list[int]
    wt: WildTypePass

    def applied(self, positions: slice):
        """The context in which a call at ``positions`` skips each row's blocks below its start."""
        if not any(self.layers):
            return contextlib.nullcontext()
        return rows_starting_at(self.blocks, self.layers, self.wt, positions)


@dataclass(kw_only=True)
class IncrementalPass:
    """What :func:`incremental_pass` leaves: each row's final hidden states at the decision
    positions (rows, steps, d) and the key/value cache over ``prompt + WT[:-1]``."""

    hidden: torch.Tensor
    cache: DynamicCache


def incremental_pass(
    decoder: torch.nn.Module,
    prompt: tuple[int, ...],
    wt: tuple[int, ...],
    rows: int,
    single_row: list[str],
    root: torch.nn.Module,
    starts: Starts | None = None,
) -> IncrementalPass:
    """Feed ``prompt`` then the WT tokens one at a time to ``rows`` copies of the decoder.

    Whatever per-row mutants are active (:func:`.deltas.row_deltas`) apply.
    ``single_row`` names the modules of ``root`` run row by row in the steps.
    With ``starts``, row ``r`` computes only the blocks from ``starts.layers[r]``
    on, and the cache's layer ``l`` holds only the rows computing it.
    """
    device = next(decoder.parameters()).device
    ids = torch.tensor([prompt], dtype=torch.long, device=device).expand(rows, -1)
    cache = DynamicCache()
    with starts.applied(slice(0, len(prompt))) if starts else contextlib.nullcontext():
        out = decoder(
            input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, **cache_kwargs(decoder, cache)
        )
    hidden = [out.last_hidden_state[:, -1:]]
    with one_row_at_a_time(root, single_row):
        for step, token in enumerate(wt[:-1]):
            n = len(prompt) + step
            feed = torch.full((rows, 1), token, dtype=torch.long, device=device)
            mask = torch.ones(rows, n + 1, dtype=torch.long, device=device)
            with starts.applied(slice(n, n + 1)) if starts else contextlib.nullcontext():
                out = decoder(
                    input_ids=feed,
                    attention_mask=mask,
                    use_cache=True,
                    cache_position=torch.tensor([n], device=device),
                    **cache_kwargs(decoder, cache),
                )
            hidden.append(out.last_hidden_state)
    return IncrementalPass(hidden=torch.cat(hidden, dim=1), cache=cache)


def capture_incremental(
    decoder: torch.nn.Module,
    blocks: torch.nn.ModuleList,
    prompt: tuple[int, ...],
    wt: tuple[int, ...],
    single_row: list[str],
    root: torch.nn.Module,
) -> WildTypePass:
    """The unmutated model's incremental pass over ``prompt + WT[:-1]``, one row, with each
    block's input at every position and every layer's keys/values (``last_hidden`` holds
    the final hidden states at the decision positions only)."""
    with recording_block_inputs(blocks) as seen:
        run = incremental_pass(decoder, prompt, wt, 1, single_row, root)
    keys, values = layer_keys_values(run.cache)
    return WildTypePass(
        hidden_in=seen.hidden_in(), keys=keys, values=values, last_hidden=run.hidden, returns_tuple=seen.returns_tuple
    )


@dataclass(kw_only=True)
class ReferenceRun:
    """The reference's own decoding of a probe's wild type: its ``logits`` (steps, V) and, where its
    cache kept every position, the pass itself as a :class:`WildTypePass` (each block's input,
    keys/values, the final hidden states at the decision positions), else None."""

    logits: torch.Tensor
    wt: WildTypePass | None


@torch.inference_mode()
def reference_run(
    model: Any, blocks: torch.nn.ModuleList, prompt: tuple[int, ...], steps: int, chooser, pad: int
) -> ReferenceRun:
    """``generate``, greedy under the probe's chooser, for ``steps`` steps, recording what rows that
    start above the first block need from it (:class:`Starts`)."""
    ids = torch.tensor([prompt], device=next(model.parameters()).device)
    config = GenerationConfig(
        max_new_tokens=steps,
        do_sample=False,
        num_beams=1,
        pad_token_id=pad,
        output_logits=True,
        output_hidden_states=True,
        return_dict_in_generate=True,
    )
    processors = LogitsProcessorList([ChooserLogitsProcessor(chooser, len(prompt))])
    with recording_block_inputs(blocks) as seen:
        out = model.generate(
            ids, attention_mask=torch.ones_like(ids), generation_config=config, logits_processor=processors
        )
    logits = torch.cat([step[:1] for step in out.logits])
    length = len(prompt) + len(out.logits) - 1  # the last token is never fed
    try:
        # recent transformers name the returned cache ``cache`` (and warn about ``past_key_values``)
        keys, values = layer_keys_values(out["cache"] if "cache" in out else out["past_key_values"])
        hidden_in = seen.hidden_in()
    except (RuntimeError, AttributeError, TypeError, KeyError):  # no cache, another kind, or blocks not run every step
        return ReferenceRun(logits=logits, wt=None)
    if any(k.shape[-2] != length for k in keys) or any(h.shape[1] != length for h in hidden_in):
        return ReferenceRun(logits=logits, wt=None)  # e.g. a sliding window dropped positions
    final = torch.cat([step[-1][:, -1:] for step in out.hidden_states], dim=1)
    wt = WildTypePass(
        hidden_in=hidden_in, keys=keys, values=values, last_hidden=final, returns_tuple=seen.returns_tuple
    )
    return ReferenceRun(logits=logits, wt=wt)
