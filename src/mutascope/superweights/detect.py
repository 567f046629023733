"""Finding super weights: spikes at the input and output of every ``down`` matrix.

The paper's detector (arXiv 2411.07191, authors' code) hooks every layer's
``down`` projection, takes the element of largest magnitude of its output and
of its input, and where both spike, calls ``down.weight[row, col]`` a super
weight (row = output channel, col = input channel). The paper then zeroes what
it found and runs again until no spike remains; the authors' code lacks that
loop, this module implements it.

Project decisions where the paper is silent:

* **Spike.** A value ``v`` in a layer's tensor ``T`` spikes when
  ``|v| >= threshold`` (absolute, default 50, the paper's value) *and*
  ``|v| >= relative * median(|T|)`` (relative to the layer's typical
  magnitude, default 100). ``threshold=0`` or ``relative=0`` turns either
  test off.
* **Which input column.** Per layer only the largest output element
  ``(token t, channel row)`` is examined, as in the paper. Its column is the
  spiking input channel ``k`` (at the same token) with the largest
  contribution ``|x[t, k] * W[row, k]|``, not simply the largest input.
  Both agree when there is one spike; the contribution rule is what lets the
  iteration find a second super weight in the same row whose input channel
  spikes less (Llama-13B and Phi-3 have such pairs): once ``W[row, k1]`` is
  zeroed its contribution is zero, while the input spike at ``k1`` (made
  upstream) is still the largest.
* **Outlier weight.** The weight itself must be an outlier of its matrix,
  ``|w| >= weight_z * std(W)`` (default 10). Without it the iteration runs
  away: once the first super weight is zeroed, ordinary weights (|w| ~ 1-3
  std) times the still huge input channel make output spikes above 50 in
  many rows (seen on SmolLM2). The super weights the paper lists and those of
  SmolLM2 are 13-30 std from their matrix's mean; ``weight_z=0`` disables it.
  Output channels are tried from the largest spike down, so a spike that no
  outlier weight explains does not hide one that does.
* **Creators, not cancellers.** Some models (SmolLM2 among them) also have
  late layers whose ``down`` output spikes to *remove* the super activation
  from the residual stream before the head. Such a pair has an output of the
  opposite sign to an already spiking residual channel. It is recorded as a
  canceller, not a super weight, and never zeroed nor re-reported as a super
  weight by the iteration (once the super activation is gone, a canceller's
  output no longer opposes anything and would look like a creator): a super
  weight *creates* the super activation that then rides the residual stream.
  Zeroing SmolLM2's cancellers changes perplexity by under 1 %, while zeroing
  its two creators multiplies it about fifty-fold.
* **Residual stream.** The super activation's magnitude is read from the
  output of each decoder block at the spike's token and channel.

All weights zeroed by the iteration are restored bit-identically before
:func:`detect` returns, also when it fails.
"""

from __future__ import annotations

import math
from contextlib import ExitStack
from dataclasses import dataclass, field

import torch

from ..errors import InputError
from ..model.subject import Subject
from .ablate import Coord, zeroed

# Short, varied texts: the super activation appears at the first token of any
# input, so a few are enough; more only cost time.
DEFAULT_PROBE_TEXTS = (
    "My favourite condiment is mustard.",
    "In 1969, astronauts landed on the Moon and walked on its surface.",
)


@dataclass(frozen=True)
class SuperWeight:
    """One super weight: ``down`` of ``layer``, canonical element ``[row, col]``.

    ``rank`` is 1 + the number of elements of that matrix with a larger
    magnitude in the unmodified model (1 = the largest). ``input_spike`` and
    ``output_spike`` are the ``down`` input at ``col`` and output at ``row``
    at ``token`` of probe text ``text_index``, in detection pass ``iteration``
    (0 = the unmodified model; later passes run with earlier finds zeroed).
    """

    layer: int
    module_path: str
    param_name: str
    row: int
    col: int
    value: float
    rank: int
    input_spike: float
    output_spike: float
    text_index: int
    token: int
    iteration: int

    @property
    def coord(self) -> Coord:
        return (self.layer, self.row, self.col)


@dataclass(frozen=True)
class SuperActivation:
    """The hidden-state spike a super weight creates.

    ``channel`` is the residual-stream channel (the super weight's row), first
    spiking at the output of ``layer``; ``magnitudes[i]`` is ``|h[channel]|`` at
    the spike's token after block ``layer + i``, to the last block.
    """

    channel: int
    layer: int
    text_index: int
    token: int
    value: float
    magnitudes: tuple[float, ...]
    iteration: int


