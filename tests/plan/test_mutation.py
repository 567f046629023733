import pytest
import torch

from mutascope.errors import MutascopeError
from mutascope.plan import Kind, Mutation, TileGrid, applied, kind_value, mutated_tile


def test_kind_parse_and_str():
    assert Kind.parse("max") == Kind("max")
    assert Kind.parse("value:0.5") == Kind("value", 0.5)
    assert str(Kind.parse("scale:2")) == "scale:2"
    for bad in ("maximum", "value:", "value:x", "scale:nan", "zero:1"):
        with pytest.raises(MutascopeError):
            Kind.parse(bad)


def test_tile_grid_ragged_edges_are_kept():
    grid = TileGrid((200, 96), (64, 64))
    assert (grid.n_rows, grid.n_cols, len(grid)) == (4, 2, 8)
    assert grid.bounds(0, 0) == (0, 64, 0, 64)
    assert grid.bounds(3, 1) == (192, 200, 64, 96)  # 8 x 32 edge tile
    covered = torch.zeros(200, 96, dtype=torch.int32)
    for r in range(grid.n_rows):
        for c in range(grid.n_cols):
            r0, r1, c0, c1 = grid.bounds(r, c)
            covered[r0:r1, c0:c1] += 1
    assert bool((covered == 1).all())  # every element in exactly one tile
    with pytest.raises(MutascopeError):
        grid.bounds(4, 0)


def test_kind_values_come_from_the_whole_matrix():
    w = torch.tensor([[1.0, -3.0], [7.5, 0.25]])
    assert kind_value(Kind("max"), w) == 7.5
    assert kind_value(Kind("min"), w) == -3.0
    assert kind_value(Kind("zero"), w) == 0.0
    assert kind_value(Kind("value", 2.0), w) == 2.0
    assert torch.equal(mutated_tile(w, Kind("scale", 2.0), 2.0), w * 2)


def test_applied_writes_exactly_the_tile_and_restores_bits():
    torch.manual_seed(0)
    w = torch.randn(130, 70)
    before = w.clone()
    m = Mutation(
        mutation_id=0,
        layer=0,
        matrix="q",
        row=2,
        col=1,
        kind=Kind("max"),
        value=float(w.max()),
        r0=128,
        r1=130,
        c0=64,
        c1=70,
    )
    with applied(w, m):
        changed = w != before
        assert bool((w[128:130, 64:70] == before.max()).all())
        changed[128:130, 64:70] = False
        assert not bool(changed.any())
    assert torch.equal(w, before)


def test_applied_restores_after_an_exception():
    w = torch.randn(64, 64)
    before = w.clone()
    m = Mutation(
        mutation_id=0, layer=0, matrix="q", row=0, col=0, kind=Kind("zero"), value=0.0, r0=0, r1=64, c0=0, c1=64
    )
    with pytest.raises(KeyboardInterrupt):
        with applied(w, m):
            assert bool((w == 0).all())
            raise KeyboardInterrupt
    assert torch.equal(w, before)


def test_control_kinds_size_matched_and_noise():
    from mutascope.plan import parse_kinds
    from mutascope.plan.kinds import noise_tile

    w = torch.tensor([[1.0, -3.0], [7.5, 0.25]])  # a = max(|7.5|, |-3|) = 7.5
    assert kind_value(Kind.parse("sym:1"), w) == 7.5 and kind_value(Kind.parse("sym:-1"), w) == -7.5
    assert kind_value(Kind.parse("sym:0.5"), w) == 3.75 and kind_value(Kind.parse("noise:0.1"), w) == 0.75
    assert parse_kinds("max,sym") == (Kind("max"), Kind("sym", 1.0), Kind("sym", -1.0))
    for bad in ("noise:0", "noise:-1", "sym:x"):
        with pytest.raises(MutascopeError):
            Kind.parse(bad)
    tile = torch.zeros(64, 64)
    kind = Kind.parse("noise:1")
    a = mutated_tile(tile, kind, 2.0, (3, "down", 1, 2))
    assert torch.equal(a, mutated_tile(tile, kind, 2.0, (3, "down", 1, 2)))  # a pure function of the site
    assert not torch.equal(a, mutated_tile(tile, kind, 2.0, (3, "down", 1, 3)))
    assert float(a.pow(2).mean().sqrt()) == pytest.approx(2.0, rel=1e-6)  # matched norm: RMS = value exactly
    assert abs(float(a.mean())) < 0.1 and torch.equal(noise_tile((64, 64), 2.0, (3, "down", 1, 2), kind), a)
    with pytest.raises(ValueError):
        mutated_tile(tile, kind, 2.0)  # noise needs its site
