import pytest

from mutascope.errors import MutascopeError
from mutascope.plan import Kind, PlanSpec, build_plan, parse_indices
from mutascope.testing import tiny_model


@pytest.fixture(scope="module")
def subject():
    return tiny_model("llama")


def test_parse_indices():
    assert parse_indices("0-3,7,2", "layer") == (0, 1, 2, 3, 7)
    assert parse_indices("all", "layer") is None
    for bad in ("3-1", "a", "1-x"):
        with pytest.raises(MutascopeError):
            parse_indices(bad, "layer")


def test_order_is_layer_matrix_column_outer_row_inner_kind_innermost(subject):
    plan = build_plan(PlanSpec.parse(layers="1", matrices="gate", kinds="max,min"), subject.anatomy)
    grid = plan.grids[(1, "gate")]
    expected = [(c, r, k) for c in range(grid.n_cols) for r in range(grid.n_rows) for k in ("max", "min")]
    assert [(m.col, m.row, str(m.kind)) for m in plan] == expected
    assert [m.mutation_id for m in plan] == list(range(len(plan)))
    assert len(plan) == 2 * len(grid)


def test_plan_is_deterministic_and_values_are_matrix_extremes(subject):
    spec = PlanSpec.parse(layers="0-1", matrices="q,down", kinds="max,min,zero,value:0.5,scale:2")
    a, b = build_plan(spec, subject.anatomy), build_plan(spec, subject.anatomy)
    assert a.mutations == b.mutations
    for m in a:
        w = subject.anatomy.weight(m.layer, m.matrix)
        expected = {"max": w.max().item(), "min": w.min().item(), "zero": 0.0, "value": 0.5, "scale": 2.0}
        assert m.value == expected[m.kind.name]


def test_ragged_edge_tiles_are_planned(subject):
    plan = build_plan(PlanSpec.parse(layers="0", matrices="gate", kinds="max"), subject.anatomy)
    rows, cols = subject.anatomy.ref(0, "gate").shape
    last = [m for m in plan if m.r1 == rows and m.c1 == cols]
    assert len(last) == 1 and last[0].height == rows - 64 * (rows // 64 if rows % 64 else rows // 64 - 1)
    assert sum(m.height * m.width for m in plan) == rows * cols


def test_row_and_column_selection_clip_to_each_matrix(subject):
    plan = build_plan(
        PlanSpec.parse(layers="0", matrices="k,gate", rows="1-50", cols="0", kinds="max"), subject.anatomy
    )
    for matrix in ("k", "gate"):
        grid = plan.grids[(0, matrix)]
        assert [m.row for m in plan if m.matrix == matrix] == list(range(1, grid.n_rows))


def test_shards_partition_the_plan_contiguously_in_whole_blocks(subject):
    from mutascope.plan import SHARD_BLOCK

    plan = build_plan(PlanSpec.parse(layers="all", matrices="all", kinds="max,min", tile=16), subject.anatomy)
    assert len(plan) > 5 * SHARD_BLOCK
    shards = [plan.shard(i, 5) for i in range(5)]
    assert [m for s in shards for m in s] == list(plan.mutations)
    assert max(map(len, shards)) - min(map(len, shards)) <= SHARD_BLOCK
    assert all(s[0].mutation_id % SHARD_BLOCK == 0 for s in shards)  # the chunk grid of an unsharded screen
    with pytest.raises(MutascopeError):
        plan.shard(5, 5)
    small = build_plan(PlanSpec.parse(layers="0", matrices="q"), subject.anatomy)
    with pytest.raises(MutascopeError, match="too many"):
        small.shard(1, 2)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"layers": "99"}, "out of range"),
        ({"tile": "4096"}, "larger than matrix"),
        ({"rows": "500"}, "plan is empty"),
    ],
)
def test_bad_plans_fail_clearly(subject, kwargs, message):
    with pytest.raises(MutascopeError, match=message):
        build_plan(PlanSpec.parse(**kwargs), subject.anatomy)


def test_unknown_matrix_is_refused():
    with pytest.raises(MutascopeError, match="unknown matrix"):
        PlanSpec.parse(matrices="q,attn")


def test_spec_round_trips_through_json():
    spec = PlanSpec.parse(layers="0-2", matrices="v", rows="1", cols="0-1", kinds="max,scale:1.5", tile="32x16")
    assert PlanSpec.from_dict(spec.to_dict()) == spec
    assert spec.kinds == (Kind("max"), Kind("scale", 1.5)) and spec.tile == (32, 16)
