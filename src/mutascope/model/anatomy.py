"""Where the mutable matrices of a causal LM live, whatever its architecture.

Everything downstream (tiling, mutation, screens) speaks in canonical terms:
``(layer, matrix)`` with ``matrix`` one of :data:`MATRICES`, and ``(row, col)``
= (output feature, input feature). This module is the only place that knows
how each architecture stores those matrices: separate ``nn.Linear`` weights
(Llama family, OPT), weights fused along the output dimension (Phi-3
``qkv_proj`` / ``gate_up_proj``, GPT-2 ``c_attn``), or transposed storage
(GPT-2 ``Conv1D``). Detection is by module names from a table, not by model
type, so new models that reuse known layouts work without changes.
Embeddings, ``lm_head`` and norms are never catalogued, so never mutated;
neither are mixture-of-experts expert weights (only their attention matrices
are found).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import torch

from ..errors import InputError, ModelLoadError
from .source import MATRICES  # noqa: F401 (the canonical names; re-exported)

# (path of the submodule inside one decoder block, canonical parts it holds in
# output-feature order, whether it must be a GPT-2 Conv1D). A part tuple with
# more than one name is a weight fused along its output dimension.
_LAYOUTS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    # Llama family (Llama, Mistral, Qwen2/3, Gemma 1-3, OLMo 1-2, ...), OPT, Phi-1/2
    ("self_attn.q_proj", ("q",), False),
    ("self_attn.k_proj", ("k",), False),
    ("self_attn.v_proj", ("v",), False),
    ("self_attn.o_proj", ("o",), False),
    ("self_attn.out_proj", ("o",), False),
    ("self_attn.dense", ("o",), False),
    ("mlp.gate_proj", ("gate",), False),
    ("mlp.up_proj", ("up",), False),
    ("mlp.down_proj", ("down",), False),
    ("fc1", ("up",), False),
    ("fc2", ("down",), False),
    ("mlp.fc1", ("up",), False),
    ("mlp.fc2", ("down",), False),
    # GPT-J
    ("attn.q_proj", ("q",), False),
    ("attn.k_proj", ("k",), False),
    ("attn.v_proj", ("v",), False),
    ("attn.out_proj", ("o",), False),
    ("mlp.fc_in", ("up",), False),
    ("mlp.fc_out", ("down",), False),
    # Phi-3: q|k|v and gate|up concatenated along the output dimension
    ("self_attn.qkv_proj", ("q", "k", "v"), False),
    ("mlp.gate_up_proj", ("gate", "up"), False),
    # GPT-2: Conv1D weights stored (in, out); c_attn is q|k|v along out
    ("attn.c_attn", ("q", "k", "v"), True),
    ("attn.c_proj", ("o",), True),
    ("mlp.c_fc", ("up",), True),
    ("mlp.c_proj", ("down",), True),
)

# Fused qkv weights whose rows interleave q, k and v per head: mapping them
# onto canonical matrices needs a per-head gather, not a slice.
_UNSUPPORTED_LEAVES = ("query_key_value",)


def weight_of(module: torch.nn.Module) -> torch.Tensor:
    """A Linear-like module's weight, as a tensor (``nn.Module`` types its attributes as
    tensor-or-module, so the one narrowing is here)."""
    weight = module.weight
    assert isinstance(weight, torch.Tensor), f"{type(module).__name__} has no weight tensor"
    return weight


@dataclass(frozen=True)
class MatrixRef:
    """One canonical matrix: where its weight is stored and how to slice it."""

    layer: int
    matrix: str
    module_path: str
    param_name: str
    shape: tuple[int, int]
    offset: int
    transposed: bool


class Anatomy:
    """The catalogue of a model's mutable matrices, with views into their weights."""

    def __init__(self, model: torch.nn.Module, family: str, refs: list[MatrixRef], blocks_path: str = ""):
        self.model = model
        self.family = family
        self.blocks_path = blocks_path
        self._refs = {(r.layer, r.matrix): r for r in refs}
        self.n_layers = 1 + max(r.layer for r in refs)
        present = {r.matrix for r in refs}
        self.matrices = tuple(m for m in MATRICES if m in present)

    def __repr__(self) -> str:
        return f"Anatomy(family={self.family!r}, n_layers={self.n_layers}, matrices={self.matrices})"

    def ref(self, layer: int, matrix: str) -> MatrixRef:
        """Look up one matrix, with errors that list what is valid."""
        if matrix not in MATRICES:
            raise InputError(f"unknown matrix {matrix!r}; valid names: {', '.join(MATRICES)}")
        if matrix not in self.matrices:
            raise InputError(
                f"matrix {matrix!r} does not exist in this {self.family} model; it has: {', '.join(self.matrices)}"
            )
        try:
            layer = operator.index(layer)
        except TypeError:
            raise InputError(f"layer must be an integer, got {layer!r}") from None
        if not 0 <= layer < self.n_layers:
            raise InputError(f"layer {layer} out of range; this model has layers 0-{self.n_layers - 1}")
        return self._refs[(layer, matrix)]

    def weight(self, layer: int, matrix: str) -> torch.Tensor:
        """A canonical ``(out, in)`` view sharing storage with the parameter.

        Writing into the view writes the model weight, so a mutation costs no
        copy of the matrix and cannot drift from what the forward pass uses.
        """
        r = self.ref(layer, matrix)
        param = weight_of(self.model.get_submodule(r.module_path)).detach()
        n = r.shape[0]
        if r.transposed:
            return param[:, r.offset : r.offset + n].T
        return param[r.offset : r.offset + n, :]

    def block_path(self, layer: int) -> str:
        """Dotted path of decoder block ``layer`` (e.g. ``model.layers.3``)."""
        if not 0 <= layer < self.n_layers:
            raise InputError(f"layer {layer} is out of range: the model has layers 0-{self.n_layers - 1}")
        return f"{self.blocks_path}.{layer}"

    def refs(self) -> list[MatrixRef]:
        """Every matrix, layer-major, then in :data:`MATRICES` order."""
        order = {m: i for i, m in enumerate(MATRICES)}
        return sorted(self._refs.values(), key=lambda r: (r.layer, order[r.matrix]))


