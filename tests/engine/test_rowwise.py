"""Running chosen projections one row at a time: the reference's single-row arithmetic, and nothing left behind."""

import torch

from mutascope.engine.rowwise import one_row_at_a_time, row_dependent
from mutascope.testing import tiny_model


def test_one_row_at_a_time_computes_each_row_alone_and_restores_the_module():
    model = tiny_model("llama", dtype="bfloat16").model
    path = "model.layers.0.mlp.down_proj"
    module = model.get_submodule(path)
    x = torch.randn(5, 1, module.in_features).to(torch.bfloat16)
    alone = torch.cat([module(x[i : i + 1]) for i in range(5)])
    with torch.inference_mode(), one_row_at_a_time(model, [path]):
        assert "forward" in vars(module)
        assert torch.equal(module(x), alone)
        assert torch.equal(module(x[:1]), alone[:1])
    assert "forward" not in vars(module)


def test_row_dependent_names_only_projections_and_is_repeatable():
    model = tiny_model("gpt2", dtype="bfloat16").model
    found = row_dependent(model)
    kinds = {type(model.get_submodule(p)).__name__ for p in found}
    assert kinds <= {"Linear", "Conv1D"}
    assert row_dependent(model) == found


def test_one_row_at_a_time_follows_a_weight_changed_in_place():
    """A prepacked copy of the weight (where the math library keeps one) is made again when the
    weight changes in place, as the reference engine's tile writes do: rows stay the module's own."""
    model = tiny_model("llama", dtype="bfloat16").model
    path = "model.layers.0.mlp.down_proj"
    module = model.get_submodule(path)
    x = torch.randn(4, 1, module.in_features).to(torch.bfloat16)
    for change in (0.0, 3.0):
        with torch.no_grad():
            module.weight[:8, :8] += change
        alone = torch.cat([module(x[i : i + 1]) for i in range(4)])
        with torch.inference_mode(), one_row_at_a_time(model, [path]):
            assert torch.equal(module(x), alone)
