"""A screen read back from its file (``mutascope.screen.readback``): the probes the engine needs,
rebuilt from what the file keeps, are the ones the screen ran; the model check refuses another model."""

from __future__ import annotations

import pytest

from helpers import screen_of, text_probes
from mutascope.engine import BatchedEngine
from mutascope.errors import MutascopeError
from mutascope.model.subject import vocab_size
from mutascope.plan import PlanSpec, build_plan
from mutascope.screen.readback import check_model, stored_config, stored_probes
from mutascope.store import open_results, read_mutations
from mutascope.testing import tiny_model

SPEC = PlanSpec.parse(layers="1", matrices="v", kinds="max,min")


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    subject = tiny_model("llama")
    path = tmp_path_factory.mktemp("readback") / "s.duckdb"
    job = screen_of(subject, text_probes(5), SPEC, path, outputs="calls")
    job.run()
    return subject, job, path


def test_the_probes_come_back_as_the_screen_prepared_them(screened):
    subject, job, path = screened
    with open_results(path) as r:
        back = stored_probes(r.con, vocab_size(subject))
        config = stored_config(r.con)
    assert config == job.identity()
    ran = job.prepared()
    assert [p.probe for p in back] == [p.probe for p in ran]
    assert [(p.prompt, p.wt_tokens) for p in back] == [(p.prompt, p.wt_tokens) for p in ran]
    engine = BatchedEngine(subject)
    assert [engine.generate(p) for p in back] == [p.wt_tokens for p in back]  # the same WT output here


def test_the_mutations_come_back_as_the_plan_made_them(screened):
    subject, _, path = screened
    plan = build_plan(SPEC, subject.anatomy)
    with open_results(path) as r:
        assert read_mutations(r.con) == {m.mutation_id: m for m in plan}


def test_another_models_weights_or_dtype_are_refused(screened):
    subject, _, path = screened
    with open_results(path) as r:
        check_model(r.con, subject, path)
        with pytest.raises(MutascopeError, match="has different weights; pass the screen's model with --model"):
            check_model(r.con, tiny_model("llama", seed=1), path)
        with pytest.raises(MutascopeError, match="was screened in float32; load the model with --dtype float32"):
            check_model(r.con, tiny_model("llama", dtype="bfloat16"), path)
