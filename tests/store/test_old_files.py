"""Files written before effect sizes, calls-only screens and the effect tables still open
in every command: analyze, report, show, phenotype, export.

The oldest layout is rebuilt from a fresh screen: schema version 1, no
``outcomes.filled``, no ``fills`` table, no effect-size columns (the reference
engine's screens, and every file from before the batched engine, have no
effect sizes), no analysis tables.
"""

import duckdb
import numpy as np
import pytest

from helpers import run_cli as run
from helpers import screen_of, text_probes
from mutascope.plan import PlanSpec
from mutascope.store import open_results
from mutascope.testing import tiny_model

OLD_COLUMNS = ("filled", "margin", "min_margin", "logprob_drop", "logprob_drop_per_token", "rechecked")


@pytest.fixture(scope="module")
def old_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("old") / "v1.duckdb"
    screen_of(
        tiny_model("llama"), text_probes(4), PlanSpec.parse(layers="0-1", matrices="q,down", kinds="max,min"), path
    ).run()
    con = duckdb.connect(str(path))
    for column in OLD_COLUMNS:
        con.execute(f"ALTER TABLE outcomes DROP COLUMN {column}")
    con.execute("DROP TABLE fills")
    con.execute("UPDATE runs SET schema_version = 1")
    con.close()
    return path


def test_the_file_is_the_old_layout(old_file):
    with open_results(old_file) as r:
        columns = set(r.outcomes.columns)
        assert not columns & set(OLD_COLUMNS) and "fills" not in r.table_names()
        assert r.query("SELECT max(schema_version) AS v FROM runs")["v"][0] == 1


def test_every_command_opens_an_old_file(old_file, tmp_path):
    from mutascope.phenotype import phenotype_results

    code, out, err = run(["analyze", str(old_file), "--permutations", "19", "--csv", str(tmp_path / "csv")])
    assert code == 0, err
    assert "no effect sizes in this screen" in out
    with open_results(old_file) as r:
        assert r.query("SELECT count(*) AS n FROM analysis_effect_enrichment")["n"][0] == 0
        assert r.query("SELECT count(*) AS n FROM analysis_enrichment")["n"][0] > 0
        assert (
            r.query("SELECT count(*) AS n FROM analysis_saturation")["n"][0] == 2 * 2 * 2
        )  # probes x layers x matrices
    code, out, err = run(["show", str(old_file), "--site", "0.q.0.0", "--kind", "max"])
    assert code == 0 and "probe hello" in out, err
    phenotype_results(old_file, embedder=lambda texts: np.array([[len(t) + 1.0, 1.0] for t in texts]))
    code, out, err = run(["report", str(old_file), "--out", str(tmp_path / "old.html")])
    assert code == 0, err
    page = (tmp_path / "old.html").read_text(encoding="utf-8")
    assert "NSMs with outputs" in page and "has no effect sizes" in page
    code, out, err = run(["export", str(old_file), "--out", str(tmp_path / "parquet")])
    assert code == 0, err
    assert (tmp_path / "parquet" / "analysis_effect_bias.parquet").exists()
