"""Statistics of a screen, checked on planted and random maps."""

import numpy as np
import pandas as pd
import pytest

from mutascope.analysis import (
    bias,
    copa,
    enrichment,
    nsm_counts,
    overlap,
    recurrent_axes,
    reordered_map,
    writer_groups,
)
from mutascope.analysis.exact import bh as bh_adjust


def frame_from(maps: dict, probe="p", layer=0, matrix="down") -> pd.DataFrame:
    """A site frame from {kind: boolean tile map}."""
    rows = []
    mid = 0
    for kind, grid in maps.items():
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                rows.append((probe, layer, matrix, r, c, kind, mid, bool(grid[r, c])))
                mid += 1
    return pd.DataFrame(rows, columns=["probe_id", "layer", "matrix", "row", "col", "kind", "mutation_id", "nsm"])


def random_map(seed, shape=(24, 24), rate=0.2):
    return np.random.default_rng(seed).random(shape) < rate


def test_bh_matches_hand_computation():
    # sorted 0.01, 0.03, 0.04, 0.2 -> 0.04, 0.06, 0.0533, 0.2 -> running min from the top
    q = bh_adjust(np.array([0.01, 0.04, 0.03, 0.2, np.nan]))
    assert np.allclose(q[:4], [0.04, 0.16 / 3, 0.16 / 3, 0.2]) and np.isnan(q[4])


def test_counts_and_rates():
    f = frame_from({"max": np.eye(4, dtype=bool), "min": np.zeros((4, 4), bool)})
    c = nsm_counts(f).set_index("kind")
    assert c.loc["max", "nsm"] == 4 and c.loc["max", "rate"] == 0.25 and c.loc["min", "nsm"] == 0


def test_planted_enriched_column_is_found_and_random_map_gives_none():
    grid = random_map(1, rate=0.1)
    grid[:, 7] = np.random.default_rng(2).random(24) < 0.8
    e = enrichment(frame_from({"max": grid}), axes=("col",))
    assert e.loc[e["enriched"], "index"].tolist() == [7]
    for seed in range(5):
        rand = enrichment(frame_from({"max": random_map(10 + seed)}), axes=("col",))
        assert not rand["enriched"].any()


def test_enriched_rows_across_probes():
    parts = []
    for i, probe in enumerate(["a", "b", "c"]):
        grid = random_map(20 + i, rate=0.1)
        grid[3, :] = True
        parts.append(frame_from({"max": grid}, probe=probe))
    e = enrichment(pd.concat(parts), axes=("row",))
    rec = recurrent_axes(e, min_probes=3)
    assert rec[["axis", "index", "probes"]].values.tolist() == [["row", 3, 3]]


def test_max_min_bias():
    f = frame_from({"max": random_map(3, rate=0.5), "min": random_map(4, rate=0.05)})
    b = bias(f).iloc[0]
    assert b["bias"] == "max" and b["q_value"] < 1e-6
    balanced = bias(frame_from({"max": random_map(5, rate=0.3), "min": random_map(6, rate=0.3)})).iloc[0]
    assert balanced["bias"] == "none"


def test_planted_complementary_pattern_gives_negative_copa_and_random_does_not():
    rng = np.random.default_rng(0)
    rows_max = rng.random(24) < 0.5
    grid_max = (rng.random((24, 24)) < 0.7) & rows_max[:, None]
    grid_min = (rng.random((24, 24)) < 0.7) & ~rows_max[:, None]
    c = copa(frame_from({"max": grid_max, "min": grid_min}), n_perm=199).set_index("axis")
    assert c.loc["row", "copa"] < -0.8 and c.loc["row", "p_value"] <= 0.01
    r = copa(frame_from({"max": random_map(7, rate=0.3), "min": random_map(8, rate=0.3)}), n_perm=199).set_index("axis")
    assert r.loc["row", "p_value"] > 0.05 and r.loc["col", "p_value"] > 0.05


