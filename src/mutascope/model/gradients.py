"""Gradients of the catalogued matrices, turned on for a moment and put back.

Models are loaded frozen (inference needs no gradients). The two gradient
methods, activation patterns and predicted maps, differentiate exactly the
parameters that hold the seven matrices, and nothing else.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from ..errors import InputError
from .subject import Subject

__all__ = ["gradients_on", "matrix_params"]


def matrix_params(subject: Subject) -> dict[str, torch.nn.Parameter]:
    """The parameters holding the catalogued matrices, once each (fused ones are shared)."""
    params = dict(subject.model.named_parameters())
    out: dict[str, torch.nn.Parameter] = {}
    for ref in subject.anatomy.refs():
        if ref.param_name not in params:
            raise InputError(f"{ref.param_name} is not a parameter of this model; cannot differentiate it")
        out.setdefault(ref.param_name, params[ref.param_name])
    return out


@contextlib.contextmanager
def gradients_on(subject: Subject) -> Iterator[dict[str, torch.nn.Parameter]]:
    """Turn ``requires_grad`` on for the matrix parameters only; restore flags and ``.grad`` on exit.

    Models are loaded with every parameter frozen; the flags (and any
    ``.grad`` a caller had) are put back in ``finally``, even on an error.
    """
    params = matrix_params(subject)
    saved = {name: (p.requires_grad, p.grad) for name, p in params.items()}
    try:
        for p in params.values():
            p.requires_grad_(True)
        yield params
    finally:
        for name, p in params.items():
            flag, grad = saved[name]
            p.requires_grad_(flag)
            p.grad = grad
