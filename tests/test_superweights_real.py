"""Super weights of the real SmolLM2-135M-Instruct (CPU, a few minutes at most)."""

import pytest

from mutascope import load_model
from mutascope import superweights as sw


@pytest.mark.real_model
def test_smollm2_super_weights_destroy_the_model_other_large_weights_do_not():
    subject = load_model()
    before = subject.content_hash()
    found = sw.detect(subject, max_iterations=1)  # the unmodified model's super weights
    assert found.coords == [(2, 507, 90), (11, 507, 1229)]
    assert sw.check(subject.model_id, found.coords).ok
    assert {a.channel for a in found.activations} == {507}
    assert max(found.activations[1].magnitudes) > 20_000

    work = sw.Workload(sw.corpus_ids(subject, sw.default_corpus(), 256), window=256, prompts=())
    original = work.measure(subject, "original").perplexity
    with sw.zeroed(subject, found.coords):
        zeroed = work.measure(subject, "zero").perplexity
    with sw.top_zeroed(subject, 1e-6, exclude=found.coords) as chosen:
        others = work.measure(subject, "top").perplexity
    assert len(chosen) == 107
    assert zeroed > 10 * original
    assert others < 2 * original
    assert subject.content_hash() == before
