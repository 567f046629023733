"""A calls-only screen (``--outputs calls``): statistics use every call and effect, outputs
only where filled; ``show`` and the report say which NSMs are unfilled and how to fill them."""

import pytest

from helpers import run_cli as run
from helpers import screen_of, text_probes
from mutascope.analysis import site_frame
from mutascope.analysis.run import analyze
from mutascope.plan import PlanSpec
from mutascope.store import open_results
from mutascope.testing import tiny_model


@pytest.fixture(scope="module")
def calls_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("calls") / "calls.duckdb"
    screen_of(
        tiny_model("llama"),
        text_probes(4),
        PlanSpec.parse(layers="0-1", matrices="q,down", kinds="max,min"),
        path,
        outputs="calls",
    ).run()
    return path


def test_statistics_use_every_call_and_effect(calls_file):
    with open_results(calls_file) as r:
        frame = site_frame(r)
        n_outcomes = r.query("SELECT count(*) AS n FROM outcomes")["n"][0]
    nsm = frame[frame["nsm"]]
    assert len(nsm) and not nsm["filled"].any() and frame.loc[~frame["nsm"], "filled"].all()
    assert frame["effect"].notna().all() and len(frame) == n_outcomes
    tables = analyze(calls_file, n_perm=19)
    assert tables["counts"]["mutants"].sum() == n_outcomes and tables["counts"]["nsm"].sum() == len(nsm)
    assert len(tables["effect_enrichment"]) == len(tables["enrichment"])


def test_show_and_report_say_the_output_is_not_filled(calls_file, tmp_path):
    with open_results(calls_file) as r:
        site = r.query(
            "SELECT m.layer, m.matrix, m.row, m.col, m.kind FROM outcomes o JOIN mutations m "
            "USING (mutation_id) WHERE o.nsm ORDER BY m.mutation_id LIMIT 1"
        ).iloc[0]
    spec = f"{site.layer}.{site.matrix}.{site.row}.{site.col}"
    code, out, err = run(["show", str(calls_file), "--site", spec, "--kind", str(site.kind)])
    assert code == 0, err
    assert f"output not filled yet (a calls-only screen): run `mutascope fill {calls_file} --site {spec}`" in out
    code, _, err = run(["report", str(calls_file), "--out", str(tmp_path / "calls.html")])
    assert code == 0, err
    page = (tmp_path / "calls.html").read_text(encoding="utf-8")
    assert "NSMs with outputs</th><td>0 of " in page and "run `mutascope fill` for more" in page
