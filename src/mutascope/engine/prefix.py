"""Reusing the unmutated computation below a mutated layer.

A mutant in decoder layer ``L`` computes exactly the wild type's hidden states
and keys/values in layers ``< L`` on the wild type's tokens. One wild-type
pass per probe captures, for every layer, the hidden state entering it and its
keys/values; a batch of mutants in layers ``>= L`` then skips layers ``< L``.

The mechanism is architecture-generic: it never re-implements a model's
forward. The model's own forward runs (embeddings, position embeddings, Gemma's
embedding scaling, masks...); blocks ``< L`` are temporarily replaced by a
pass-through, the last of which returns the captured hidden state entering
``L``. Whatever a model does before its first block is thus computed but
discarded, and what layer ``L`` sees is bit-identical to the wild type's.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import Cache

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


def decoder_blocks(subject: Subject) -> torch.nn.ModuleList:
    """The model's list of decoder blocks, as the anatomy found it."""
    return subject.model.get_submodule(subject.anatomy.blocks_path)


@functools.cache
def _cache_keyword(forward: Callable[..., Any]) -> str:  # a decoder class's forward (hashable, for the cache)
    names = inspect.signature(forward).parameters
    return "cache" if "cache" in names else "past_key_values"


def layer_keys_values(cache: DynamicCache, start: int = 0) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The keys and values of each layer from ``start`` on, of a cache a pass filled (layers below
    ``start`` were skipped: :func:`skipping_below`). Every layer of the models the anatomy
    supports is full attention, so a layer without both is an error, not a skip."""
    keys, values = [], []
    for i, layer in enumerate(cache.layers[start:], start):
        k, v = getattr(layer, "keys", None), getattr(layer, "values", None)
        if not isinstance(k, torch.Tensor) or not isinstance(v, torch.Tensor):
            raise RuntimeError(f"cache layer {i} holds no keys and values ({type(layer).__name__})")
        keys.append(k)
        values.append(v)
    return keys, values


def cache_kwargs(decoder: torch.nn.Module, cache) -> dict:
    """The keyword a decoder's forward takes its key/value cache by.

    Recent transformers name it ``cache`` and warn about ``past_key_values``;
    older ones (down to the pinned floor) only know ``past_key_values``.
    """
    return {_cache_keyword(type(decoder).forward): cache}


def _hidden_arg(args: tuple, kwargs: dict) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


@dataclass(kw_only=True)
class WildTypePass:
    """What one teacher-forced wild-type pass over ``prompt + WT[:-1]`` leaves behind.

    ``hidden_in[l]`` is the (1, T, d) hidden state entering block ``l``;
    ``keys[l]``/``values[l]`` its (1, heads, T, head_dim) cache entries;
    ``last_hidden`` the (1, T, d) final hidden state (before the LM head);
    ``returns_tuple`` whether blocks return tuples (so pass-throughs mimic them).
    """

    hidden_in: list[torch.Tensor]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    last_hidden: torch.Tensor
    returns_tuple: bool


@dataclass(kw_only=True)
class BlockInputs:
    """What :func:`recording_block_inputs` saw: per block, the hidden state of each call, in order."""

    calls: list[list[torch.Tensor]]
    returns_tuple: bool = False

    def hidden_in(self) -> list[torch.Tensor]:
        """Per block, its inputs over every call, joined along positions: (1, T, d)."""
        if any(not c for c in self.calls) or len({len(c) for c in self.calls}) != 1:
            raise RuntimeError("the wild-type pass did not run every decoder block on every call")
        return [torch.cat(c, dim=1) for c in self.calls]


@contextlib.contextmanager
def recording_block_inputs(blocks: torch.nn.ModuleList) -> Iterator[BlockInputs]:
    """While active, every call of a block records the hidden state entering it (a copy)."""
    seen = BlockInputs(calls=[[] for _ in blocks])

    def pre(index):
        def hook(module, args, kwargs):
            seen.calls[index].append(_hidden_arg(args, kwargs).detach().clone())

        return hook

    def post(module, args, output):
        seen.returns_tuple = isinstance(output, tuple)

    handles = [b.register_forward_pre_hook(pre(i), with_kwargs=True) for i, b in enumerate(blocks)]
    handles.append(blocks[0].register_forward_hook(post))
    try:
        yield seen
    finally:
        for h in handles:
            h.remove()


def capture_wild_type(decoder: torch.nn.Module, blocks: torch.nn.ModuleList, ids: torch.Tensor) -> WildTypePass:
    """Run the unmutated decoder once on ``ids`` (1, T) and keep each layer's input and cache."""
    cache = DynamicCache()
    with recording_block_inputs(blocks) as seen:
        out = decoder(input_ids=ids, use_cache=True, **cache_kwargs(decoder, cache))
    keys, values = layer_keys_values(cache)
    inputs = seen.hidden_in()
    if len(inputs) != len(blocks) or len(keys) != len(blocks):
        raise RuntimeError("the wild-type pass did not run every decoder block once")
    return WildTypePass(
        hidden_in=inputs, keys=keys, values=values, last_hidden=out.last_hidden_state, returns_tuple=seen.returns_tuple
    )


