"""The training arms of the fine-tuning experiment: which value vectors, in what order, and the tuning itself.

The specialization paper's causal half (docs/methods.md, "4. Parameter
specialization") fine-tunes *only* a concept's most specific value vectors
and compares the result with tuning as many other vectors. Three arms of
``k`` columns of ``down`` each, chosen by :func:`arm_vectors`:

* ``specific``: the concept's top ``k`` of :func:`.coefficients.rank_vectors`
  read on its *training* questions against its controls (the held-out
  questions never enter the ranking);
* ``random``: ``k`` vectors drawn uniformly over all layers, seeded by
  ``(seed, k, concept)``;
* ``general``: the ``k`` vectors with the largest mean ``|a|`` over the
  training questions and the controls pooled: the most active ones whatever
  the concept.

:func:`tuned` is the one place weights are written. Inside the block the
chosen columns hold their fine-tuned values; every other weight is never
written at all (gradients flow to whole ``down`` matrices, but only the
chosen columns are copied back), and on leaving the block, also on an
error or Ctrl-C, the chosen columns get their saved values back, checked
bit for bit. The optimizer is Adam (no weight decay) over a float32 copy of
the chosen columns: its per-entry step is set by the learning rate rather
than by the gradient's scale, so every arm moves its ``k`` vectors by a
comparable amount and the arms differ only in *which* vectors move. Every
arm of a concept and repeat gets the same :func:`schedule` (the order of its
training questions, one question per step), learning rate and step count.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import InputError
from ..evaluate import ChoiceSet
from ..model.anatomy import weight_of
from ..model.subject import Subject
from ..probes.mmlu import Question
from .coefficients import Ranking
from .masking import Vector, vectors_by_layer

ARMS = ("specific", "random", "general")


def _stream(seed: int, name: str, *more: int) -> np.random.Generator:
    """A generator fixed by the seed, the concept's name (not its place in the file) and ``more``."""
    return np.random.default_rng([int(seed), zlib.crc32(name.encode()), *map(int, more)])


def split(questions: Sequence[Question], seed: int, name: str, heldout: float) -> tuple[tuple, tuple]:
    """``(train, held_out)``: a seeded share ``heldout`` of the questions held out (at least one each)."""
    n = len(questions)
    if n < 2:
        raise InputError(
            f"concept {name!r} has {n} question; the fine-tuning experiment needs at least 2 "
            "(some to train on, some held out)"
        )
    n_out = min(n - 1, max(1, round(n * heldout)))
    order = _stream(seed, name).permutation(n)
    out = set(order[:n_out].tolist())
    return (
        tuple(q for i, q in enumerate(questions) if i not in out),
        tuple(q for i, q in enumerate(questions) if i in out),
    )


def general_ranking(coefs: torch.Tensor) -> torch.Tensor:
    """Flat indices (``layer * d_ff + j``) of every value vector by mean ``|a|`` over ``coefs``
    (``(n_questions, n_layers, d_ff)``), largest first; ties keep layer-major order."""
    return torch.sort(coefs.mean(0).flatten(), descending=True, stable=True).indices


