"""Activation patterns and layer-wise Wanda on the real SmolLM2-135M-Instruct (CPU, ~2-3 minutes on 2 cores).

Two MMLU domains, three short inputs each: enough to exercise the whole path
(30 layers, fused nothing, 106 M matrix parameters) and to read the paper's
findings, not to measure them precisely.
"""

import numpy as np
import pytest

from helpers import MMLU_DIR  # noqa: E402
from mutascope import activation as act

SUBJECTS = ("international_law", "high_school_computer_science")


@pytest.mark.real_model
@pytest.mark.skipif(
    not all((MMLU_DIR / "test" / f"{s}_test.csv").is_file() for s in SUBJECTS),
    reason=f"MMLU data not found at {MMLU_DIR} (set MUTASCOPE_MMLU_DIR to an MMLU-format directory)",
)
def test_smollm2_activation_fractions_and_layerwise_pruning():
    from mutascope import load_model
    from mutascope.evaluate import corpus_ids, default_corpus

    subject = load_model()
    before = subject.content_hash()
    domains = [act.parse_domain(f"{name}=mmlu:{MMLU_DIR}:{s}", 3) for name, s in zip(("law", "cs"), SUBJECTS)]
    acc, inputs = act.collect(subject, domains, max_tokens=48, similarity_inputs=3)
    assert len(inputs) == 6
    fractions = acc.fractions()
    layers = fractions[(fractions.matrix == "all") & (fractions.domain == "all")]
    assert layers["layer"].nunique() == 30
    # the curve falls with gamma in every layer
    for _, part in layers.groupby("layer"):
        assert (np.diff(part.sort_values("gamma")["fraction"].to_numpy()) <= 0).all()
    similarity = acc.similarity()
    assert set(similarity["domain_a"]) == {"law", "cs", "within", "across"}
    assert similarity["cosine_mean"].between(0, 1).all()
    found = act.findings(fractions, similarity)
    assert len(found) == 4

    counts = acc.layer_counts(2e-6)
    del acc
    calibration = [act.encode(subject, t, 48) for d in domains for t in d.texts]
    result = act.compare_pruning(
        subject, counts, calibration, corpus_ids(subject, default_corpus(), 256), sparsity=0.5, window=256
    )
    assert np.mean(result.layers.sparsities) == pytest.approx(0.5, abs=1e-12)
    ppl = result.frame().set_index("variant")["perplexity"]
    assert np.isfinite(ppl).all()
    assert ppl["uniform"] > ppl["dense"] and ppl["layerwise"] > ppl["dense"]
    assert subject.content_hash() == before


@pytest.mark.real_model
def test_smollm2_calibration_transfer_and_semantic_pairs_small():
    """Each new experiment once, small: two shipped domains (2 inputs, 2 held-out texts each) pruned
    uniformly on each in turn (layer-wise runs the same code with other ratios), and 4 shipped pairs."""
    from mutascope import load_model
    from mutascope.activation.pairs import semantic_correlation

    subject = load_model()
    before = subject.content_hash()
    domains = [d for d in act.default_domains(2, 2) if d.name in ("biology", "python")]
    result = act.calibration_transfer(subject, domains, {}, methods=("uniform",), max_tokens=48, window=128)
    frame = result.frame()
    assert len(frame) == 2 + 2 * 2
    assert np.isfinite(frame["perplexity"]).all()
    assert (frame[frame.method != "dense"]["x_dense"] > 1).all()  # half the weights gone: worse everywhere
    assert set(result.summary()["eval_domain"]) == {"biology", "python", "all"}
    assert subject.content_hash() == before

    pairs = sorted(act.shipped_pairs(), key=lambda p: p.score)[::12]  # 4 pairs spread over 0..5
    cos = act.pair_cosines(subject, pairs, max_tokens=24)
    assert cos.shape == (4, 30) and ((cos > 0) & (cos <= 1 + 1e-9)).all()
    table = semantic_correlation(cos, [p.score for p in pairs], permutations=200)
    assert table["spearman_rho"].between(-1, 1).all() and table["p_value"].between(0, 1).all()
    assert subject.content_hash() == before
