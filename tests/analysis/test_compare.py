"""`mutascope compare`: two tiny models of different families and depths, screened and analysed, with
effects planted in their outcomes so every verdict is known in advance.

* llama, 2 layers (v, gate, down): every max mutant's effect well above its tile's min mutant's (a max
  bias in every matrix), and v column tile 1 far more sensitive than the others; its super activation
  (channel 40, tile 1 at 32-wide tiles) is given in a super-weights export: the link holds;
* gpt2, 3 layers (v, down; no gate): min above max everywhere, v column tile 0 the most sensitive,
  its super activation at channel 70 (tile 2): the link does not hold;
* the same llama model screened on other probes: two probe sets of one model.
"""

from __future__ import annotations

import hashlib
import json
import shutil

import duckdb
import numpy as np
import pandas as pd
import pytest

from helpers import GREEDY, run_cli, screen_of, text_probes
from mutascope.analysis.compare import compare
from mutascope.analysis.run import analyze
from mutascope.plan import PlanSpec
from mutascope.probes import Probe
from mutascope.store import open_results
from mutascope.testing import tiny_model

TILE = 32


def _plant(path, high: str, sensitive_col: int) -> None:
    """Effects: the ``high`` kind about 10 nats, the other about 1, +100 on v column tile ``sensitive_col``."""
    con = duckdb.connect(str(path))
    con.execute(f"""
        UPDATE outcomes o SET logprob_drop = (CASE WHEN m.kind = '{high}' THEN 10.0 ELSE 1.0 END)
            + ((o.mutation_id * 7919) % 97) / 97.0
            + (CASE WHEN m.matrix = 'v' AND m.col = {sensitive_col} THEN 100.0 ELSE 0.0 END)
        FROM mutations m WHERE m.mutation_id = o.mutation_id""")
    con.close()


