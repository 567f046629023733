"""Row deltas compute each mutant's projection with the numbers the reference engine uses."""

import pytest
import torch

from mutascope.engine.deltas import TileDelta, row_deltas
from mutascope.plan import PlanSpec, applied, build_plan
from mutascope.testing import tiny_model


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])  # plain Linear; Conv1D with bias; fused q|k|v, gate|up
def test_low_precision_rows_equal_the_written_tile_bit_for_bit(family):
    """In bfloat16, ``W x + (V - W) x`` rounds twice where the written tile rounds once; the
    hook must give the mutant row exactly the logits of the model with the tile written."""
    subject = tiny_model(family, dtype="bfloat16")
    model = subject.model
    ids = torch.tensor([[1, 40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50]])
    plan = build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy)
    for m in plan.mutations[:: max(1, len(plan) // 12)]:
        with torch.inference_mode():
            with applied(subject.anatomy.weight(m.layer, m.matrix), m):
                written = model(ids).logits[0]
            deltas = [None, TileDelta.of(subject.anatomy, m), None]
            with row_deltas(model, deltas):
                batched = model(ids.expand(3, -1)).logits
        assert torch.equal(batched[1], written), m.label()
        assert torch.equal(batched[0], batched[2])
