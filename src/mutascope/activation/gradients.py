"""The activation metric of arXiv 2405.17799: A(s, w) = |w * dD/dw|.

D is the logit of the most probable next token at the last position of
input s. One backward pass per input gives A for every element of the seven
matrices of every layer at once. Gradients are requested for exactly the
parameters that hold those matrices (``torch.autograd.grad`` with them as
inputs), so nothing else is differentiated and no ``.grad`` is left behind.
A fused weight (Phi-3 ``qkv_proj``, GPT-2 ``c_attn``) has one gradient; its
canonical parts are sliced from it exactly as :meth:`Anatomy.weight` slices
the weight, so map and weight always line up in ``(out, in)`` terms.

Peak memory for one input: the matrix gradients (P elements in the model's
dtype) plus the maps (P elements in float32, float64 for a float64 model);
SmolLM2-135M has P ~ 106 M, so ~0.85 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import InputError
from ..model.gradients import gradients_on, matrix_params
from ..model.subject import Subject

__all__ = ["InputMaps", "activation_maps", "encode", "gradients_on", "map_dtype", "matrix_params"]

Key = tuple[int, str]


def map_dtype(subject: Subject) -> torch.dtype:
    """float64 for a float64 model (so tests can compare exactly), else float32."""
    return torch.float64 if subject.dtype == torch.float64 else torch.float32


def encode(subject: Subject, text: str, max_tokens: int | None = None) -> torch.Tensor:
    """Token ids (1-D) of ``text`` as the tokenizer builds them, keeping the *last* ``max_tokens``.

    The metric reads the last position, so a long input loses its beginning,
    never the end that the predicted token depends on most.
    """
    ids = subject.tokenizer(text, return_tensors="pt").input_ids[0]
    if len(ids) == 0:
        raise InputError("an activation input is empty after tokenization")
    if max_tokens is not None:
        if max_tokens < 1:
            raise InputError(f"max tokens must be >= 1, got {max_tokens}")
        ids = ids[-max_tokens:]
    return ids


@dataclass
class InputMaps:
    """A of one input for every (layer, matrix), canonical (out, in), plus what D was."""

    maps: dict[Key, torch.Tensor]
    token: int
    logit: float
    n_tokens: int


def activation_maps(subject: Subject, ids: torch.Tensor) -> InputMaps:
    """A = |w * dD/dw| for every matrix element, from one forward and one backward pass."""
    ids = ids.reshape(1, -1).to(subject.device)
    dtype = map_dtype(subject)
    with gradients_on(subject) as params, torch.enable_grad():
        logits = subject.model(input_ids=ids, use_cache=False).logits[0, -1]
        token = int(logits.detach().argmax())
        d = logits[token]
        names = list(params)
        grads = dict(zip(names, torch.autograd.grad(d, [params[n] for n in names])))
    maps: dict[Key, torch.Tensor] = {}
    for ref in subject.anatomy.refs():
        g = grads[ref.param_name]
        w = params[ref.param_name].detach()
        n = ref.shape[0]
        if ref.transposed:
            g, w = g[:, ref.offset : ref.offset + n].T, w[:, ref.offset : ref.offset + n].T
        else:
            g, w = g[ref.offset : ref.offset + n], w[ref.offset : ref.offset + n]
        maps[(ref.layer, ref.matrix)] = (w.to(dtype) * g.to(dtype)).abs_().contiguous()
    del grads
    return InputMaps(maps, token, float(d.detach()), int(ids.shape[1]))
