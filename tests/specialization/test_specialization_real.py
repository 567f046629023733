"""PSS of the real SmolLM2-135M-Instruct on three shipped concepts (CPU, a few minutes at most).

The same run as the table of docs/specialization.md:
``mutascope specialization --model SmolLM2-135M-Instruct --model tiny --concept Paris
--concept "the Moon" --concept "Albert Einstein" --k 100 --random-draws 2``.
"""

import math

import pytest

from mutascope import load_model
from mutascope import specialization as sp

CONCEPTS = ["Paris", "the Moon", "Albert Einstein"]


@pytest.mark.real_model
def test_smollm2_specialization_on_shipped_concepts():
    subject = load_model()
    before = subject.content_hash()
    concepts = sp.select(sp.resolve_controls(sp.load_concepts(), seed=0), CONCEPTS)
    result = sp.specialization(subject, concepts, ks=[100], random_draws=2, seed=0)
    assert subject.content_hash() == before == result.content_hash
    assert result.accuracy > 0.4  # cloze knowledge clearly above chance (25 %)
    ranking = result.rankings["Paris"]
    assert len(ranking.diff) == 30 * 1536 and ranking.diff[0] > 0
    assert len({tuple(result.rankings[c].top(100)) for c in CONCEPTS}) == 3  # concept-specific masks
    table = sp.concept_table(result)
    assert list(table["concept"]) == CONCEPTS
    assert all(math.isfinite(x) and x >= 0 for x in table["pss"])
    summary = sp.summary([result])
    assert len(summary) == 1 and summary.iloc[0].k == 100