@dataclass
class Detection:
    """What :func:`detect` found, with the settings it used."""

    model_id: str
    weights: list[SuperWeight]
    activations: list[SuperActivation]
    cancellers: list[SuperWeight]
    threshold: float
    relative: float
    weight_z: float
    iterations: int
    texts: tuple[str, ...]
    # per pass, per layer: (max |input|, max |output|) for plots and reports
    layer_maxima: list[list[tuple[float, float]]] = field(default_factory=list)

    @property
    def coords(self) -> list[Coord]:
        return [w.coord for w in self.weights]


@dataclass
class _Capture:
    """One pass's recordings, tokens of all texts concatenated along dim 0."""

    x: list[torch.Tensor]  # per layer (tokens, d_ff), float32
    y: list[torch.Tensor]  # per layer (tokens, d_model)
    h_in: list[torch.Tensor]  # per layer block input (tokens, d_model)
    h_out: list[torch.Tensor]  # per layer block output
    where: list[tuple[int, int]]  # token index -> (text index, position)


def block_path(subject: Subject, layer: int) -> str:
    """Path of decoder block ``layer``."""
    return subject.anatomy.block_path(layer)


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _tokens(t: torch.Tensor) -> torch.Tensor:
    """(tokens, features) float32 on CPU; batch size is 1, and some models (OPT)
    already flatten batch and sequence inside their MLP."""
    return t.detach().reshape(-1, t.shape[-1]).float().cpu()


def capture(subject: Subject, texts: tuple[str, ...] | list[str]) -> _Capture:
    """One forward pass per text with hooks on every ``down`` and every block."""
    model, anatomy = subject.model, subject.anatomy
    n = anatomy.n_layers
    parts: dict[str, list[list[torch.Tensor]]] = {k: [[] for _ in range(n)] for k in ("x", "y", "h_in", "h_out")}
    where: list[tuple[int, int]] = []

    def down_hook(layer):
        def hook(module, args, output):
            parts["x"][layer].append(_tokens(args[0]))
            parts["y"][layer].append(_tokens(_first(output)))

        return hook

    def block_hook(layer):
        def hook(module, args, kwargs, output):
            h = args[0] if args else kwargs.get("hidden_states")
            parts["h_in"][layer].append(_tokens(h))
            parts["h_out"][layer].append(_tokens(_first(output)))

        return hook

    with ExitStack() as stack:
        for layer in range(n):
            down = model.get_submodule(anatomy.ref(layer, "down").module_path)
            block = model.get_submodule(block_path(subject, layer))
            stack.callback(down.register_forward_hook(down_hook(layer)).remove)
            stack.callback(block.register_forward_hook(block_hook(layer), with_kwargs=True).remove)
        for i, text in enumerate(texts):
            ids = encode(subject, text)
            with torch.no_grad():
                model(ids.to(subject.device))
            where += [(i, p) for p in range(ids.shape[1])]
    cat = {k: [torch.cat(v) for v in vs] for k, vs in parts.items()}
    return _Capture(cat["x"], cat["y"], cat["h_in"], cat["h_out"], where)


def encode(subject: Subject, text: str) -> torch.Tensor:
    """Token ids (1, n) with the tokenizer's own special tokens, BOS where it adds one."""
    ids = subject.tokenizer(text, return_tensors="pt").input_ids
    if ids.shape[1] == 0:
        raise InputError("a probe text encodes to no tokens; give non-empty texts")
    return ids


def spike_floor(t: torch.Tensor, threshold: float, relative: float) -> float:
    """The smallest magnitude that counts as a spike in tensor ``t``."""
    typical = float(t.abs().median()) if relative > 0 else 0.0
    return max(threshold, relative * typical)


def _pass(subject: Subject, cap: _Capture, threshold: float, relative: float, weight_z: float, iteration: int):
    """Spike pairs of one pass, at most one per layer: (creators, cancellers, activations)."""
    creators, cancellers, activations = [], [], []
    anatomy = subject.anatomy
    for layer in range(anatomy.n_layers):
        pair = _layer_pair(subject, cap, layer, threshold, relative, weight_z)
        if pair is None:
            continue
        t, row, col = pair
        x, y = cap.x[layer], cap.y[layer]
        ref = anatomy.ref(layer, "down")
        text_index, token = cap.where[t]
        out_v = float(y[t, row])
        sw = SuperWeight(
            layer=layer,
            module_path=ref.module_path,
            param_name=ref.param_name,
            row=row,
            col=col,
            value=float(anatomy.weight(layer, "down")[row, col]),
            rank=0,
            input_spike=float(x[t, col]),
            output_spike=out_v,
            text_index=text_index,
            token=token,
            iteration=iteration,
        )
        h_before = float(cap.h_in[layer][t, row])
        residual_spikes = abs(h_before) >= spike_floor(cap.h_in[layer], threshold, relative)
        if residual_spikes and (h_before > 0) != (out_v > 0):
            cancellers.append(sw)
            continue
        creators.append(sw)
        mags = tuple(float(cap.h_out[i][t, row].abs()) for i in range(layer, anatomy.n_layers))
        activations.append(
            SuperActivation(row, layer, text_index, token, float(cap.h_out[layer][t, row]), mags, iteration)
        )
    return creators, cancellers, activations


