"""Predicted effects and cheap scores of every mutant of a plan, from one backward pass per probe.

For each probe (docs/methods.md, "Predicted maps"):

* ``predicted``: the first-order estimate of the mutant's ``logprob_drop``,
  -sum over the tile of g * (V - W) with g the gradient of log p(WT output)
  (teacher-forced, summed over the WT tokens, temperature 1: what
  ``logprob_drop`` measures). It is exact for an infinitesimal change and
  says nothing of the curvature: a max/min tile writes values far outside
  the matrix's typical range, so the estimate is a ranking aid, not a
  substitute for the screen. ``noise:X`` kinds get no estimate (their
  first-order term is a random projection of g).
* ``local``: the same effect, exact through the mutated block's first
  nonlinearity (the attention softmax for ``q``/``k``, the activation for
  ``gate`` and a gateless MLP's input projection) and first order after it
  (:mod:`.local`); equal to ``predicted`` for ``v``, ``o``, ``up`` and
  ``down``, which are linear up to their block's output.
* ``magnitude``: sum of |W| over the tile (the weights the mutation removes);
* ``change``: sum of |V - W| over the tile (how far the mutation moves them);
* ``wanda``: the Wanda score pooled per tile, sum of |W_ij| ||X_j||_2, with
  X the matrix's inputs on the probe's teacher-forced sequence;
* ``activation``: the activation-pattern score of arXiv 2405.17799 pooled per
  tile, sum of |W * dD/dW| with D the largest logit at the prompt's last
  position;
* ``superweight``: whether the tile lies on an axis a super-weights file
  marks (null without one).

All but ``magnitude`` and ``change`` depend on the probe; every score is a
deterministic function of the model, the probe and the plan (one thread).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import torch

from ..engine.base import one_thread
from ..plan.kinds import noise_tile
from ..plan.mutation import Mutation
from ..probes.prepared import PreparedProbe
from .local import local_effects, recording
from .tilesums import GradientSums, gradient_sums, tile_sums

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


SCORES = ("predicted", "local", "magnitude", "change", "wanda", "activation", "superweight")
COLUMNS = ["mutation_id", "probe_id", *SCORES]
Progress = Callable[[str], None]


def _sequence(subject: Subject, probe: PreparedProbe) -> torch.Tensor:
    device = next(subject.model.parameters()).device
    return torch.tensor([list(probe.prompt) + list(probe.wt_tokens[:-1])], dtype=torch.long, device=device)


def _at_least_float32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def wt_loglik(subject: Subject, probe: PreparedProbe) -> Callable[[], torch.Tensor]:
    """The objective log p(WT output | prompt), teacher-forced at temperature 1."""

    def objective():
        wt = list(probe.wt_tokens)
        logits = subject.model(input_ids=_sequence(subject, probe), logits_to_keep=len(wt), use_cache=False).logits[0]
        targets = torch.tensor(wt, device=logits.device)
        return torch.log_softmax(_at_least_float32(logits), dim=-1).gather(1, targets[:, None]).sum()

    return objective


def top_logit(subject: Subject, probe: PreparedProbe) -> Callable[[], torch.Tensor]:
    """The objective D of arXiv 2405.17799: the largest logit at the prompt's last position."""

    def objective():
        ids = _sequence(subject, probe)[:, : len(probe.prompt)]
        logits = subject.model(input_ids=ids, logits_to_keep=1, use_cache=False).logits[0, -1]
        return _at_least_float32(logits).max()

    return objective


