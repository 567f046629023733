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


@pytest.mark.real_model
def test_smollm2_block_sweep_and_activation_quantization_small():
    """Per-tensor INT4 collapses SmolLM2 unless the super weights are handled; block 64 barely hurts.
    Per-tensor W16A8 with and without the super activation held."""
    subject = load_model()
    before = subject.content_hash()
    found = sw.detect(subject, max_iterations=1)
    work = sw.Workload(sw.corpus_ids(subject, sw.default_corpus(), 256), window=256, prompts=())
    rows = sw.quantization_table(subject, found.coords, work, block_size=[64, "per-tensor"], bits=[4])
    sweep = sw.store.sweep_frame(rows).set_index(["block_size", "method"])["perplexity"]
    original = rows[0].perplexity
    assert sweep[("64", "naive")] < 1.5 * original
    assert sweep[("per-tensor", "naive")] > 10 * sweep[("per-tensor", "sw-aware")]
    assert subject.content_hash() == before

    act = sw.activation_quant_table(
        subject, found.coords, work, bits=[8], channels=tuple(a.channel for a in found.activations), original=rows[0]
    )
    frame = sw.store.activation_quant_frame(act).set_index("method")
    assert frame.loc["sa-held", "held_elements"] > 0 and frame.loc["naive", "held_elements"] == 0
    assert original < frame.loc["sa-held", "perplexity"] < frame.loc["naive", "perplexity"]
    assert subject.content_hash() == before
