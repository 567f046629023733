"""Projections that round differently for one row than for many, and running them one row at a time.

The reference engine decodes one sequence: after the prompt, every
projection multiplies a single row. A batched engine multiplies many rows at
once. In float32 the two differ in the last bits only, far below the
near-tie tolerance. In bfloat16 they can differ by a whole bfloat16 step:
the math library may pick another kernel for a single row (measured on an
AVX512-BF16 CPU: SmolLM2's ``down`` projection, 1536 inputs, rounds
differently for one row than for 2 to 128 rows; its 576-input projections
and the LM head do not). Which shapes differ is a property of the kernels,
not of the numbers, so it is measured once per distinct projection shape, on
random rows, at the current thread count. Within :func:`one_row_at_a_time`,
those projections compute a single-position batch row by row, which is the
reference's operation exactly.

Row by row, a ``Linear`` reads its whole weight once per row, and the math
library first copies a plain weight into its own blocked layout, on every
call. Where the library can keep that copy (oneDNN's prepacked weights on
CPU) and a row computed from it is, bit for bit, the row computed by the
module alone (checked once per shape on random rows), :func:`one_row_at_a_time`
uses the copy: the same kernel without the per-call copy, about twice as fast
for SmolLM2's ``down``. The copy is made again whenever the weight changes in
place (the reference engine writes and restores tiles).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import torch

# Row counts compared with a single row: a kernel may switch at any of them.
PROBE_ROWS = (2, 3, 8, 33, 128)


def _projections(model: torch.nn.Module) -> Iterator[tuple[str, torch.nn.Module, torch.Tensor, int]]:
    """Every Linear-like module (a Linear, or GPT-2's transposed Conv1D), with its weight and input width."""
    for path, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            continue
        if isinstance(module, torch.nn.Linear):
            yield path, module, weight, int(weight.shape[1])
        elif type(module).__name__ == "Conv1D":
            yield path, module, weight, int(weight.shape[0])


@torch.inference_mode()
def row_dependent(model: torch.nn.Module, seed: int = 0) -> list[str]:
    """Paths of the projections whose result for a row depends on how many rows share the call.

    Each distinct (type, weight shape, dtype, bias) is tried once, with the
    module's own weights on random inputs: a batch of ``n`` rows of one
    position against the same rows one at a time, for each ``n`` in
    :data:`PROBE_ROWS`, bit for bit.
    """
    generator = torch.Generator().manual_seed(seed)
    verdicts: dict[tuple, bool] = {}
    found = []
    for path, module, weight, width in _projections(model):
        key = (type(module), tuple(weight.shape), weight.dtype, getattr(module, "bias", None) is None)
        if key not in verdicts:
            x = torch.randn(max(PROBE_ROWS), 1, width, generator=generator).to(weight.device, weight.dtype)
            alone = torch.cat([module(x[i : i + 1]) for i in range(len(x))])
            verdicts[key] = any(not torch.equal(module(x[:n]), alone[:n]) for n in PROBE_ROWS)
        if verdicts[key]:
            found.append(path)
    return found


# One row at a time, with prepacked weights: per module, the weight's identity and
# version it was packed from, and the kernel (None where packing is not exact).
_PACKED: weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple[int, int], Callable | None]] = (
    weakref.WeakKeyDictionary()
)
_PACKING_EXACT: dict[tuple, bool] = {}  # per (weight shape, dtype, bias, threads): packed rows equal the module's


def _packer() -> Callable[[torch.Tensor], torch.Tensor] | None:
    """oneDNN's weight prepacking for a single row, where this build of torch has it."""
    mkldnn = getattr(torch.ops, "mkldnn", None)
    reorder = getattr(mkldnn, "_reorder_linear_weight", None)
    if reorder is None or not hasattr(mkldnn, "_linear_pointwise") or not torch.backends.mkldnn.is_available():
        return None
    return lambda weight: reorder(weight, 1)


def _packed_kernel(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A single-row kernel for a CPU ``Linear`` from a prepacked weight, or None.

    None unless the packed kernel computes random rows bit for bit as the
    module does (one check per shape, dtype and thread count).
    """
    weight = getattr(module, "weight", None)
    if not isinstance(module, torch.nn.Linear) or weight is None or weight.device.type != "cpu":
        return None
    identity = (id(weight), weight._version)
    cached = _PACKED.get(module)
    if cached is not None and cached[0] == identity:
        return cached[1]
    kernel: Callable[[torch.Tensor], torch.Tensor] | None = None
    pack = _packer()
    if pack is not None and weight.dtype in (torch.bfloat16, torch.float16):
        try:
            packed = pack(weight.detach())
            bias = None if module.bias is None else module.bias.detach()

            def from_packed(x: torch.Tensor) -> torch.Tensor:
                return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")

            key = (tuple(weight.shape), weight.dtype, bias is None, torch.get_num_threads())
            if key not in _PACKING_EXACT:
                _PACKING_EXACT[key] = _agrees(module, from_packed)
            kernel = from_packed if _PACKING_EXACT[key] else None
        except RuntimeError:  # a build whose oneDNN cannot pack this weight
            kernel = None
    _PACKED[module] = (identity, kernel)
    return kernel


def _agrees(module: torch.nn.Module, kernel: Callable[[torch.Tensor], torch.Tensor], rows: int = 32) -> bool:
    """Whether ``kernel`` computes random single rows bit for bit as ``module`` does."""
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(rows, 1, int(weight.shape[1]), generator=generator).to(weight.device, weight.dtype)
    alone = type(module).forward  # the class's own, without hooks or a patched instance forward
    return all(torch.equal(kernel(x[i]), alone(module, x[i])) for i in range(rows))


@contextlib.contextmanager
def one_row_at_a_time(model: torch.nn.Module, paths: list[str]) -> Iterator[None]:
    """While active, the modules at ``paths`` compute a batch row by row.

    Meant for single-position decoding steps only (a prompt pass multiplies
    many positions in the reference too). Each module's ``forward`` is patched
    per instance, so forward hooks (:mod:`.deltas`) still apply to its output;
    batches are split along their first dimension, which is also right for
    models that flatten batch and position before a projection (one position).
    """
    patched = []

    def rowwise(forward, kernel):
        def run(x, *args, **kwargs):
            if x.shape[0] < 2:
                return forward(x, *args, **kwargs)
            if kernel is not None and x.numel() == x.shape[0] * x.shape[-1] and not args and not kwargs:
                flat = x.reshape(x.shape[0], x.shape[-1])
                return torch.cat([kernel(flat[i : i + 1]) for i in range(x.shape[0])]).view(*x.shape[:-1], -1)
            return torch.cat([forward(x[i : i + 1], *args, **kwargs) for i in range(x.shape[0])])

        return run

    try:
        for path in paths:
            module = model.get_submodule(path)
            module.forward = rowwise(module.forward, _packed_kernel(module))
            patched.append(module)
        yield
    finally:
        for module in patched:
            del module.forward