def input_norms(subject: Subject, probe: PreparedProbe, keys: set) -> dict:
    """||X_j||_2 of each matrix's input features over the probe's teacher-forced sequence."""
    anatomy = subject.anatomy
    squares: dict[str, torch.Tensor] = {}
    paths = {anatomy.ref(*key).module_path for key in keys}
    handles = []

    def hook(path):
        def record(module, args):
            x = args[0].detach().to(torch.float64)
            squares[path] = squares.get(path, 0) + x.reshape(-1, x.shape[-1]).pow(2).sum(dim=0)

        return record

    try:
        for path in paths:
            handles.append(subject.model.get_submodule(path).register_forward_pre_hook(hook(path)))
        with torch.inference_mode(), one_thread():
            subject.model(input_ids=_sequence(subject, probe), logits_to_keep=1, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return {key: squares[anatomy.ref(*key).module_path].sqrt() for key in keys}


@dataclass
class ProbeSums:
    """What one probe contributes: the log-likelihood's and D's gradient sums, input norms, and the
    local estimate of the mutants of matrices with an exact step (by mutation id)."""

    loglik: GradientSums
    top: GradientSums
    norms: dict
    local: dict


def probe_sums(subject: Subject, probe: PreparedProbe, by_key: dict, tile: tuple[int, int]) -> ProbeSums:
    """One forward and backward pass for each objective (the log-likelihood's also records what the
    local estimate needs), and one forward for the input norms."""
    keys = set(by_key)
    with recording(subject, keys) as record:
        loglik = gradient_sums(subject, wt_loglik(subject, probe), tile, keys)
    with one_thread():
        local = local_effects(subject, record, by_key)
    del record
    return ProbeSums(
        loglik, gradient_sums(subject, top_logit(subject, probe), tile, keys), input_norms(subject, probe, keys), local
    )


def first_order(m: Mutation, g: float, gw: float) -> float:
    """-sum g (V - W) over the tile: c * sum g - sum g W for a constant c, (x - 1) sum g W for scale:x."""
    name = m.kind.name
    if name == "noise":
        return math.nan
    if name == "scale":
        return -(m.value - 1.0) * gw
    return -(m.value * g - gw)


def _change(m: Mutation, tile_w: torch.Tensor) -> float:
    """sum |V - W| over the tile (for noise:X, the noise tile itself)."""
    if m.kind.name == "scale":
        return float((tile_w * (m.value - 1.0)).abs().sum())
    if m.kind.name == "noise":
        return float(noise_tile(tuple(tile_w.shape), m.value, m.site, m.kind).abs().sum())
    return float((m.value - tile_w).abs().sum())


def superweight_mark(m: Mutation, marked: AbstractSet[tuple[int, str, str, int]]) -> float:
    """1.0 where the mutant's tile lies on a row or column a super-weights file marks, else 0.0."""
    return float((m.layer, m.matrix, "row", m.row) in marked or (m.layer, m.matrix, "col", m.col) in marked)


def predictions(
    subject: Subject,
    mutations: Sequence[Mutation],
    probes: Sequence[PreparedProbe],
    tile: tuple[int, int],
    marked: AbstractSet[tuple[int, str, str, int]] | None = None,
    progress: Progress | None = None,
) -> pd.DataFrame:
    """Every score of :data:`SCORES` for every (mutation, probe), in plan order.

    ``marked``: the (layer, matrix, axis, index) axes a super-weights file marks. Matrices
    are read in float64 one at a time, so memory stays an inference pass's plus one matrix.
    """
    by_key: dict[tuple[int, str], list[Mutation]] = {}
    for m in mutations:
        by_key.setdefault((m.layer, m.matrix), []).append(m)

    def weight(key) -> torch.Tensor:
        return subject.anatomy.weight(*key).detach().to(torch.float64)

    fixed: dict[int, tuple] = {}
    for key, ms in by_key.items():
        w = weight(key)
        magnitude = tile_sums(w.abs(), tile)
        for m in ms:
            mark = None if marked is None else superweight_mark(m, marked)
            fixed[m.mutation_id] = (magnitude[m.row, m.col], _change(m, w[m.r0 : m.r1, m.c0 : m.c1]), mark)
    scores: dict[tuple[int, str], tuple] = {}
    for probe in probes:
        if progress:
            progress(probe.id)
        sums = probe_sums(subject, probe, by_key, tile)
        for key, ms in by_key.items():
            wanda = tile_sums(weight(key).abs() * sums.norms[key][None, :], tile)
            for m in ms:
                at = (m.row, m.col)
                predicted = first_order(m, sums.loglik.g[key][at], sums.loglik.gw[key][at])
                local = sums.local.get(m.mutation_id, predicted)
                scores[(m.mutation_id, probe.id)] = (predicted, local, wanda[at], sums.top.agw[key][at])
    rows = [
        (m.mutation_id, p.id, predicted, local, *fixed[m.mutation_id][:2], wanda, activation, fixed[m.mutation_id][2])
        for p in probes
        for m in mutations
        for predicted, local, wanda, activation in [scores[(m.mutation_id, p.id)]]
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


__all__ = ["COLUMNS", "SCORES", "first_order", "predictions", "probe_sums", "superweight_mark"]
