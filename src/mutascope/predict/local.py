"""The local predicted effect: exact through the mutated block's first nonlinearity, first order after it.

The first-order estimate (:mod:`.scores`) linearises the whole model, including
the nonlinearity right after the mutated projection, and that is where it
fails (docs/predicted-maps.md): a max/min tile of ``q`` or ``k`` drives a
head's attention logits into the softmax's saturated range, a ``gate`` tile
opens channels that SiLU/GELU held shut, where the derivative at WT says
nothing. Like AtP* for activations, this estimate recomputes that first
nonlinearity exactly and linearises only downstream (docs/methods.md,
"Predicted maps"):

* ``q``, ``k``: the tile's change of the projection's output on the probe's
  teacher-forced sequence, through the model's own query/key norm and
  rotary embedding (partial where the model rotates part of each head);
  then the exact attention of every head it feeds (a ``k`` tile feeds the
  whole group of query heads sharing its key/value head).
  The change of those heads' outputs is dotted with the gradient of the
  objective at the input of ``o``.
* ``gate`` (and a gateless MLP's input projection, canonical ``up``): the
  exact ``act(g + dg) * u - act(g) * u`` (``act(a + da) - act(a)`` without a
  gate) with the model's own activation, dotted with the gradient at
  ``down``'s input.
* ``v``, ``o``, ``up`` (gated), ``down``: linear up to the block's output, so
  the first-order term is already exact there and is used as it is
  (carrying it exactly through the next norm was measured and does not
  help: docs/predicted-maps.md, ``benchmarks/bench_carry.py``).

What it needs is recorded during the one forward and backward pass per probe
the first-order map already makes (:func:`recording`, hooks on the real
modules); each mutant then costs a small exact computation, batched per
matrix. Everything runs in float64 on one thread, so results never depend on
the thread count.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..errors import ModelLoadError
from ..plan.kinds import mutated_tile
from ..plan.mutation import Mutation

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


Key = tuple[int, str]
# Families whose attention (query/key norm, rotary embedding, scaling) this module reproduces;
# their tiny models are tested against the real modules (tests/predict/test_local.py).
ATTENTION_FAMILIES = (
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "gemma",
    "gemma3",
    "gemma3_text",
    "olmo",
    "olmo2",
    "phi",
    "phi3",
    "gpt2",
    "opt",
    "gptj",
)
LOCAL_MATRICES = ("q", "k", "gate", "up")  # the ones with an exact step (gated `up` is linear: first order)
CHUNK_BYTES = 16 * 2**20  # about the largest change tensor one batch of mutants makes


def _parent(path: str) -> str:
    return path.rsplit(".", 1)[0]


def _activation(module: torch.nn.Module):
    for name in ("act_fn", "activation_fn", "act"):
        fn = getattr(module, name, None)
        if callable(fn):
            return fn
    return None


def _sequence(t: torch.Tensor) -> torch.Tensor:
    """(T, n) from a (1, T, n) tensor or one already flattened to (T, n) (OPT's MLP), in the model's
    dtype (float64 only per layer, when its mutants are computed)."""
    t = t.detach()
    return (t[0] if t.dim() == 3 else t).clone()


@dataclass
class LayerRecord:
    """What one layer's local step needs, from the WT pass (all float64, batch row 0)."""

    inputs: dict = field(default_factory=dict)  # module path -> its input (T, in), first projection only
    outputs: dict = field(default_factory=dict)  # module path -> its output (T, out)
    grads: dict = field(default_factory=dict)  # "o" / "down" -> gradient at that projection's input (T, n)
    rotary: tuple | None = None  # (cos, sin) the attention was given


class Recording:
    """Per layer, the projections' inputs and outputs and the gradients at ``o``'s and ``down``'s inputs."""

    def __init__(self, subject: Subject, keys: set[Key]):
        self.subject = subject
        self.layers: dict[int, LayerRecord] = {}
        self.keys = {k for k in keys if k[1] in LOCAL_MATRICES and is_local(subject, k[1])}
        for _layer, matrix in sorted(self.keys):
            check_supported(subject, matrix)

    def _hooks(self) -> list:
        anatomy, model = self.subject.anatomy, self.subject.model
        io: dict[str, tuple[LayerRecord, bool]] = {}  # path -> (record, whether its input is kept)
        reads: dict[tuple[str, str], LayerRecord] = {}
        rotary: dict[str, LayerRecord] = {}
        for layer, matrix in sorted(self.keys):
            rec = self.layers.setdefault(layer, LayerRecord())
            if matrix in ("q", "k"):
                for m in ("q", "k", "v"):  # one input: they share it (a fused projection keeps it)
                    path = anatomy.ref(layer, m).module_path
                    io[path] = (rec, m == "q" or io.get(path, (rec, False))[1])
                rotary[_parent(anatomy.ref(layer, "q").module_path)] = rec
                reads[(anatomy.ref(layer, "o").module_path, "o")] = rec
            else:
                first = "gate" if "gate" in anatomy.matrices else "up"
                for m in ("gate", "up"):
                    if m in anatomy.matrices:
                        path = anatomy.ref(layer, m).module_path
                        io[path] = (rec, m == first or io.get(path, (rec, False))[1])
                reads[(anatomy.ref(layer, "down").module_path, "down")] = rec
        handles = [
            model.get_submodule(p).register_forward_hook(self._io(rec, p, keep)) for p, (rec, keep) in io.items()
        ]
        handles += [
            model.get_submodule(p).register_forward_pre_hook(self._grad(rec, name)) for (p, name), rec in reads.items()
        ]
        handles += [
            model.get_submodule(p).register_forward_pre_hook(self._rotary(rec), with_kwargs=True)
            for p, rec in rotary.items()
        ]
        return handles

    @staticmethod
    def _io(rec: LayerRecord, path: str, keep_input: bool):
        def hook(module, args, output):
            if keep_input:
                rec.inputs[path] = _sequence(args[0])
            rec.outputs[path] = _sequence(output)

        return hook

    @staticmethod
    def _grad(rec: LayerRecord, name: str):
        def hook(module, args):
            x = args[0]
            if x.requires_grad:
                x.register_hook(lambda g: rec.grads.__setitem__(name, _sequence(g)))

        return hook

    @staticmethod
    def _rotary(rec: LayerRecord):
        def hook(module, args, kwargs):
            pe = kwargs.get("position_embeddings")
            rec.rotary = None if pe is None else tuple(t.detach() for t in pe)

        return hook


@contextlib.contextmanager
def recording(subject: Subject, keys: set[Key]) -> Iterator[Recording]:
    """Hooks on the real modules for the duration of one forward and backward pass of an objective."""
    rec = Recording(subject, keys)
    handles = rec._hooks()
    try:
        yield rec
    finally:
        for h in handles:
            h.remove()


def is_local(subject: Subject, matrix: str) -> bool:
    """Whether ``matrix`` has an exact step: q, k, gate, and ``up`` only where no gate follows."""
    if matrix == "up":
        return "gate" not in subject.anatomy.matrices
    return matrix in ("q", "k", "gate")


def check_supported(subject: Subject, matrix: str) -> None:
    """A one-line refusal for a (family, matrix) this module does not reproduce exactly."""
    family = subject.anatomy.family
    anatomy = subject.anatomy
    if matrix in ("q", "k"):
        if family not in ATTENTION_FAMILIES:
            raise ModelLoadError(
                f"the local predicted effect does not cover {family} models' {matrix} matrices yet "
                f"(their attention is not reproduced); families covered: {', '.join(ATTENTION_FAMILIES)}"
            )
        return
    path = anatomy.ref(0, "down").module_path
    if _activation(subject.model.get_submodule(_parent(path))) is None:
        raise ModelLoadError(
            f"the local predicted effect does not cover {family} models' {matrix} matrices yet "
            f"(no activation function found beside {path})"
        )


# -- the exact step ----------------------------------------------------------------------


def _weight_changes(subject: Subject, ms: Sequence[Mutation]) -> tuple[torch.Tensor, int, int]:
    """(B, h, w) float64 changes V - W of each tile, zero-padded to the largest tile: what the tile
    holds once written (:func:`~mutascope.plan.kinds.mutated_tile`, in the weight's own dtype)
    minus what it held."""
    h, w = max(m.height for m in ms), max(m.width for m in ms)
    weight = subject.anatomy.weight(ms[0].layer, ms[0].matrix)
    native = torch.zeros(len(ms), h, w, dtype=weight.dtype)
    for i, m in enumerate(ms):
        native[i, : m.height, : m.width] = weight[m.r0 : m.r1, m.c0 : m.c1]
    mask = torch.zeros(len(ms), h, w, dtype=torch.float64)
    for i, m in enumerate(ms):
        mask[i, : m.height, : m.width] = 1.0
    tiles = native.to(torch.float64)
    if all(m.kind.name in ("max", "min", "zero", "value", "sym") for m in ms):  # constants: V = c
        value = torch.tensor([m.value for m in ms], dtype=torch.float64).to(weight.dtype).to(torch.float64)
        return (value[:, None, None] - tiles) * mask, h, w
    out = torch.zeros(len(ms), h, w, dtype=torch.float64)
    for i, m in enumerate(ms):
        original = native[i, : m.height, : m.width]
        out[i, : m.height, : m.width] = (
            mutated_tile(original, m.kind, m.value, m.site).to(torch.float64) - tiles[i, : m.height, : m.width]
        )
    return out, h, w


def _output_changes(subject: Subject, x: torch.Tensor, ms: Sequence[Mutation]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each tile's change of its projection's output on the inputs ``x`` (T, in): (B, T, h) values at
    output features (B, h) (the tile's rows; padding rows, past the edge, carry zero)."""
    dw, h, w = _weight_changes(subject, ms)
    cols = (torch.tensor([m.c0 for m in ms])[:, None] + torch.arange(w)).clamp(max=x.shape[1] - 1)  # (B, w)
    xs = x[:, cols].permute(1, 0, 2)  # (B, T, w); padded columns meet zero weight changes
    rows = torch.tensor([m.r0 for m in ms])[:, None] + torch.arange(h)  # (B, h)
    return torch.einsum("btw,bhw->bth", xs, dw), rows


def dense(part: torch.Tensor, index: torch.Tensor, width: int) -> torch.Tensor:
    """(B, T, width) from changes ``part`` (B, T, n) at features ``index`` (B, n) (padding carries zero)."""
    out = torch.zeros(part.shape[0], part.shape[1], width, dtype=part.dtype)
    return out.scatter_add_(2, index.clamp(max=width - 1)[:, None, :].expand(-1, part.shape[1], -1), part)


def _normed(norm: torch.nn.Module, t: torch.Tensor) -> torch.Tensor:
    """The model's query/key norm applied to float64 ``t`` (a LayerNorm's own weight and bias, cast,
    since ``nn.LayerNorm`` refuses mixed dtypes; RMSNorms handle the cast themselves)."""
    if isinstance(norm, torch.nn.LayerNorm):
        weight = None if norm.weight is None else norm.weight.to(t.dtype)
        bias = None if norm.bias is None else norm.bias.to(t.dtype)
        return torch.nn.functional.layer_norm(t, norm.normalized_shape, weight, bias, norm.eps)
    return norm(t)


class _Attention:
    """One layer's attention as the model computes it, from the recorded projections."""

    def __init__(self, subject: Subject, rec: LayerRecord, layer: int):
        anatomy = subject.anatomy
        self.family = anatomy.family
        self.refs = {m: anatomy.ref(layer, m) for m in ("q", "k", "v")}
        # the attention module of any family: which attributes it has (num_heads, scaling ...) varies
        self.module: Any = subject.model.get_submodule(_parent(self.refs["q"].module_path))
        self.rec = rec
        out = {m: self._part(m) for m in ("q", "k", "v")}
        self.x = rec.inputs[self.refs["q"].module_path].to(torch.float64)
        self.hd = int(getattr(self.module, "head_dim", 0) or out["q"].shape[1] // self.module.num_heads)
        self.hq, self.hkv = out["q"].shape[1] // self.hd, out["k"].shape[1] // self.hd
        self.pre = out
        self.q, self.k = self.prepare(out["q"][None], "q")[0], self.prepare(out["k"][None], "k")[0]
        self.v = out["v"].view(-1, self.hkv, self.hd).transpose(0, 1)  # (Hkv, T, hd)
        t = self.x.shape[0]
        i, j = torch.arange(t)[:, None], torch.arange(t)[None, :]
        allowed = j <= i
        window = getattr(self.module, "sliding_window", None)
        if window:
            allowed &= (i - j) < window
        self.mask = torch.zeros(t, t, dtype=torch.float64).masked_fill_(~allowed, -math.inf)
        self.scaling = 1.0 if self.family == "opt" else float(self.module.scaling)
        self.softcap = getattr(self.module, "attn_logit_softcapping", None)
        self.wt = self.attend(
            self.q, self.k.repeat_interleave(self.hq // self.hkv, 0), self.v.repeat_interleave(self.hq // self.hkv, 0)
        )  # (Hq, T, hd)

    def _part(self, m: str) -> torch.Tensor:
        ref = self.refs[m]
        return self.rec.outputs[ref.module_path][:, ref.offset : ref.offset + ref.shape[0]].to(torch.float64)

    def norm(self, which: str) -> Any:
        """The query/key norm: ``q_norm`` (Qwen 3, Gemma 3, OLMo 2) or ``q_layernorm`` (Phi-1/2)."""
        norm = getattr(self.module, f"{which}_norm", None)
        return norm if norm is not None else getattr(self.module, f"{which}_layernorm", None)

    def prepare(self, t: torch.Tensor, which: str) -> torch.Tensor:
        """(B, T, H*hd) projection outputs -> (B, H, T, hd) as the attention is given them."""
        norm = self.norm(which)
        b, n = t.shape[0], t.shape[1]
        if norm is not None and norm.weight.numel() != self.hd:  # OLMo 2: one norm over all heads
            t = _normed(norm, t)
        t = t.reshape(b, n, -1, self.hd)
        if norm is not None and norm.weight.numel() == self.hd:  # Qwen 3, Gemma 3, Phi: per head
            t = _normed(norm, t)
        if self.family == "gptj" and self.rec.rotary is not None:  # rotates (B, T, H, hd), every two dims
            sin, cos = (r.to(torch.float64) for r in self.rec.rotary)
            rotate = sys.modules[type(self.module).__module__].apply_rotary_pos_emb
            dims = self.module.rotary_dim or self.hd
            t = torch.cat([rotate(t[..., :dims].to(torch.float64), sin, cos), t[..., dims:].to(torch.float64)], -1)
            return t.transpose(1, 2)
        t = t.transpose(1, 2).to(torch.float64)
        if which == "q" and self.family == "opt":
            t = t * self.module.scaling
        if self.rec.rotary is not None:
            cos, sin = (r.to(torch.float64) for r in self.rec.rotary)
            rotate = sys.modules[type(self.module).__module__].apply_rotary_pos_emb
            dims = cos.shape[-1]
            if dims == self.hd:
                t = rotate(t, t, cos, sin)[0]
            else:  # Phi-1/2 rotate the first dims of each head only
                t = torch.cat([rotate(t[..., :dims], t[..., :dims], cos, sin)[0], t[..., dims:]], -1)
        return t

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Exact attention of (N, T, hd) queries, keys and values, as the eager implementation."""
        scores = q @ k.transpose(-1, -2) * self.scaling
        if self.softcap is not None:
            scores = torch.tanh(scores / self.softcap) * self.softcap
        return torch.softmax(scores + self.mask, dim=-1) @ v

    def changes(self, subject: Subject, ms: Sequence[Mutation], matrix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Each mutant's exact change of the attention output (``o``'s input): (B, T, n) values at
        features (B, n), the columns of the query heads it changes."""
        width = self.pre[matrix].shape[1]
        n_heads = width // self.hd
        part, rows = _output_changes(subject, self.x, ms)
        delta = dense(part, rows, width)
        rep = self.hq // self.hkv
        heads = [self.affected(m, matrix, n_heads) for m in ms]
        width_p = max(len(h) for h in heads) * (1 if matrix == "q" else rep)
        pairs_b, pairs_h, sources, slots, changed = [], [], [], [], []
        for b, hs in enumerate(heads):
            slot = 0
            for h in hs:
                changed.append((b, h))
                for qh in [h] if matrix == "q" else range(h * rep, (h + 1) * rep):
                    pairs_b.append(b)
                    pairs_h.append(qh)
                    sources.append(len(changed) - 1)
                    slot += 1
                    slots.append(slot - 1)
        b_idx, q_idx, s_idx, slot_idx = (torch.tensor(v, dtype=torch.long) for v in (pairs_b, pairs_h, sources, slots))
        if self.full_norm(matrix):  # every head's input changes: prepare them all
            new = self.prepare(self.pre[matrix][None] + delta, matrix)  # (B, H, T, hd)
            cb, ch = (torch.tensor(v, dtype=torch.long) for v in zip(*changed))
            new = new[cb, ch]
        else:  # only the changed heads, each prepared on its own (norm and rotation act per head)
            cb, ch = (torch.tensor(v, dtype=torch.long) for v in zip(*changed))
            t = self.x.shape[0]
            own = self.pre[matrix].view(t, n_heads, self.hd)[:, ch].transpose(0, 1)  # (U, T, hd)
            new = self.prepare(own + delta.view(len(ms), t, n_heads, self.hd)[cb, :, ch], matrix)[:, 0]
        kv = q_idx // rep
        if matrix == "q":
            out = self.attend(new[s_idx], self.k[kv], self.v[kv])
        else:
            out = self.attend(self.q[q_idx], new[s_idx], self.v[kv])
        t = self.x.shape[0]
        values = torch.zeros(len(ms), width_p, t, self.hd, dtype=torch.float64)
        values[b_idx, slot_idx] = out - self.wt[q_idx]
        head_of = torch.full((len(ms), width_p), self.hq * self.hd, dtype=torch.long)  # padding: past the edge
        head_of[b_idx, slot_idx] = q_idx * self.hd
        index = (head_of[:, :, None] + torch.arange(self.hd)).reshape(len(ms), -1)
        return values.permute(0, 2, 1, 3).reshape(len(ms), t, -1), index

    def full_norm(self, matrix: str) -> bool:
        """Whether a norm over all heads (OLMo 2) follows the projection, so a tile changes every head."""
        norm = self.norm(matrix)
        return norm is not None and norm.weight.numel() != self.hd

    def affected(self, m: Mutation, matrix: str, n_heads: int) -> range:
        """The heads (of the mutated projection) whose inputs a tile changes."""
        if self.full_norm(matrix):
            return range(n_heads)
        return range(m.r0 // self.hd, (m.r1 - 1) // self.hd + 1)

    def features(self, h: int, matrix: str) -> int:
        """An upper bound of the readout features one mutant of tile height ``h`` changes."""
        heads = min(h // self.hd + 2, self.hq if matrix == "q" else self.hkv)
        return min(self.hq, heads * (1 if matrix == "q" else self.hq // self.hkv)) * self.hd


class _Mlp:
    """One layer's MLP up to ``down``'s input, from the recorded projections."""

    def __init__(self, subject: Subject, rec: LayerRecord, layer: int):
        anatomy = subject.anatomy
        self.gated = "gate" in anatomy.matrices
        self.refs = {m: anatomy.ref(layer, m) for m in ("gate", "up") if m in anatomy.matrices}
        self.act = _activation(subject.model.get_submodule(_parent(anatomy.ref(layer, "down").module_path)))
        first = self.refs["gate" if self.gated else "up"]
        self.x = rec.inputs[first.module_path].to(torch.float64)
        self.pre = rec.outputs[first.module_path][:, first.offset : first.offset + first.shape[0]].to(torch.float64)
        up = self.refs["up"]
        self.up = (
            rec.outputs[up.module_path][:, up.offset : up.offset + up.shape[0]].to(torch.float64)
            if self.gated
            else None
        )

    def changes(self, subject: Subject, ms: Sequence[Mutation], matrix: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Each mutant's exact change of ``down``'s input: (B, T, h) values at the tile's channels (B, h)."""
        part, rows = _output_changes(subject, self.x, ms)
        at = rows.clamp(max=self.pre.shape[1] - 1)
        pre = self.pre.T[at].transpose(1, 2)  # (B, T, h)
        change = self.act(pre + part) - self.act(pre)
        if self.up is None:  # a gateless MLP: the activation's output is the change
            return change, rows
        return change * self.up.T[at].transpose(1, 2), rows

    def features(self, h: int, matrix: str) -> int:
        return h


def _stage(subject: Subject, rec: LayerRecord, layer: int, matrix: str):
    return _Attention(subject, rec, layer) if matrix in ("q", "k") else _Mlp(subject, rec, layer)


def local_changes(
    subject: Subject, recording: Recording, layer: int, matrix: str, mutations: Sequence[Mutation]
) -> Iterator[tuple[list[Mutation], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Batches of (mutants, their exact changes (B, T, n) at readout features (B, n), the gradient
    there (T, width)); :func:`dense` makes the changes whole.

    The readout point is ``o``'s input for ``q``/``k``, ``down``'s input for ``gate`` and a
    gateless MLP's ``up``. ``noise:X`` kinds are left out (no estimate, as first order).
    """
    rec = recording.layers[layer]
    readout = "o" if matrix in ("q", "k") else "down"
    if readout not in rec.grads:
        raise ModelLoadError(f"no gradient was recorded at layer {layer}'s {readout} input")
    grad = rec.grads[readout].to(torch.float64)
    ms = [m for m in mutations if m.kind.name != "noise"]
    if not ms:
        return
    with torch.no_grad():
        stage = _stage(subject, rec, layer, matrix)
        n = stage.features(max(m.height for m in ms), matrix)
        per = max(1, CHUNK_BYTES // (8 * grad.shape[0] * n))
        for i in range(0, len(ms), per):
            chunk = ms[i : i + per]
            part, index = stage.changes(subject, chunk, matrix)
            yield chunk, part, index, grad


def local_effects(subject: Subject, recording: Recording, by_key: dict[Key, list[Mutation]]) -> dict[int, float]:
    """The local estimate of ``logprob_drop`` (minus the change of the recorded objective) of every
    mutant of a matrix with an exact step; the others are first order (the caller's)."""
    out: dict[int, float] = {}
    for (layer, matrix), ms in by_key.items():
        if (layer, matrix) not in recording.keys:
            continue
        for chunk, part, index, grad in local_changes(subject, recording, layer, matrix, ms):
            padded = torch.cat([grad, torch.zeros(grad.shape[0], 1, dtype=grad.dtype)], dim=1)  # padding reads 0
            at = padded.T[index.clamp(max=grad.shape[1])].transpose(1, 2)  # (B, T, n)
            values = -(part * at).sum(dim=(1, 2))
            out.update({m.mutation_id: float(v) for m, v in zip(chunk, values)})
    return out


__all__ = [
    "ATTENTION_FAMILIES",
    "Recording",
    "check_supported",
    "dense",
    "is_local",
    "local_changes",
    "local_effects",
    "recording",
]