def test_reordered_map_sorts_by_the_other_probes_balance():
    grid_max = np.zeros((4, 4), bool)
    grid_max[2, :] = True
    grid_min = np.zeros((4, 4), bool)
    grid_min[0, :] = True
    both = pd.concat([frame_from({"max": grid_max, "min": grid_min}, probe=p) for p in ("p", "q")])
    view = reordered_map(both, "p", 0, "down")
    assert view.attrs["order_from"] == "q"
    assert view.index[0] == 2 and view.index[-1] == 0
    assert (view.iloc[0] == 1).all() and (view.iloc[-1] == -1).all()


def test_planted_writer_group_sharing_a_row_is_detected():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(400):
        rows.append(
            (
                "p",
                int(rng.integers(0, 30)),
                "down",
                int(rng.integers(0, 24)),
                int(rng.integers(0, 24)),
                "max",
                i,
                True,
                rng.choice(["the", "a", "in", "it"]),
                "other",
            )
        )
    for j in range(10):  # ten "staring" NSMs, all in row tile 0, in three layers and two matrices
        rows.append(
            (
                "p",
                [1, 14, 29][j % 3],
                ["down", "up"][j % 2],
                0,
                int(rng.integers(0, 24)),
                "max",
                1000 + j,
                True,
                "staring",
                "poem",
            )
        )
    f = pd.DataFrame(
        rows,
        columns=["probe_id", "layer", "matrix", "row", "col", "kind", "mutation_id", "nsm", "first_word", "category"],
    )
    w = writer_groups(f, n_draws=500).set_index("first_word")
    assert w.loc["staring", "top_row"] == 0 and w.loc["staring", "top_row_count"] == 10
    assert w.loc["staring", "p_row"] < 0.01 and w.loc["staring", "p_col"] > 0.01
    assert (w.drop("staring")["p_row"] > 0.01).all()


def test_overlap_jaccard():
    a = frame_from({"max": np.array([[1, 1, 0, 0]], bool)}, probe="a")
    b = frame_from({"max": np.array([[0, 1, 1, 0]], bool)}, probe="b")
    o = overlap(pd.concat([a, b])).iloc[0]
    assert (o["intersection"], o["union"], o["jaccard"]) == (1, 3, pytest.approx(1 / 3))


def test_analyze_writes_tables_into_the_file_and_csv(tmp_path):
    from helpers import screen_of, text_probes
    from mutascope.analysis.run import analyze
    from mutascope.plan import PlanSpec
    from mutascope.store import open_results
    from mutascope.testing import tiny_model

    path = tmp_path / "r.duckdb"
    screen_of(tiny_model("llama"), text_probes(6), PlanSpec.parse(layers="0-1", kinds="max,min"), path).run()
    tables = analyze(path, csv_dir=tmp_path / "csv", n_perm=49)
    assert {"counts", "bias", "enrichment", "copa", "overlap", "recurrent_axes"} <= set(tables)
    with open_results(path) as r:
        stored = r.query("SELECT count(*) AS n FROM analysis_counts")["n"][0]
        total = r.query("SELECT count(*) AS n FROM outcomes")["n"][0]
    assert stored == len(tables["counts"]) and tables["counts"]["mutants"].sum() == total
    assert (tmp_path / "csv" / "enrichment.csv").exists()
    analyze(path, n_perm=49)  # recomputing replaces, never duplicates
    with open_results(path) as r:
        assert r.query("SELECT count(*) AS n FROM analysis_counts")["n"][0] == stored


def test_reordered_table_ranks_rows_and_columns_by_balance():
    from mutascope.analysis.reorder import reordered_table

    grid_max = np.zeros((4, 4), bool)
    grid_max[2, :] = True
    grid_min = np.zeros((4, 4), bool)
    grid_min[0, :] = True
    both = pd.concat([frame_from({"max": grid_max, "min": grid_min}, probe=p, matrix="gate") for p in ("p", "q")])
    t = reordered_table(both)
    assert len(t) == 32 and set(t["order_from"]) == {"p", "q"}
    t = t[t["probe_id"] == "p"]
    assert t.loc[t["row"] == 2, "row_rank"].unique().tolist() == [0]
    assert t.loc[t["row"] == 0, "row_rank"].unique().tolist() == [3]
    assert (t.loc[t["row"] == 2, "balance"] == 1).all() and (t.loc[t["row"] == 0, "balance"] == -1).all()
