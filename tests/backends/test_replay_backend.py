"""The replay backend on the published SmolLM2 atlas (docs/atlas/tables: a compact export, no
results file exists): its rows are the export's, another plan is refused, and an adaptive screen
replays from it without a model."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pandas as pd
import pytest

from helpers import ROOT
from mutascope.backends.replay import ReplaySource
from mutascope.errors import InputError
from mutascope.plan.kinds import Kind
from mutascope.screen import Adaptive
from mutascope.screen.replay import ReplayScreen, replay_config

ATLAS = ROOT / "docs" / "atlas" / "tables"


@pytest.fixture(scope="module")
def atlas():
    return ReplaySource(ATLAS)


def test_the_atlas_rows_are_the_exports(atlas):
    tiles = pd.read_parquet(ATLAS / "tiles.parquet").set_index(["mutation_id", "probe_id"])
    assert len(atlas.mutations) == 51840 and atlas.probe_ids == ["drosophila", "python"]
    some = [atlas.mutations[i] for i in (0, 1, 20001, 51839)]
    for row in atlas.rows(some, atlas.probe_ids):
        stored = tiles.loc[(row.mutation_id, row.probe_id)]
        assert row.nsm == bool(stored["nsm"]) and row.logprob_drop == stored["logprob_drop"]
        assert row.tokens is None if row.nsm else row.tokens == ()  # an export keeps no outputs
    moved = replace(some[0], kind=Kind.parse("zero"), value=0.0)
    with pytest.raises(InputError, match="another plan"):
        atlas.check_mutations([moved])


def test_an_adaptive_screen_replays_from_the_atlas_export(atlas, tmp_path):
    out = tmp_path / "replay.duckdb"
    config = replay_config(atlas, out, order="adaptive", adaptive=Adaptive(budget="3%"))
    summary = ReplayScreen(config, source=atlas).run()
    assert summary.rounds is not None and summary.rounds.rounds == 2  # the audit (2 %), then one round
    with duckdb.connect(str(out), read_only=True) as con:
        n = con.execute("SELECT count(DISTINCT mutation_id) FROM outcomes").fetchall()[0][0]
        assert 0.03 * 51840 <= n < 0.03 * 51840 + 32
        sources = dict(con.execute("SELECT source, count(*) FROM estimates GROUP BY ALL").fetchall())
        assert sources == {"measured": 2 * n, "estimated": 2 * (51840 - n)}
        hash_ = con.execute("SELECT config_hash FROM runs").fetchall()[0][0]
    assert hash_ == pd.read_parquet(ATLAS / "runs.parquet")["config_hash"].iloc[0]
