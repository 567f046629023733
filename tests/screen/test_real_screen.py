"""A real screen of a few tiles of SmolLM2-135M-Instruct (reference engine)."""

import pytest

from helpers import screen_of
from mutascope import PlanSpec, load_model, open_results, resolve_probes


@pytest.mark.real_model
def test_real_screen_finds_nsms_and_silent_mutations(tmp_path):
    subject = load_model()
    before = subject.content_hash()
    probes = resolve_probes(["drosophila"], subject, max_new_tokens=16)
    spec = PlanSpec.parse(layers="0,29", matrices="down,v", rows="0", cols="0", kinds="max,zero")
    summary = screen_of(subject, probes, spec, tmp_path / "real.duckdb", engine="reference").run()
    assert summary.n_done == 8
    with open_results(tmp_path / "real.duckdb") as r:
        outcomes = r.sites()
        wt = list(r.probes["wt_tokens"][0])
    assert len(wt) == 16  # no early end-of-sequence for this prompt
    assert outcomes.nsm.any(), "no mutation changed the output"
    assert (~outcomes.nsm).any(), "every mutation changed the output"
    assert not outcomes[outcomes.kind == "zero"].nsm.all()
    assert subject.content_hash() == before
