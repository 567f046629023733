"""Semantic pairs (arXiv 2405.17799's third validation) on tiny models: reading pair files,
per-layer cosines, Spearman with a permutation p-value (seconds)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from mutascope import activation as act
from mutascope.activation.pairs import cosine_frame, depth_summary, layer_cosines
from mutascope.errors import MutascopeError
from mutascope.testing import tiny_model


def test_shipped_pairs_cover_the_whole_0_to_5_range():
    pairs = act.shipped_pairs()
    assert len(pairs) >= 40
    scores = [p.score for p in pairs]
    assert min(scores) == 0 and max(scores) == 5
    assert {int(s) for s in scores} == {0, 1, 2, 3, 4, 5}
    assert all(sum(1 for s in scores if band <= s < band + 1) >= 5 for band in range(5))
    assert len({(p.sentence1, p.sentence2) for p in pairs}) == len(pairs)


def test_read_pairs_finds_columns_by_header_name(tmp_path):
    glue = tmp_path / "sts-b.tsv"  # GLUE STS-B: extra columns, score last, quotes literal
    glue.write_text(
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore\n"
        "0\tmain-captions\tMSRvid\t2012test\t0001\tnone\tnone\tA plane is taking off.\tAn air plane is taking "
        "off.\t5.000\n"
        '1\tmain-captions\tMSRvid\t2012test\t0004\tnone\tnone\tA man said "hi".\tA man plays a flute.\t0.800\n'
        "2\tmain-captions\tMSRvid\t2012test\t0005\tnone\tnone\tA cat eats.\tA kitten eats.\t3.800\n"
    )
    pairs = act.read_pairs(glue)
    assert [p.score for p in pairs] == [5.0, 0.8, 3.8]
    assert pairs[1].sentence1 == 'A man said "hi".' and pairs[0].sentence2 == "An air plane is taking off."
    sick = tmp_path / "SICK.txt"
    sick.write_text(
        "pair_ID\tsentence_A\tsentence_B\tentailment_label\trelatedness_score\n"
        "1\tA boy runs.\tA kid runs.\tENTAILMENT\t4.5\n2\tA boy runs.\tA dog sits.\tNEUTRAL\t1.2\n"
        "3\tA boy runs.\tNobody runs.\tCONTRADICTION\t3.1\n\n"
    )
    assert [(p.score, p.sentence2) for p in act.read_pairs(sick)][1] == (1.2, "A dog sits.")


@pytest.mark.parametrize(
    "text,msg",
    [
        ("", "is empty"),
        ("sentence1\tsentence2\nA\tB\n", "no score column"),
        ("score\tsentence1\nA\tB\n", "no sentence2 column"),
        ("score\tsentence1\tsentence2\nhigh\tA\tB\n", "line 2: score 'high' is not a number"),
        ("score\tsentence1\tsentence2\n1\tA\n", "line 2: has 2 tab-separated fields"),
        ("score\tsentence1\tsentence2\n1\tA\t \n", "a sentence is empty"),
        ("score\tsentence1\tsentence2\n1\tA\tB\n2\tC\tD\n", "at least 3 pairs"),
        ("score\tsentence1\tsentence2\n1\tA\tB\n1\tC\tD\n1\tE\tF\n", "same score"),
        ("score\tsentence1\tsentence2\nnan\tA\tB\n", "not a finite number"),
    ],
)
def test_bad_pair_files_are_one_line_errors(tmp_path, text, msg):
    f = tmp_path / "p.tsv"
    f.write_text(text)
    with pytest.raises(MutascopeError, match=msg) as info:
        act.read_pairs(f)
    assert "\n" not in str(info.value) and str(f) in str(info.value)


def test_missing_pair_file():
    with pytest.raises(MutascopeError, match="not found"):
        act.read_pairs("/no/such/pairs.tsv")


def test_spearman_and_permutation_p_on_constructed_cosines():
    rng = np.random.default_rng(0)
    scores = np.linspace(0, 5, 30)
    cos = np.stack(
        [
            scores / 10 + 0.3,  # layer 0: rises with the score, rho 1
            rng.random(30),  # layer 1: noise
            np.full(30, 0.5),  # layer 2: constant, no correlation
            -scores + rng.normal(0, 0.1, 30),
        ],
        1,
    )  # layer 3: falls with it
    t = act.semantic_correlation(cos, scores, permutations=999, seed=1)
    assert list(t["layer"]) == [0, 1, 2, 3] and (t["n_pairs"] == 30).all()
    assert t.loc[0, "spearman_rho"] == pytest.approx(1.0)
    assert t.loc[0, "p_value"] == pytest.approx(1 / 1000)  # no shuffle reaches rho 1
    assert t.loc[1, "spearman_rho"] == pytest.approx(spearmanr(cos[:, 1], scores).statistic)
    assert t.loc[1, "p_value"] > 0.05
    assert np.isnan(t.loc[2, "spearman_rho"]) and np.isnan(t.loc[2, "p_value"])
    assert t.loc[3, "spearman_rho"] < -0.9 and t.loc[3, "p_value"] < 0.01  # two-sided
    again = act.semantic_correlation(cos, scores, permutations=999, seed=1)
    assert again.equals(t)
    shallow, deep = depth_summary(t.drop(index=2).assign(layer=[0, 1, 2]))
    assert shallow == pytest.approx(1.0) and deep < -0.9
    with pytest.raises(MutascopeError, match="permutations"):
        act.semantic_correlation(cos, scores, permutations=0)
    with pytest.raises(MutascopeError, match="one row"):
        act.semantic_correlation(cos[:5], scores)


def test_pairs_built_to_correlate_do_so_in_every_layer():
    """Identical sentences (score 5) have cosine exactly 1 in every layer; unrelated ones (score 0) less."""
    subject = tiny_model("llama")
    before = subject.content_hash()
    same = [
        "The cat sat on the mat.",
        "def add(a, b):",
        "Once upon a time",
        "Rain fell all night.",
        "x = [1, 2, 3]",
        "The court ruled today.",
    ]
    other = ["Quantum fields", "SELECT * FROM t", "9 8 7 6", "Hello, world!", "import os", "Tea or coffee?"]
    pairs = [act.Pair(5.0, s, s) for s in same] + [act.Pair(0.0, s, o) for s, o in zip(same, other)]
    cos = act.pair_cosines(subject, pairs, max_tokens=32)
    assert cos.shape == (12, subject.anatomy.n_layers)
    assert np.allclose(cos[:6], 1.0, atol=1e-12) and (cos[6:] < 0.999).all()
    t = act.semantic_correlation(cos, [p.score for p in pairs], permutations=500)
    assert (t["spearman_rho"] > 0.8).all() and (t["p_value"] < 0.05).all()
    assert subject.content_hash() == before
    long = cosine_frame(pairs, cos)
    assert len(long) == 12 * subject.anatomy.n_layers and set(long.columns) >= {"pair", "layer", "score", "cosine"}


def test_layer_cosine_matches_the_accumulator():
    subject = tiny_model("llama", dtype="float64")
    a, b = "The cat sat on the mat.", "Once upon a time"
    got = layer_cosines(subject, a, b, max_tokens=None)
    acc, _ = act.collect(
        subject, [act.Domain("d", (a, b), "test")], max_tokens=None, similarity_dtype=__import__("torch").float64
    )
    pairs = acc.pairs().sort_values("layer")
    assert got == pytest.approx(pairs["cosine"].tolist(), abs=1e-12)
