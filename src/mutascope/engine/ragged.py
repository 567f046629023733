"""Continuing rows of different lengths together, each attending to its own positions only.

NSMs that diverged at different steps have caches of different lengths. A
batched decoder left-pads them to one length and masks the padding, which in
bfloat16 changes the attention's arithmetic (by whole steps: the softmax and
the value product then run over more positions). The reference decodes one
sequence, unpadded.

While :func:`attention_per_length` is active, the model's attention function
is wrapped: rows are grouped by their padding, and each group's attention is
the model's own function over the group's real positions, with no mask, which
is the reference's call. Everything else (the projections, the MLP, the
head) still runs on the whole batch. This needs transformers' attention
registry (models that dispatch attention through ``ALL_ATTENTION_FUNCTIONS``);
:func:`supported` says whether a model does, and an engine keeps rows of one
length together where it does not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch


def _registry() -> Any | None:
    """transformers' attention registry, where this version has one."""
    try:
        from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    except ImportError:  # older transformers: attention classes per implementation
        return None
    return ALL_ATTENTION_FUNCTIONS


def _implementation(model: torch.nn.Module) -> str | None:
    config = getattr(model, "config", None)
    name = getattr(config, "_attn_implementation", None)
    registry = _registry()
    if registry is None or not isinstance(name, str) or not isinstance(getattr(registry, "_local_mapping", None), dict):
        return None  # no registry, or one whose per-instance overrides this code does not know
    try:
        registry[name]
    except KeyError:  # "eager": the model's own function, not in the registry
        return None
    return name


def supported(model: torch.nn.Module) -> bool:
    """Whether the model's attention can be wrapped (its implementation is in the registry)."""
    return _implementation(model) is not None


@contextlib.contextmanager
def attention_per_length(model: torch.nn.Module, padding: list[int]) -> Iterator[None]:
    """While active, row ``r`` of every attention call sees only its keys/values from
    position ``padding[r]`` on (its left padding), and no mask."""
    name = _implementation(model)
    registry = _registry()
    if name is None or registry is None:
        raise ValueError("this model's attention cannot be computed per row length")
    original = registry[name]
    had_local = name in registry._local_mapping

    def per_length(module, query, key, value, attention_mask, **kwargs):
        pads = padding
        if len(pads) != query.shape[0]:
            raise RuntimeError(f"{query.shape[0]} rows in attention, {len(pads)} paddings known")
        outputs: torch.Tensor | None = None
        for pad in sorted(set(pads)):
            rows = torch.tensor([i for i, p in enumerate(pads) if p == pad], device=query.device)
            out, _ = original(module, query[rows], key[rows][:, :, pad:], value[rows][:, :, pad:], None, **kwargs)
            if outputs is None:
                outputs = out.new_empty((query.shape[0], *out.shape[1:]))
            outputs[rows] = out
        return outputs, None

    registry[name] = per_length
    try:
        yield
    finally:
        if had_local:
            registry[name] = original
        else:
            del registry._local_mapping[name]
