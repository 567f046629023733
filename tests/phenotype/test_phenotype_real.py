"""Phenotyping a real SmolLM2 screen with a text probe and the MMLU21 set.

Slow (the 5-shot MMLU prompts are ~600 tokens and the MMLU21 selection runs
the model on each candidate question), so one mutant only; it still runs in CI.
"""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import MMLU_DIR, screen_of  # noqa: E402
from mutascope.model.subject import load_model
from mutascope.phenotype import load_embedder, phenotype_results, render_show, show_mutant
from mutascope.plan import PlanSpec
from mutascope.probes.resolve import resolve_probes
from mutascope.store import open_results

GROUP = "mmlu21:international_law"


@pytest.mark.real_model
@pytest.mark.skipif(
    not (MMLU_DIR / "test" / "international_law_test.csv").is_file(),
    reason=f"MMLU data not found at {MMLU_DIR} (set MUTASCOPE_MMLU_DIR to an MMLU-format directory)",
)
def test_phenotypes_of_a_smollm2_screen(tmp_path):
    subject = load_model()
    probes = resolve_probes(["drosophila", GROUP], subject, mmlu_dir=MMLU_DIR, max_new_tokens=16)
    assert [p.kind for p in probes].count("choice") == 21
    path = tmp_path / "smollm2.duckdb"
    # max of the whole matrix in one tile of an early MLP down projection: a strong mutation
    spec = PlanSpec.parse(layers="1", matrices="down", rows="0", cols="0", kinds="max")
    screen_of(subject, probes, spec, path).run()

    summary = phenotype_results(path, embedder=load_embedder())
    assert summary.n_outcomes == 22
    assert summary.n_malignant is not None  # text probe + MMLU21 set: the rule applies
    with open_results(path) as r:
        fly = (
            r.con.execute(
                "SELECT o.nsm, o.output_text, p.wt_text, f.* FROM phenotypes f "
                "JOIN outcomes o USING (mutation_id, probe_id) JOIN probes p USING (probe_id) "
                "WHERE probe_id = 'drosophila'"
            )
            .df()
            .iloc[0]
        )
        (score,) = r.con.execute("SELECT * FROM choice_scores").df().itertuples()
    if fly.nsm:
        assert fly.edit_distance > 0 and -1.0 <= fly.similarity <= 1.0
    else:
        assert fly.similarity == 1.0 and fly.edit_distance == 0
    assert fly.malignant == (fly.similarity <= 0.5 and score.total <= 8)
    assert score.probe_group == GROUP and score.n_questions == 21
    wt_right = sum(a == k for a, k in zip(score.wt_answers, [p.answer for p in probes if p.kind == "choice"]))
    assert wt_right == 14  # the MMLU21 selection: WT scores 14|0
    assert score.score == f"{score.correct_right}|{score.correct_wrong}"
    assert score.correct_right <= 14 and score.correct_wrong <= 7

    view = show_mutant(path, "1.down.0.0", "max")
    out = render_show(view)
    assert "drosophila" in out and GROUP in out and f"score {score.score}" in out