def _layer_pair(subject: Subject, cap, layer, threshold, relative, weight_z) -> tuple[int, int, int] | None:
    """(token, row, col) of the layer's largest output spike that a spiking input and
    an outlier weight explain, or None.

    Output channels are tried from the largest spike down, so an output spike
    that no outlier weight made (an ordinary weight times a huge input) does
    not hide a super weight elsewhere in the layer.
    """
    x, y = cap.x[layer], cap.y[layer]
    out_floor = spike_floor(y, threshold, relative)
    in_floor = spike_floor(x, threshold, relative)
    w = subject.anatomy.weight(layer, "down")
    w_floor = weight_z * float(w.float().std()) if weight_z > 0 else 0.0
    per_channel, tokens = y.abs().max(dim=0)
    order = per_channel.argsort(descending=True)
    for row in order.tolist():
        if not per_channel[row] >= out_floor:  # also stops at NaN
            break
        t = int(tokens[row])
        spiking = (x[t].abs() >= in_floor).nonzero().flatten()
        if len(spiking) == 0:
            continue
        w_row = w[row, spiking].float().cpu()
        ok = w_row.abs() >= max(w_floor, torch.finfo(torch.float32).tiny)
        if not ok.any():
            continue
        contrib = (x[t, spiking] * w_row).abs() * ok
        return t, row, int(spiking[int(contrib.argmax())])
    return None


def detect(
    subject: Subject,
    texts: tuple[str, ...] | list[str] = DEFAULT_PROBE_TEXTS,
    *,
    threshold: float = 50.0,
    relative: float = 100.0,
    weight_z: float = 10.0,
    max_iterations: int = 10,
) -> Detection:
    """Find the super weights and super activations of ``subject``.

    Runs the probe texts, collects spike pairs, zeroes the new super weights,
    and runs again until a pass finds nothing new (or ``max_iterations``
    passes). The model is restored exactly before returning.
    """
    if threshold < 0 or relative < 0 or not (math.isfinite(threshold) and math.isfinite(relative)):
        raise InputError("spike thresholds must be finite numbers >= 0")
    if threshold == 0 and relative == 0:
        raise InputError("threshold and relative are both 0: every value would be a spike; set one above 0")
    if weight_z < 0 or not math.isfinite(weight_z):
        raise InputError(f"weight_z must be a finite number >= 0, got {weight_z}")
    if max_iterations < 1:
        raise InputError(f"max_iterations must be >= 1, got {max_iterations}")
    texts = tuple(texts)
    if not texts:
        raise InputError("detection needs at least one probe text")
    found: dict[Coord, SuperWeight] = {}
    activations: list[SuperActivation] = []
    cancellers: dict[Coord, SuperWeight] = {}
    maxima: list[list[tuple[float, float]]] = []
    iterations = 0
    with ExitStack() as stack:
        for iteration in range(max_iterations):
            iterations = iteration + 1
            cap = capture(subject, texts)
            maxima.append([(float(x.abs().max()), float(y.abs().max())) for x, y in zip(cap.x, cap.y)])
            creators, cancel, acts = _pass(subject, cap, threshold, relative, weight_z, iteration)
            for c in cancel:
                cancellers.setdefault(c.coord, c)
            new = [c for c in creators if c.coord not in found and c.coord not in cancellers]
            if not new:
                break
            for c in new:
                found[c.coord] = c
            activations += [a for a, c in zip(acts, creators) if c in new]
            stack.enter_context(zeroed(subject, [c.coord for c in new]))
    weights = [_ranked(subject, w) for w in sorted(found.values(), key=lambda w: (w.layer, w.row, w.col))]
    return Detection(
        model_id=subject.model_id,
        weights=weights,
        activations=activations,
        cancellers=[_ranked(subject, w) for w in cancellers.values()],
        threshold=threshold,
        relative=relative,
        weight_z=weight_z,
        iterations=iterations,
        texts=texts,
        layer_maxima=maxima,
    )


def _ranked(subject: Subject, sw: SuperWeight) -> SuperWeight:
    """``sw`` with its value and magnitude rank read from the (restored) model."""
    from dataclasses import replace

    w = subject.anatomy.weight(sw.layer, "down")
    value = float(w[sw.row, sw.col])
    rank = 1 + int((w.abs() > abs(value)).sum())
    return replace(sw, value=value, rank=rank)
