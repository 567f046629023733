"""`make atlas`, scaled down to a tiny model through its variables, so the pipeline cannot rot.

The full atlas (docs/atlas.md) is too long for CI; this runs every step of the
same recipe (4 shards in two queues, merge, fill, super weights, phenotypes,
analysis with the super-weight overlay, report and figures), then reruns it
to check that it resumes without redoing work.
"""

import shutil
import subprocess
import sys

import pytest

from helpers import ROOT
from mutascope.store import open_results


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_scaled_down_atlas_runs_and_resumes(tmp_path, tiny_model_dir):
    out, figures = tmp_path / "atlas", tmp_path / "figures"
    variables = [
        f"MUTASCOPE={sys.executable} -m mutascope",
        f"ATLAS_MODEL={tiny_model_dir}",
        f"ATLAS_DIR={out}",
        f"ATLAS_FIGURES={figures}",
        "ATLAS_LAYERS=0-1",
        "ATLAS_TILE=16",
        "ATLAS_TOKENS=4",
        "ATLAS_TOP=5",
    ]

    def make():
        done = subprocess.run(
            ["make", "-s", "-C", str(ROOT), "atlas-run", *variables], capture_output=True, text=True, timeout=1800
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return done.stdout

    make()
    with open_results(out / "atlas.duckdb") as r:
        n = r.query("SELECT count(DISTINCT mutation_id) AS n FROM outcomes")["n"][0]
        assert n == r.runs["n_mutations"][0] > 4 * 256 and r.runs["shard"][0] == "0/1"
        filled = r.query("SELECT probe_id, count(*) AS n FROM outcomes WHERE nsm AND filled GROUP BY 1")
        assert (filled["n"] >= 5).all() and len(filled) == 2
        names = set(r.table_names())
    assert {"phenotypes", "analysis_effect_enrichment", "analysis_superweight_tiles"} <= names
    assert (out / "atlas.html").stat().st_size > 10_000 and list(figures.glob("*.png"))
    assert (out / "tables" / "effect_bias.csv").exists()
    bias = __import__("pandas").read_csv(out / "tables" / "effect_bias.csv")
    assert set(bias["pair"]) == {"max/min", "sym:1/sym:-1"}  # the size-matched control screen joined the tables
    assert (out / "control.duckdb").exists() and (figures / "tables" / "tiles.parquet").exists()
    again = make()  # resumes: the merged screens are kept and the chosen NSMs are already filled
    assert "screening" not in again and "nothing to do" in again