def _rows(value: Any, batch: int, n: int) -> Any:
    """``value`` cut to its first ``n`` rows where it is a per-row tensor of a batch of ``batch``
    (at least two dimensions, the first ``batch`` long), in tuples, lists and dicts too."""
    if isinstance(value, torch.Tensor):
        return value[:n] if value.dim() >= 2 and value.shape[0] == batch else value
    if isinstance(value, (tuple, list)):
        return type(value)(_rows(v, batch, n) for v in value)
    if isinstance(value, dict):
        return {k: _rows(v, batch, n) for k, v in value.items()}
    return value


@contextlib.contextmanager
def rows_starting_at(
    blocks: torch.nn.ModuleList, starts: list[int], wt: WildTypePass, positions: slice
) -> Iterator[None]:
    """While active, batch row ``r`` computes blocks ``>= starts[r]`` only; below, it is the wild type.

    ``starts`` must be sorted, so block ``l`` computes the rows whose start is
    at most ``l``, a prefix of the batch (its key/value cache holds those rows
    only), and the other rows leave it with the wild type's hidden state
    entering block ``l + 1`` at ``positions`` (of ``wt``, a pass with the
    same arithmetic as these rows'). A block no row computes is not run, but
    its cache layer still grows by ``positions``, with the wild type's own
    keys and values (one row, which no row of the batch reads), so every
    layer keeps the sequence length that masks are built from. Per-row
    arguments (hidden states, masks) are cut to the computed rows; broadcast
    ones (one row of position embeddings) are not.
    """
    batch = len(starts)
    if list(starts) != sorted(starts):
        raise ValueError("rows starting at different blocks must be sorted by their start")

    def partial(forward, index, n, after):
        def run(*args, **kwargs):
            if n == 0:
                for cache in (v for v in (*args, *kwargs.values()) if isinstance(v, Cache)):
                    cache.update(wt.keys[index][:, :, positions], wt.values[index][:, :, positions], index)
                out = after[:, positions].expand(batch, -1, -1)
                return (out,) if wt.returns_tuple else out
            out = forward(*(_rows(a, batch, n) for a in args), **{k: _rows(v, batch, n) for k, v in kwargs.items()})
            hidden = out[0] if isinstance(out, tuple) else out
            rest = after[:, positions].expand(batch - n, -1, -1).to(hidden.dtype)
            joined = torch.cat([hidden, rest])
            return (joined, *out[1:]) if isinstance(out, tuple) else joined

        return run

    patched = []
    try:
        for index, block in enumerate(blocks):
            n = sum(s <= index for s in starts)
            if n < batch:  # never the last block: every row starts at or below it
                block.forward = partial(block.forward, index, n, wt.hidden_in[index + 1])
                patched.append(block)
        yield
    finally:
        for block in patched:
            del block.forward


@contextlib.contextmanager
def skipping_below(
    blocks: torch.nn.ModuleList, layer: int, hidden: torch.Tensor | None, returns_tuple: bool
) -> Iterator[None]:
    """While active, blocks ``< layer`` do nothing and block ``layer`` receives ``hidden``
    (None, and nothing patched, when ``layer`` is 0).

    Blocks are patched per instance (``forward`` attribute), so their other
    attributes (e.g. ``attention_type``, read by some models' loops) stay.
    Skipped blocks write no cache entries; callers fill those from the
    wild-type pass when they need them.
    """
    if layer == 0 or hidden is None:
        if layer:
            raise ValueError(f"skipping the blocks below {layer} needs their output")
        yield
        return

    def passthrough(result=None):
        def forward(*args, **kwargs):
            out = _hidden_arg(args, kwargs) if result is None else result
            return (out,) if returns_tuple else out

        return forward

    patched = []
    try:
        for i in range(layer):
            blocks[i].forward = passthrough(hidden if i == layer - 1 else None)
            patched.append(blocks[i])
        yield
    finally:
        for block in patched:
            del block.forward