def _superweights(path, results, channel: int):
    with open_results(results) as r:
        run = r.runs.iloc[0]
    path.write_text(
        json.dumps(
            {
                "format": "mutascope-superweights/1",
                "model_id": run["model_id"],
                "content_hash": run["model_hash"],
                "dtype": run["dtype"],
                "super_weights": [],
                "super_activations": [{"channel": channel, "first_layer": 0}],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def screens(tmp_path_factory):
    d = tmp_path_factory.mktemp("compare")
    llama, gpt2, other = d / "llama.duckdb", d / "gpt2.duckdb", d / "llama-other-probes.duckdb"
    spec = dict(kinds="max,min", tile=TILE)
    # calls only, 3 tokens: the effects are planted below, so the screens only need their shape
    screen_of(
        tiny_model("llama", num_hidden_layers=2),
        text_probes(3),
        PlanSpec.parse(matrices="v,gate,down", **spec),
        llama,
        outputs="calls",
    ).run()
    screen_of(
        tiny_model("gpt2", n_layer=3), text_probes(3), PlanSpec.parse(matrices="v,down", **spec), gpt2, outputs="calls"
    ).run()
    screen_of(
        tiny_model("llama", num_hidden_layers=2),
        [Probe("count", "One two three", 3, GREEDY)],
        PlanSpec.parse(matrices="v,down", **spec),
        other,
        outputs="calls",
    ).run()
    _plant(llama, "max", 1)
    _plant(gpt2, "min", 0)
    _plant(other, "max", 1)
    analyze(llama, n_perm=49, superweights=_superweights(d / "sw-llama.json", llama, 40))
    analyze(gpt2, n_perm=49, superweights=_superweights(d / "sw-gpt2.json", gpt2, 70))
    analyze(other, n_perm=49)
    return llama, gpt2, other


def _cell(c, statistic, key, model):
    rows = c.statistics[
        (c.statistics["statistic"] == statistic) & (c.statistics["key"] == key) & (c.statistics["model"] == model)
    ]
    assert len(rows) == 1, (statistic, key, model, c.statistics[c.statistics["statistic"] == statistic])
    return rows.iloc[0]


def test_verdicts_are_as_planted_side_by_side(screens):
    llama, gpt2, _ = screens
    c = compare([llama, gpt2])
    a, b = "tiny-llama-seed0", "tiny-gpt2-seed0"
    assert [s.label for s in c.inputs] == [a, b]
    assert "probes: the same in every file" in c.header[2]
    for probe in ("hello", "story"):
        mine, theirs = _cell(c, "effect_bias", probe, a), _cell(c, "effect_bias", probe, b)
        assert (mine["hits"], mine["tests"]) == (6, 6) and "6 max" in mine["figure"]  # v, gate, down x 2 layers
        assert (theirs["hits"], theirs["tests"]) == (6, 6) and "6 min" in theirs["figure"]  # v, down x 3 layers
        assert mine["verdict"] == theirs["verdict"] == "biased matrices"
    # tests over layers are aligned by matrix type: one row per type, a model without it gets "-"
    down = _cell(c, "effect_bias_by_type", "hello down max/min", a)
    assert down["figure"].startswith("2+ / 0- of 2 layers")
    assert _cell(c, "effect_bias_by_type", "hello down max/min", b)["figure"].startswith("0+ / 3- of 3 layers")
    wide = c.side_by_side().set_index(["statistic", "key"])
    assert wide.loc[("effect_bias_by_type", "hello gate max/min"), f"{b} verdict"] == "-"
    assert wide.loc[("effect_bias_by_type", "hello gate max/min"), f"{a} verdict"] in ("n.s.", "max-biased")
    # a statistic with no rows for one model (gpt2 has no gate to re-order) shows "-" for it
    assert wide.loc[("effect_reorder_holdout_by_type", "hello gate col"), f"{b} figure"] == "-"
    assert c.header[3] == f"{len(set(c.statistics['statistic']))} statistics in every file"


def test_profiles_are_placed_at_relative_depth(screens):
    llama, gpt2, _ = screens
    c = compare([llama, gpt2])
    depths = c.profiles.groupby("model")["depth"].apply(lambda s: sorted(set(s)))
    assert depths["tiny-llama-seed0"] == [0.0, 1.0] and depths["tiny-gpt2-seed0"] == [0.0, 0.5, 1.0]
    bias = c.profiles.set_index(["model", "probe_id", "matrix", "layer"])["effect_bias"]
    assert (bias.loc["tiny-llama-seed0"] == 1).all() and (bias.loc["tiny-gpt2-seed0"] == -1).all()
    parts = c.depth_parts.set_index(["matrix", "part", "model"])
    assert ("down", "middle", "tiny-gpt2-seed0") in parts.index
    assert ("down", "middle", "tiny-llama-seed0") not in parts.index  # 2 layers: depths 0 and 1 only
    assert parts.loc[("v", "late", "tiny-llama-seed0"), "layers"] == 1


def test_super_activation_link_holds_where_planted(screens):
    llama, gpt2, other = screens
    c = compare([llama, gpt2, other])
    link = c.link.set_index(["model", "probe_id"])
    a, b = "tiny-llama-seed0 (llama)", "tiny-gpt2-seed0"
    for probe in ("hello", "story"):
        assert link.loc[(a, probe), "holds"] == "yes" and link.loc[(a, probe), "top_tile"] == 1
        assert link.loc[(a, probe), "channel_tiles"] == "1"
        assert link.loc[(b, probe), "holds"] == "no" and link.loc[(b, probe), "top_tile"] == 0
        assert link.loc[(b, probe), "channel_tiles"] == "2"
        assert (link.loc[(b, probe), "top_layers"], link.loc[(b, probe), "layers"]) == (2, 2)  # layers 1 and 2
    third = link.loc["tiny-llama-seed0 (llama-other-probes)"]
    assert (third["holds"] == "unknown").all() and "--superweights" in third["figure"].iloc[0]
    # the superweight tables only one file has are named as left out
    assert any(line.startswith("left out: superweight_tiles") for line in c.header)


def test_two_probe_sets_of_one_model_pair_probes_by_position(screens):
    llama, _, other = screens
    c = compare([llama, other])
    assert [s.label for s in c.inputs] == ["tiny-llama-seed0 (llama)", "tiny-llama-seed0 (llama-other-probes)"]
    assert any(line.startswith("probes differ:") and "by position" in line for line in c.header)
    row = _cell(c, "effect_bias", "probe 1", "tiny-llama-seed0 (llama-other-probes)")
    assert row["figure"].startswith("[count] ") and (row["hits"], row["tests"]) == (4, 4)
    assert _cell(c, "effect_bias", "probe 1", "tiny-llama-seed0 (llama)")["figure"].startswith("[hello] ")


def _digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_the_command_writes_tables_figures_and_markdown_and_leaves_inputs(screens, tmp_path):
    llama, gpt2, _ = screens
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (llama, gpt2)}
    code, out, err = run_cli(["compare", str(llama), str(gpt2), "--out", str(tmp_path / "cmp")])
    assert code == 0, err
    assert "probes: the same in every file" in out
    assert "effect_bias: Max/min bias (effect size)" in out and "tiny-gpt2-seed0: biased matrices | 6 of 6" in out
    assert "tiny-gpt2-seed0, hello: no | tile 0 first in 2 of 2 layers" in out
    written = {p.name for p in (tmp_path / "cmp").iterdir()}
    assert {
        "comparison.md",
        "comparison.csv",
        "statistics.csv",
        "profiles.csv",
        "depth.csv",
        "superactivation.csv",
        "profile_v.png",
        "profile_down.png",
        "profile_gate.png",
    } == written
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "| tiny-llama-seed0 figure | tiny-llama-seed0 verdict | tiny-gpt2-seed0 figure" in md
    assert (tmp_path / "cmp" / "profile_v.png").read_bytes()[:4] == b"\x89PNG"
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (llama, gpt2)} == before


def _refused(args, root, message):
    before = _digests(root)
    code, _, err = run_cli(args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert message in lines[0], lines[0]
    assert _digests(root) == before


def test_files_that_cannot_be_compared_are_refused_in_one_line(screens, tmp_path):
    llama, gpt2, _ = screens
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    shutil.copy(llama, a)
    shutil.copy(gpt2, b)
    strange = tmp_path / "strange.duckdb"  # analysed, but only by tables this version does not know
    shutil.copy(gpt2, strange)
    con = duckdb.connect(str(strange))
    for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'analysis_%'"
    ).fetchall():
        con.execute(f"ALTER TABLE {name} RENAME TO {name.replace('analysis_', 'analysis_old_')}")
    con.close()
    bare = tmp_path / "bare.duckdb"  # a results file that lost its outcomes
    shutil.copy(gpt2, bare)
    con = duckdb.connect(str(bare))
    con.execute("DROP TABLE outcomes")
    con.close()
    for name, keep in (("counts-only", "analysis_counts"), ("saturation-only", "analysis_saturation")):
        shutil.copy(llama, tmp_path / f"{name}.duckdb")  # analysed, by one table each
        con = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        for (table,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name LIKE 'analysis_%'"
        ).fetchall():
            if table != keep:
                con.execute(f"DROP TABLE {table}")
        con.close()
    plain = tmp_path / "notes.duckdb"
    plain.write_text("not a database\n")
    _refused(["compare", str(a), str(strange)], tmp_path, "no table of this version's statistics")
    _refused(
        ["compare", str(tmp_path / "counts-only.duckdb"), str(tmp_path / "saturation-only.duckdb")],
        tmp_path,
        "no statistic in common",
    )
    _refused(["compare", str(a), str(bare)], tmp_path, "no table outcomes")
    _refused(["compare", str(plain), str(a)], tmp_path, "not a readable mutascope results file")
    _refused(["compare", str(a)], tmp_path, "at least two results files")
    _refused(["compare", str(a), str(b), "--out", str(a)], tmp_path, "is also an input")
    _refused(["compare", str(a), str(b), "--alpha", "1.5"], tmp_path, "--alpha")
    assert not np.any([p.name.startswith(".") for p in tmp_path.iterdir()])  # no stray temporary file


def test_compact_exports_compare_as_their_files(screens, tmp_path):
    """A published atlas ships its compact export, not its results file: compare reads either."""
    from mutascope.store import open_results

    llama, gpt2, _ = screens
    dirs = []
    for path in (llama, gpt2):
        dirs.append(tmp_path / path.stem)
        with open_results(path) as r:
            r.export(dirs[-1], compact=True)
    from_files, from_exports = compare([llama, gpt2]), compare(dirs)
    pd.testing.assert_frame_equal(from_exports.statistics, from_files.statistics)
    pd.testing.assert_frame_equal(from_exports.link, from_files.link)
    empty = tmp_path / "empty"
    empty.mkdir()
    _refused(["compare", str(dirs[0]), str(empty)], tmp_path, "not a compact export of a screen (no runs.parquet)")


def _summary_of_ten_tests():
    """A super-weight summary of one probe, built by the library from per-layer ranks: one axis first
    in 2 of its 3 layers among 10 axes (p = 0.028), nine never first (p = 1); BH over the ten
    makes the first q = 0.28; and a second probe whose one axis is first in all 6 of its layers."""
    from mutascope.analysis.superweight_tiles import superweight_summary

    rows = []
    for test in range(10):
        for layer in range(3):
            rank = 1 if test == 0 and layer < 2 else 5
            rows.append(("hello", layer, "v", "col", "super activation", test, rank, 10, 50.0, 1.0))
    rows += [("story", layer, "v", "col", "super activation", 0, 1, 10, 100.0, 9.0) for layer in range(6)]
    tiles = pd.DataFrame(
        rows,
        columns=[
            "probe_id",
            "layer",
            "matrix",
            "axis",
            "role",
            "channel",
            "effect_rank",
            "axes",
            "effect_percentile",
            "median_effect",
        ],
    )
    return superweight_summary(tiles)


def test_super_weight_verdicts_read_the_summary_q_values_not_its_p_values():
    from mutascope.analysis.compare import summary_rows

    summary = _summary_of_ten_tests()
    first = summary[(summary["probe_id"] == "hello") & (summary["channel"] == 0)].iloc[0]
    assert first["p_value"] < 0.05 < first["q_value"]  # the case the verdict must not call
    for table in (summary, summary.drop(columns="q_value")):  # a table analysed before it had q-values
        rows = {
            key: (fig, verdict, hits)
            for key, fig, verdict, hits, _, _ in summary_rows("superweight_summary", table, 0.05)
        }
        fig, verdict, hits = rows["hello v col (super activation, channel 0)"]
        assert (verdict, hits) == ("n.s.", 0)
        assert "q = 0.28 (BH over every matrix x axis x role x channel of a probe)" in fig
        assert rows["story v col (super activation, channel 0)"][1:] == ("top axis", 1)  # p = q = 1e-6
        assert sum(h for _, _, h in rows.values()) == 1


def test_the_super_activation_link_states_the_summary_q_value(screens):
    llama, _, _ = screens
    c = compare([llama, screens[1]])
    summary = c.inputs[0].tables["superweight_summary"]
    for r in c.link[c.link["model"] == "tiny-llama-seed0"].itertuples():
        own = summary[
            (summary["probe_id"] == r.probe_id) & (summary["matrix"] == "v") & (summary["role"] == "super activation")
        ]
        assert r.q_value == pytest.approx(own["q_value"].min())
        assert "(BH over every matrix x axis x role x channel of a probe)" in r.figure


def test_residual_tables_get_the_figures_of_their_statistic():
    """The readout beyond the activation baseline (``residual_*``) is summarised as its statistic is,
    not as a generic table of rows."""
    from mutascope.analysis.compare import summary_rows

    bias = pd.DataFrame(
        {
            "probe_id": ["hello"] * 3,
            "pair": ["max/min"] * 3,
            "bias": ["max", "none", "min"],
            "larger": ["max", "max", "max"],
            "q_value": [0.01, 0.5, 0.02],
        }
    )
    assert summary_rows("residual_bias", bias, 0.05) == summary_rows("effect_bias", bias, 0.05)
    assert summary_rows("residual_bias", bias, 0.05)[0][1].startswith("2 of 3 matrices biased")
