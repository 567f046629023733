"""Effect-size statistics on a real SmolLM2-135M-Instruct screen (batched engine, calls only).

A few tiles of one middle layer's ``v`` and ``down``: enough for every
effect table to have rows. The tables must exist in the file and be
deterministic: analysing again gives identical rows.
"""

import pytest

from helpers import screen_of
from mutascope import PlanSpec, load_model, open_results, resolve_probes
from mutascope.analysis.run import analyze
from mutascope.probes import Decoding

EFFECT_TABLES = ("effect_bias", "effect_enrichment", "effect_copa", "effect_recurrent_axes", "saturation")


@pytest.mark.real_model
def test_effect_tables_of_a_real_screen_exist_and_are_deterministic(tmp_path):
    subject = load_model()
    probes = resolve_probes(["drosophila", "python"], subject, max_new_tokens=12, decoding=Decoding.parse("greedy"))
    spec = PlanSpec.parse(layers="15", matrices="v,down", rows="0-2", cols="0-3", kinds="max,min")
    path = tmp_path / "real.duckdb"
    screen_of(subject, probes, spec, path, outputs="calls").run()  # 48 mutants x 2 probes
    first = analyze(path, n_perm=99)
    with open_results(path) as r:
        stored = {name: r.table(f"analysis_{name}") for name in EFFECT_TABLES}
        measured = r.query("SELECT count(*) AS n FROM outcomes WHERE logprob_drop IS NOT NULL")["n"][0]
    assert measured == 48 * 2
    assert len(stored["effect_bias"]) == 2 * 2  # probes x matrices, every tile paired
    assert len(stored["effect_enrichment"]) == 2 * (3 + 4 + 3 + 4)  # probes x (rows + cols) of v and down
    assert len(stored["effect_copa"]) == 2 * 2 * 2 and stored["effect_copa"]["copa"].notna().all()
    assert stored["effect_enrichment"]["p_value"].between(0, 1).all()
    second = analyze(path, n_perm=99)
    for name in EFFECT_TABLES:
        a = first[name].reset_index(drop=True)
        b = second[name].reset_index(drop=True)
        assert a.equals(b), name
        with open_results(path) as r:
            assert r.table(f"analysis_{name}").equals(stored[name]), name
