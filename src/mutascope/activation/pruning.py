"""Layer-wise pruning ratios from activation counts, applied with Wanda.

Ratios (docs/methods.md, "3. Activation patterns"): with N_i the activated parameters of layer i
(1-based i), ``N'_i = sigmoid((N_i - mean N) / std N + alpha / i)`` and
``S_i = S + beta * S * (1 - N'_i * L / sum N')``. Averaged over the L layers
the bracket is ``1 - (L / sum N') * (sum N' / L) = 0``, so the S_i average to
S exactly: densely activated layers (and, through alpha / i, shallow ones)
are pruned less, the others more. Two choices the text leaves open:
``std`` is the population std (ddof 0), and when all N_i are equal (std 0)
the z-score is taken as 0. A ratio the formula puts outside [0, 1] (only
for extreme N' spreads) is clipped and the unclipped layers are shifted
equally until the mean is S again; :attr:`LayerSparsity.renormalised` says so.

Wanda (Sun et al. 2023): score ``|W_jk| * ||X_k||_2`` (X_k: input feature k
of the matrix over all calibration tokens), and in every output row j the
``round(in_features * S_i)`` lowest-scoring weights are set to zero (Wanda
floors; rounding keeps the realised mean sparsity of the layer-wise variant
at S instead of below it, so the comparison with uniform is fair). As in the
Wanda code, layers are pruned in order and each layer's input norms are
measured on activations that went through the already pruned layers before
it (block by block, so the cost is about two model forwards per calibration
input). Calibration texts are the caller's (the CLI uses the activation inputs,
so the perplexity corpus is never seen during pruning).

Pruning edits the model in place inside :func:`pruned`, which saves every
matrix parameter first and puts it back in ``finally`` -- checked by the
weights' content hash -- so the model is the dense one again afterwards,
also after an exception.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..model.subject import Subject
from .gradients import matrix_params

__all__ = ["LayerSparsity", "PruneResult", "compare_pruning", "layerwise_sparsities", "pruned", "wanda_prune"]


@dataclass(frozen=True)
class LayerSparsity:
    """Per-layer pruning ratios and the numbers they came from."""

    counts: tuple[float, ...]  # N_i
    normalised: tuple[float, ...]  # N'_i
    sparsities: tuple[float, ...]  # S_i
    target: float  # S
    alpha: float
    beta: float
    renormalised: bool  # clipping to [0, 1] forced a shift back to mean S

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "layer": range(len(self.counts)),
                "n_activated": self.counts,
                "n_prime": self.normalised,
                "sparsity_layerwise": self.sparsities,
                "sparsity_uniform": self.target,
            }
        )


def _check_sparsity(s: float, what: str = "sparsity") -> None:
    if not (isinstance(s, (int, float)) and math.isfinite(s) and 0 <= s < 1):
        raise InputError(f"{what} must be in [0, 1), got {s!r}")


def layerwise_sparsities(
    counts: Sequence[float], sparsity: float = 0.5, alpha: float = 2.0, beta: float = 0.2
) -> LayerSparsity:
    """S_i from N_i by the formula above (layers 1-based in ``alpha / i``)."""
    _check_sparsity(sparsity)
    for name, v in (("alpha", alpha), ("beta", beta)):
        if not math.isfinite(v):
            raise InputError(f"{name} must be finite, got {v!r}")
    n = np.asarray(counts, dtype=np.float64)
    if n.ndim != 1 or len(n) == 0 or not np.isfinite(n).all():
        raise InputError("layer-wise sparsities need one finite activated count per layer")
    L = len(n)
    std = n.std()
    z = (n - n.mean()) / std if std > 0 else np.zeros(L)
    prime = 1.0 / (1.0 + np.exp(-(z + alpha / np.arange(1, L + 1))))
    s = sparsity + beta * sparsity * (1.0 - prime * L / prime.sum())
    renormalised = False
    for _ in range(L + 1):
        clipped = np.clip(s, 0.0, 1.0)
        free = (clipped > 0) & (clipped < 1)
        gap = sparsity * L - clipped.sum()
        if abs(gap) <= 1e-12 * L and (clipped == s).all():
            break
        renormalised = True
        if not free.any():
            break
        s = clipped + np.where(free, gap / free.sum(), 0.0)
    s = np.clip(s, 0.0, 1.0)
    return LayerSparsity(
        tuple(n.tolist()),
        tuple(prime.tolist()),
        tuple(s.tolist()),
        float(sparsity),
        float(alpha),
        float(beta),
        renormalised,
    )


class _Stop(Exception):
    """Raised by a hook to end a forward pass once what was wanted has been seen."""


def _block_calls(subject: Subject, calibration: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, list]]:
    """For each calibration input: the hidden state entering block 0, and each block's other
    arguments (masks, position embeddings...), captured in one forward pass of the dense model.

    Those arguments depend on the tokens only, never on the weights, so they are valid for the
    pruned model too; capturing them per block keeps models whose layers differ (sliding-window
    vs global attention) right.
    """
    anatomy, model = subject.anatomy, subject.model
    blocks = [model.get_submodule(anatomy.block_path(i)) for i in range(anatomy.n_layers)]
    calls = []
    for ids in calibration:
        first: list[torch.Tensor] = []
        rest: list = []

        def pre(module, args, kwargs, first=first, rest=rest):  # bound now: hooks of this input only
            if not first:
                first.append(args[0] if args else kwargs["hidden_states"])
            rest.append((args[1:], {k: v for k, v in kwargs.items() if k != "hidden_states"}, bool(args)))

        def stop(module, args, output):
            raise _Stop

        hooks = [b.register_forward_pre_hook(pre, with_kwargs=True) for b in blocks]
        hooks.append(blocks[-1].register_forward_hook(stop))
        try:
            with torch.no_grad():
                model(input_ids=ids.reshape(1, -1).to(subject.device), use_cache=False)
        except _Stop:
            pass
        finally:
            for h in hooks:
                h.remove()
        calls.append((first[0], rest))
    return calls


def _run_block(block: torch.nn.Module, hidden: torch.Tensor, call) -> torch.Tensor:
    args, kwargs, positional = call
    out = block(hidden, *args, **kwargs) if positional else block(hidden_states=hidden, **kwargs)
    return out[0] if isinstance(out, tuple) else out


def wanda_prune(subject: Subject, sparsities: Sequence[float], calibration: Sequence[torch.Tensor]) -> int:
    """Prune every layer in place with Wanda at its ratio; returns how many weights were zeroed.

    Block by block as in Wanda's code: the calibration hidden states go
    through block i once to measure its input norms, block i is pruned, and
    they go through it again (pruned) to become block i+1's inputs -- two
    block passes per layer, about two model forwards per input in all.
    Not undone here: call it inside :func:`pruned`.
    """
    anatomy, model = subject.anatomy, subject.model
    if len(sparsities) != anatomy.n_layers:
        raise InputError(f"need one sparsity per layer ({anatomy.n_layers}), got {len(sparsities)}")
    for s in sparsities:
        _check_sparsity(float(s), "a layer's sparsity")
    if not calibration:
        raise InputError("Wanda needs calibration text")
    calls = _block_calls(subject, calibration)
    hidden = [h for h, _ in calls]
    zeroed = 0
    with torch.no_grad():
        for layer in range(anatomy.n_layers):
            block = model.get_submodule(anatomy.block_path(layer))
            refs = [r for r in anatomy.refs() if r.layer == layer]
            sums: dict[str, torch.Tensor] = {}

            def pre_hook(path, sums=sums):  # this layer's sums, bound now (its hooks are removed with it)
                def hook(module, args):
                    x = args[0].detach().reshape(-1, args[0].shape[-1]).to(torch.float64)
                    sums[path] = sums.get(path, 0) + x.pow(2).sum(0)

                return hook

            hooks = [
                model.get_submodule(p).register_forward_pre_hook(pre_hook(p))
                for p in sorted({r.module_path for r in refs})
            ]
            try:
                for n, (_, rest) in enumerate(calls):
                    _run_block(block, hidden[n], rest[layer])
            finally:
                for h in hooks:
                    h.remove()
            for ref in refs:
                w = anatomy.weight(layer, ref.matrix)
                k = round(w.shape[1] * float(sparsities[layer]))
                if k == 0:
                    continue
                score = w.abs().to(torch.float64) * sums[ref.module_path].sqrt().to(w.device)[None, :]
                idx = torch.topk(score, k, dim=1, largest=False, sorted=False).indices
                w.scatter_(1, idx, 0)  # writes through the canonical view into the parameter
                zeroed += idx.numel()
            if layer + 1 < anatomy.n_layers:
                hidden = [_run_block(block, hidden[n], rest[layer]) for n, (_, rest) in enumerate(calls)]
    return zeroed


@contextlib.contextmanager
def pruned(subject: Subject, sparsities: Sequence[float], calibration: Sequence[torch.Tensor]) -> Iterator[int]:
    """Wanda-pruned model inside the block (yields the number of zeroed weights); dense again after.

    The restore is checked against the content hash taken before pruning; a
    mismatch is a bug and raises rather than leave a silently altered model.
    """
    before = subject.content_hash()
    saved = {name: p.detach().clone() for name, p in matrix_params(subject).items()}
    try:
        yield wanda_prune(subject, sparsities, calibration)
    finally:
        with torch.no_grad():
            for name, p in matrix_params(subject).items():
                p.copy_(saved[name])
        del saved
        if subject.content_hash() != before:
            raise RuntimeError("pruned(): restoring the weights did not give back the original model")


def _matrix_sparsity(subject: Subject) -> float:
    zeros = total = 0
    for ref in subject.anatomy.refs():
        w = subject.anatomy.weight(ref.layer, ref.matrix)
        zeros += int((w == 0).sum())
        total += w.numel()
    return zeros / total


@dataclass(frozen=True)
class PruneResult:
    """Perplexity of the dense model and of both pruned variants, with realised sparsities."""

    layers: LayerSparsity
    rows: tuple[tuple[str, float, float, float], ...]  # (variant, target, realised sparsity, perplexity)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(list(self.rows), columns=["variant", "target_sparsity", "sparsity", "perplexity"])


def compare_pruning(
    subject: Subject,
    counts: Sequence[float],
    calibration: Sequence[torch.Tensor],
    eval_ids: torch.Tensor,
    *,
    sparsity: float = 0.5,
    alpha: float = 2.0,
    beta: float = 0.2,
    window: int = 256,
    progress=None,
) -> PruneResult:
    """Dense vs uniform Wanda vs layer-wise Wanda, by perplexity on ``eval_ids``."""
    from ..evaluate import perplexity

    say = progress or (lambda name: None)
    layers = layerwise_sparsities(counts, sparsity, alpha, beta)
    say("dense")
    rows = [("dense", 0.0, _matrix_sparsity(subject), perplexity(subject, eval_ids, window))]
    for name, ratios in (("uniform", [sparsity] * len(counts)), ("layerwise", layers.sparsities)):
        say(name)
        with pruned(subject, ratios, calibration):
            rows.append((name, sparsity, _matrix_sparsity(subject), perplexity(subject, eval_ids, window)))
    return PruneResult(layers, tuple(rows))
