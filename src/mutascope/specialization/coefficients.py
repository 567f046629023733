"""Value-vector coefficients and the concept ranking.

An MLP's output is a sum of value vectors (the columns of the canonical
``down`` matrix, shape ``(hidden, d_ff)``) weighted by coefficients (the
``d_ff`` activations entering ``down``). The coefficients are read with a
forward pre-hook on every layer's ``down`` module, so they are exactly what
the forward pass multiplies with, for every architecture the anatomy knows
(separate, fused gate/up and GPT-2 ``Conv1D`` alike).

Ranking statistic (the project's reading of the paper, whose exact
aggregation is not given): for value vector ``(layer, j)``,

    diff = mean over concept questions of |a_j| - mean over control questions of |a_j|

with ``a_j`` taken at the answer position (the last prompt token, whose
next-token logits give the answer letter). All layers are ranked jointly by
``diff``, largest first: the value vectors most more active on the concept
than on unrelated questions. Absolute values because a gated MLP's
coefficients are signed and a strongly negative one writes its value vector
just as much.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..model.subject import Subject


def answer_coefficients(subject: Subject, prompts: list[torch.Tensor]) -> torch.Tensor:
    """``|a|`` at the last token of every prompt: shape ``(n_prompts, n_layers, d_ff)``, float32 on CPU.

    Prompts run one at a time (no padding, so the last token is the answer
    position for every architecture); hooks are removed even on an error.
    """
    anatomy = subject.anatomy
    n_layers = anatomy.n_layers
    d_ff = anatomy.ref(0, "down").shape[1]
    out = torch.zeros(len(prompts), n_layers, d_ff)
    row = [0]

    def hook_for(layer: int):
        def hook(_module, args):
            out[row[0], layer] = args[0][0, -1].detach().abs().float().cpu()

        return hook

    handles = []
    try:
        for layer in range(n_layers):
            module = subject.model.get_submodule(anatomy.ref(layer, "down").module_path)
            handles.append(module.register_forward_pre_hook(hook_for(layer)))
        with torch.no_grad():
            for i, ids in enumerate(prompts):
                row[0] = i
                subject.model(ids.to(subject.device))
    finally:
        for h in handles:
            h.remove()
    return out


@dataclass(frozen=True)
class Ranking:
    """Value vectors of all layers ranked by ``diff`` (see the module docstring), largest first.

    ``layers``/``indices`` give the vector of each rank; ``concept``/``control``
    are its mean ``|a|`` on the two question sets.
    """

    layers: torch.Tensor
    indices: torch.Tensor
    diff: torch.Tensor
    concept: torch.Tensor
    control: torch.Tensor

    def top(self, k: int) -> list[tuple[int, int]]:
        """The ``k`` highest-ranked value vectors as ``(layer, index)``."""
        return list(zip(self.layers[:k].tolist(), self.indices[:k].tolist()))


def rank_vectors(concept_coefs: torch.Tensor, control_coefs: torch.Tensor) -> Ranking:
    """Rank every ``(layer, index)`` by mean |a| on the concept minus on the controls.

    Inputs are ``(n_questions, n_layers, d_ff)`` from :func:`answer_coefficients`.
    Ties keep layer-major order (stable sort), so rankings are reproducible.
    """
    concept = concept_coefs.mean(0)
    control = control_coefs.mean(0)
    diff = (concept - control).flatten()
    order = torch.sort(diff, descending=True, stable=True).indices
    d_ff = concept.shape[1]
    return Ranking(
        layers=order // d_ff,
        indices=order % d_ff,
        diff=diff[order],
        concept=concept.flatten()[order],
        control=control.flatten()[order],
    )
