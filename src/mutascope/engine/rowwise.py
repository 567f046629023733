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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

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

    def rowwise(forward):
        def run(x, *args, **kwargs):
            if x.shape[0] < 2:
                return forward(x, *args, **kwargs)
            return torch.cat([forward(x[i : i + 1], *args, **kwargs) for i in range(x.shape[0])])

        return run

    try:
        for path in paths:
            module = model.get_submodule(path)
            module.forward = rowwise(module.forward)
            patched.append(module)
        yield
    finally:
        for module in patched:
            del module.forward
