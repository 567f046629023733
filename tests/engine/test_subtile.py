"""The reference and batched engines give identical outcomes on mutants of any rectangle:
sub-tile blocks, ragged ones at a matrix's edge, and single weights, of every kind."""

import pytest

from helpers import text_probes
from mutascope.engine import BatchedEngine, ReferenceEngine, prepare_probes
from mutascope.plan import Kind, Region, region_mutation
from mutascope.testing import tiny_model

KINDS = ("max", "min", "zero", "value:3", "scale:-4", "sym:-1", "noise:0.5")
# (layer, matrix, region): interior blocks, a ragged edge block (96 x 200 down, 96-wide q), single weights
SITES = [
    (0, "q", Region(0, 16, 0, 16)),
    (0, "q", Region(64, 96, 80, 96)),
    (1, "down", Region(70, 96, 190, 200)),
    (1, "down", Region(5, 6, 101, 102)),
    (2, "up", Region(199, 200, 95, 96)),
    (2, "v", Region(3, 4, 0, 64)),
    (1, "o", Region(0, 96, 17, 18)),
]


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_engines_agree_on_sub_tile_mutants(family):
    subject = tiny_model(family)
    probes = prepare_probes(subject, ReferenceEngine(subject), text_probes(6))
    mutations = []
    for layer, matrix, region in SITES:
        shape = subject.anatomy.ref(layer, matrix).shape
        region = Region(
            min(region.r0, shape[0] - 1),
            min(region.r1, shape[0]),
            min(region.c0, shape[1] - 1),
            min(region.c1, shape[1]),
        )
        for kind in KINDS:
            mutations.append(
                region_mutation(subject.anatomy, layer, matrix, region, Kind.parse(kind), (64, 64), len(mutations))
            )
    assert any(m.height == m.width == 1 for m in mutations) and all(m.subtile for m in mutations)
    before = subject.content_hash()
    ref = [
        (r.mutation_id, r.probe_id, r.divergence, r.tokens)
        for rs in ReferenceEngine(subject).run(mutations, probes)
        for r in rs
    ]
    fast = [
        (r.mutation_id, r.probe_id, r.divergence, r.tokens)
        for rs in BatchedEngine(subject, batch_size=5).run(mutations, probes)
        for r in rs
    ]
    assert fast == ref
    assert any(d is not None for _, _, d, _ in ref) and any(d is None for _, _, d, _ in ref)
    assert subject.content_hash() == before