def arm_vectors(
    specific: Ranking, general: torch.Tensor, d_ff: int, k: int, seed: int, name: str
) -> dict[str, list[Vector]]:
    """The ``k`` value vectors of each arm (see the module docstring)."""
    total = len(specific.diff)
    flat = _stream(seed, name, k, 1).choice(total, size=k, replace=False)
    return {
        "specific": specific.top(k),
        "random": sorted((int(i) // d_ff, int(i) % d_ff) for i in flat),
        "general": [(int(i) // d_ff, int(i) % d_ff) for i in general[:k].tolist()],
    }


def schedule(n_train: int, steps: int, seed: int, name: str) -> tuple[int, ...]:
    """The training question of every step: seeded passes over the ``n_train`` questions,
    each pass a fresh permutation, cut at ``steps``. Shared by all arms."""
    rng = _stream(seed, name, 2)
    order: list[int] = []
    while len(order) < steps:
        order += rng.permutation(n_train).tolist()
    return tuple(order[:steps])


def example_loss(subject: Subject, prepared) -> torch.Tensor:
    """The training loss of one prepared question (:func:`.answers.prepare` of one question):
    the mean negative log-likelihood of the right choice's tokens after the cloze prompt, or the
    cross-entropy of the right answer letter after the multiple-choice prompt."""
    if isinstance(prepared, ChoiceSet):
        ids, answer = prepared.prompts[0], prepared.answers[0]
        logits = subject.model(ids.to(subject.device)).logits[0, -1].float()
        target = torch.tensor(prepared.letter_ids[answer], device=logits.device)
        return torch.nn.functional.cross_entropy(logits[None], target[None])
    a = prepared.answers[0]
    ids, mask, tgt = (
        t[0][a : a + 1].to(subject.device) for t in (prepared.inputs, prepared.attention, prepared.targets)
    )
    logp = subject.model(ids, attention_mask=mask).logits.float().log_softmax(-1)
    keep = tgt >= 0
    return -logp.gather(2, tgt.clamp(min=0)[..., None])[..., 0][keep].mean()


@dataclass
class Tuning:
    """What one arm's fine-tuning did: the question of every step and its loss (before that step's
    update), and how many of the chosen columns ended different from where they started."""

    seen: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    moved: int = 0


def _canonical(subject: Subject, layer: int, tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` (a ``down`` parameter's shape, e.g. its gradient) seen as the canonical ``(hidden, d_ff)``."""
    r = subject.anatomy.ref(layer, "down")
    n = r.shape[0]
    return tensor[:, r.offset : r.offset + n].T if r.transposed else tensor[r.offset : r.offset + n, :]


@contextlib.contextmanager
def tuned(
    subject: Subject, vectors: Sequence[Vector], examples: Sequence, order: Sequence[int], lr: float
) -> Iterator[Tuning]:
    """Fine-tune only ``vectors`` on ``examples`` (prepared questions) in ``order``, one per step,
    by Adam at ``lr``; the tuned model inside the block, the original on leaving it (checked).

    Only the ``down`` parameters of layers that hold a chosen vector take gradients (so backward
    stops at the lowest of them); their ``requires_grad`` flags and ``.grad`` are put back.
    """
    if not lr > 0:
        raise InputError(f"the learning rate must be > 0, got {lr}")
    by_layer = vectors_by_layer(subject, vectors)
    columns = {layer: sorted(set(cols)) for layer, cols in sorted(by_layer.items())}
    params = {
        layer: weight_of(subject.model.get_submodule(subject.anatomy.ref(layer, "down").module_path))
        for layer in columns
    }
    flags = {layer: (p.requires_grad, p.grad) for layer, p in params.items()}
    views = {layer: subject.anatomy.weight(layer, "down") for layer in columns}
    saved = {layer: views[layer][:, idx].clone() for layer, idx in columns.items()}
    master = {layer: saved[layer].float().clone().requires_grad_(True) for layer in columns}
    log = Tuning()
    try:
        optimizer = torch.optim.Adam(list(master.values()), lr=lr) if master else None

        def write() -> None:
            with torch.no_grad():
                for layer, idx in columns.items():
                    views[layer][:, idx] = master[layer].detach().to(views[layer].dtype)

        for p in params.values():
            p.requires_grad_(True)
        for i in order:
            if optimizer is None:
                log.seen.append(int(i))
                log.losses.append(float("nan"))
                continue
            write()
            for p in params.values():
                p.grad = None
            with torch.enable_grad():
                loss = example_loss(subject, examples[i])
                loss.backward()
            for layer, idx in columns.items():
                grad = params[layer].grad
                assert grad is not None  # every tuned layer is below the loss and requires grad
                master[layer].grad = _canonical(subject, layer, grad)[:, idx].float().clone()
            optimizer.step()
            log.seen.append(int(i))
            log.losses.append(float(loss.detach()))
        write()
        for p in params.values():
            p.grad = None
        log.moved = sum(int((views[layer][:, idx] != saved[layer]).any(0).sum()) for layer, idx in columns.items())
        yield log
    finally:
        with torch.no_grad():
            for layer, idx in columns.items():
                views[layer][:, idx] = saved[layer]
        for layer, p in params.items():
            flag, grad = flags[layer]
            p.requires_grad_(flag)
            p.grad = grad
        for layer, idx in columns.items():
            if not torch.equal(views[layer][:, idx], saved[layer]):  # pragma: no cover - a bug, never a user error
                raise RuntimeError("tuned(): restoring the value vectors did not give back the original weights")
