"""Mutations of any rectangle (``mutascope zoom``'s sub-blocks): bounds, values, noise seeds, store."""

import duckdb
import pytest
import torch

from mutascope.errors import MutascopeError
from mutascope.plan import Kind, PlanSpec, Region, applied, build_plan, region_mutation
from mutascope.store import mutation_table, read_mutations
from mutascope.store.db import insert
from mutascope.store.schema import create
from mutascope.testing import tiny_model


def test_halves_cover_the_region_and_odd_sizes_give_the_first_half_the_extra():
    r = Region(0, 5, 10, 13)
    halves = r.halves()
    assert halves["rows"] == (Region(0, 3, 10, 13), Region(3, 5, 10, 13))
    assert halves["cols"] == (Region(0, 5, 10, 12), Region(0, 5, 12, 13))
    assert set(Region(2, 3, 0, 4).halves()) == {"cols"} and Region(1, 2, 7, 8).halves() == {}


def test_a_whole_tile_is_the_plans_own_mutant_and_a_sub_block_is_not():
    subject = tiny_model("llama")
    plan = build_plan(PlanSpec.parse(layers="1", matrices="down", kinds="max,noise:0.1"), subject.anatomy)
    for m in plan.mutations:  # ragged edge tiles too (96 x 200 with 64 x 64 tiles)
        again = region_mutation(
            subject.anatomy, 1, "down", Region(m.r0, m.r1, m.c0, m.c1), m.kind, (64, 64), m.mutation_id
        )
        assert again == m and not again.subtile
    sub = region_mutation(subject.anatomy, 1, "down", Region(64, 96, 130, 131), Kind("max"), (64, 64))
    assert (sub.row, sub.col, sub.subtile, sub.height, sub.width) == (1, 2, True, 32, 1)
    assert sub.value == plan.mutations[0].value  # max: the whole matrix's max, as for tiles
    with pytest.raises(MutascopeError, match="outside matrix layer 1 down"):
        region_mutation(subject.anatomy, 1, "down", Region(90, 97, 0, 1), Kind("zero"), (64, 64))


def test_noise_of_two_regions_of_one_tile_is_independent_and_restored():
    subject = tiny_model("llama")
    w = subject.anatomy.weight(0, "q")
    before = w.clone()
    a = region_mutation(subject.anatomy, 0, "q", Region(0, 4, 0, 4), Kind.parse("noise:1"), (64, 64))
    b = region_mutation(subject.anatomy, 0, "q", Region(0, 4, 4, 8), Kind.parse("noise:1"), (64, 64))
    deltas = []
    for m in (a, b):
        with applied(w, m):
            deltas.append((w[m.r0 : m.r1, m.c0 : m.c1] - before[m.r0 : m.r1, m.c0 : m.c1]).clone())
    assert not torch.allclose(deltas[0], deltas[1])
    assert torch.equal(w, before)


def test_the_mutations_table_keeps_a_regions_bounds():
    subject = tiny_model("llama")
    m = region_mutation(subject.anatomy, 2, "up", Region(7, 8, 33, 35), Kind.parse("scale:-2"), (64, 64), 5)
    con = duckdb.connect()
    create(con)
    insert(con, "mutations", mutation_table([m]))
    back = read_mutations(con)[5]
    assert (back.r0, back.r1, back.c0, back.c1, back.kind, back.value) == (7, 8, 33, 35, m.kind, m.value)