def anatomy_of(model: torch.nn.Module) -> Anatomy:
    """Find the decoder blocks and catalogue their matrices."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    family = getattr(config, "model_type", None) or type(model).__name__
    blocks_path, blocks = _find_blocks(model)
    if blocks is None:
        raise ModelLoadError(
            f"unrecognised architecture {type(model).__name__}: no list of decoder layers "
            "with known q/k/v/o/gate/up/down submodules was found"
        )
    refs: list[MatrixRef] = []
    first: set[str] | None = None
    for i, block in enumerate(blocks):
        _reject_unsupported(block, family)
        layer_refs = [
            ref
            for path, parts, conv1d in _LAYOUTS
            for ref in _layout_refs(block, f"{blocks_path}.{i}", i, path, parts, conv1d, config)
        ]
        names = [r.matrix for r in layer_refs]
        if len(set(names)) != len(names):
            raise ModelLoadError(
                f"layer {i} of this {family} model has more than one candidate for a matrix "
                f"({', '.join(sorted(names))}); this layout is not supported yet"
            )
        if first is None:
            first = set(names)
        elif set(names) != first:
            raise ModelLoadError(
                f"layer {i} of this {family} model has matrices {sorted(names)}, layer 0 has "
                f"{sorted(first)}; models whose layers differ are not supported yet"
            )
        refs += layer_refs
    return Anatomy(model, family, refs, blocks_path)


def _match_count(block: torch.nn.Module) -> int:
    """How many known matrices a block holds; unsupported fused layouts count too,
    so such models are found and rejected by name rather than as unrecognised."""
    known = sum(len(parts) for path, parts, _ in _LAYOUTS if _get(block, path) is not None)
    odd = sum(name.rsplit(".", 1)[-1] in _UNSUPPORTED_LEAVES for name, _ in block.named_modules())
    return known + 3 * odd


def _find_blocks(model: torch.nn.Module) -> tuple[str, torch.nn.ModuleList | None]:
    """The ModuleList of decoder blocks: the one whose blocks hold the most known matrices.

    Ties go to the longer list, then the first found, so a vision tower in a
    multimodal model loses to its language model.
    """
    best: tuple[str, torch.nn.ModuleList | None] = ("", None)
    best_key = (0, 0)
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            key = (_match_count(module[0]), len(module))
            if key[0] > 0 and key > best_key:
                best, best_key = (name, module), key
    return best


def _get(block: torch.nn.Module, path: str) -> torch.nn.Module | None:
    try:
        return block.get_submodule(path)
    except AttributeError:
        return None


def _reject_unsupported(block: torch.nn.Module, family: str) -> None:
    for name, _ in block.named_modules():
        if name.rsplit(".", 1)[-1] in _UNSUPPORTED_LEAVES:
            raise ModelLoadError(
                f"{family} models fuse q/k/v interleaved per head ({name}); this layout is not supported yet"
            )


def _layout_refs(block, prefix, layer, path, parts, conv1d, config) -> list[MatrixRef]:
    module = _get(block, path)
    if module is None:
        return []
    weight = getattr(module, "weight", None)
    is_conv1d = type(module).__name__ == "Conv1D"
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2 or conv1d != is_conv1d:
        raise ModelLoadError(
            f"{prefix}.{path} is a {type(module).__name__}, not the "
            f"{'Conv1D' if conv1d else 'Linear-like'} layer expected there; "
            "this layout is not supported yet"
        )
    out_features, in_features = weight.shape[::-1] if is_conv1d else weight.shape
    sizes = _split_sizes(parts, out_features, config, f"{prefix}.{path}")
    refs, offset = [], 0
    for part, size in zip(parts, sizes):
        refs.append(
            MatrixRef(
                layer=layer,
                matrix=part,
                module_path=f"{prefix}.{path}",
                param_name=f"{prefix}.{path}.weight",
                shape=(size, int(in_features)),
                offset=offset,
                transposed=is_conv1d,
            )
        )
        offset += size
    return refs


def _split_sizes(parts: tuple[str, ...], total: int, config, where: str) -> list[int]:
    """Output sizes of the parts of a (possibly fused) weight, checked against its size."""
    if len(parts) == 1:
        return [int(total)]
    if parts == ("q", "k", "v"):
        heads = getattr(config, "num_attention_heads", None)
        hidden = getattr(config, "hidden_size", None)
        head_dim = getattr(config, "head_dim", None) or (hidden // heads if heads and hidden else None)
        kv_heads = getattr(config, "num_key_value_heads", None) or heads
        if not (heads and head_dim):
            raise ModelLoadError(f"cannot split fused {where}: the config lacks head counts")
        sizes = [heads * head_dim, kv_heads * head_dim, kv_heads * head_dim]
    elif parts == ("gate", "up"):
        sizes = [total // 2, total // 2]
        inter = getattr(config, "intermediate_size", None)
        if inter is not None and inter != total // 2:
            sizes = [inter, inter]
    else:  # pragma: no cover - the layout table only holds the two shapes above
        raise AssertionError(parts)
    if sum(sizes) != total:
        raise ModelLoadError(
            f"cannot split fused {where}: the config gives parts {'+'.join(map(str, sizes))} "
            f"but the weight has {total} output features; this layout is not supported yet"
        )
    return sizes
