"""Super weights on the screen's map: which axes are marked, and where they rank.

The paper's Llama-2-7B link, made a test: a super activation at channel 2533
with 64-wide tiles marks ``v`` column tile 39, and a sensitive column planted
there ranks at the top of its matrix.
"""

import json

import duckdb
import numpy as np
import pandas as pd
import pytest
from test_effect_analysis import effect_frame

from mutascope.analysis import marked_axes, read_superweights, superweight_tiles
from mutascope.analysis.superweight_tiles import SuperWeights, check_same_model
from mutascope.errors import MutascopeError

LLAMA2 = SuperWeights(
    path=None,
    model_id="llama-2-7b",
    content_hash="a" * 64,
    dtype="float32",
    weights=((1, 2533, 7890),),
    activations=((2533, 1),),
)


def test_llama2_super_activation_marks_v_column_tile_39():
    screened = [(layer, m) for layer in (0, 1, 2, 31) for m in ("q", "k", "v", "o", "gate", "up", "down")]
    marks = marked_axes(LLAMA2, screened, (64, 64)).set_index(["layer", "matrix", "axis"])
    assert marks.loc[(2, "v", "col"), "index"] == 39 == 2533 // 64
    for m in ("q", "k", "v", "gate", "up"):
        assert marks.loc[(31, m, "col"), "index"] == 39
    assert marks.loc[(2, "o", "row"), "index"] == 39
    # the super weight's own down matrix: its row tile and its column tile (7890 // 64 = 123)
    assert marks.loc[(1, "down", "row"), "index"] == 39 and marks.loc[(1, "down", "col"), "index"] == 123
    # before and in the layer that creates it, nothing reads the super activation
    activation = marks[marks["role"] == "super activation"]
    assert not any(layer <= 1 and m != "down" for layer, m, _ in activation.index)
    before = marks[marks["role"] == "before"]  # there the same axes are marked as a control
    assert sorted({layer for layer, _, _ in before.index}) == [0, 1] and (before["index"] == 39).all()
    assert "super-activation channel 2533 (from layer 1)" in marks.loc[(2, "v", "col"), "reason"]


def test_a_sensitive_column_at_the_marked_tile_ranks_at_the_top():
    rng = np.random.default_rng(0)
    shape = (8, 48)  # v of a smaller screen; column tile 39 exists
    mx, mn = np.exp(rng.normal(0, 1, shape)), np.exp(rng.normal(0, 1, shape))
    mx[:, 39] *= 50
    mn[:, 39] *= 50
    frame = effect_frame({"max": mx, "min": mn}, layer=2, matrix="v", nsm=rng.random(shape) < 0.5)
    marks = marked_axes(LLAMA2, [(2, "v")], (64, 64))
    assert marks[["matrix", "axis", "index"]].values.tolist() == [["v", "col", 39]]
    table = superweight_tiles(frame, marks).iloc[0]
    assert table["effect_rank"] == 1 and table["effect_percentile"] == 100 and table["axes"] == 48
    assert table["mutants"] == 16 and 0 <= table["nsm_percentile"] <= 100
    # an unremarkable column ranks where chance puts it
    plain = superweight_tiles(
        frame,
        pd.DataFrame(
            [(2, "v", "col", 5, "super activation", 320, "test")],
            columns=["layer", "matrix", "axis", "index", "role", "channel", "reason"],
        ),
    ).iloc[0]
    assert plain["effect_percentile"] < 100


def test_reading_the_duckdb_file_and_the_json_export(tmp_path):
    db = tmp_path / "sw.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE superweight_runs AS SELECT 'm' AS model_id, 'h' AS content_hash, 'float32' AS dtype")
    con.execute(
        "CREATE TABLE superweights AS SELECT * FROM (VALUES ('creator', 2, 507, 90, 0), "
        "('canceller', 3, 507, 11, 0)) t(kind, layer, \"row\", col, iteration)"
    )
    con.execute(
        "CREATE TABLE superactivations AS SELECT * FROM (VALUES (507, 2, 2, 714.0), (507, 2, 3, 700.0)) "
        "t(channel, first_layer, layer, magnitude)"
    )
    con.close()
    sw = read_superweights(db)
    assert (sw.model_id, sw.content_hash, sw.weights, sw.activations) == ("m", "h", ((2, 507, 90),), ((507, 2),))
    js = tmp_path / "sw.json"
    js.write_text(
        json.dumps(
            {
                "format": "mutascope-superweights/1",
                "model_id": "m",
                "content_hash": "h",
                "dtype": "float32",
                "super_weights": [{"layer": 2, "row": 507, "col": 90}],
                "super_activations": [{"channel": 507, "first_layer": 2}],
            }
        )
    )
    assert read_superweights(js) == SuperWeights(js, "m", "h", "float32", ((2, 507, 90),), ((507, 2),))


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        ("{not json", "neither DuckDB nor JSON"),
        ('{"model_id": "m"}', "not a mutascope super-weights export"),
        ('{"format": "mutascope-superweights/1", "super_weights": []}', "malformed entry"),
    ],
)
def test_bad_superweights_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "sw.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(MutascopeError, match=message) as info:
        read_superweights(path)
    assert "\n" not in str(info.value)


def test_a_different_model_is_refused_and_the_same_model_in_another_dtype_accepted():
    run = {"model_id": "llama-2-7b", "model_hash": "a" * 64, "dtype": "float32"}
    check_same_model(LLAMA2, run, "screen.duckdb")
    check_same_model(LLAMA2, {**run, "model_hash": "b" * 64, "dtype": "bfloat16"}, "screen.duckdb")
    with pytest.raises(MutascopeError, match="describes llama-2-7b .* but screen.duckdb screened other"):
        check_same_model(LLAMA2, {**run, "model_id": "other", "model_hash": "c" * 64}, "screen.duckdb")
    with pytest.raises(MutascopeError, match="detect the super weights of the screened model"):
        check_same_model(LLAMA2, {**run, "model_hash": "c" * 64}, "screen.duckdb")  # same id, other weights


SMOLLM2 = SuperWeights(  # channel 507: made in layer 2, cancelled in 9, made again in 11, cancelled in 28
    path=None,
    model_id="smollm2",
    content_hash=None,
    dtype=None,
    weights=((2, 507, 90), (11, 507, 1229)),
    activations=((507, 2), (507, 11)),
    cancellers=((9, 507, 200), (28, 507, 678)),
)


def test_layers_after_a_canceller_do_not_carry_the_super_activation():
    marks = marked_axes(SMOLLM2, [(layer, "v") for layer in range(30)], (64, 64))
    role = marks.set_index("layer")["role"]
    assert (role.loc[[0, 1, 2]] == "before").all()
    assert (role.loc[list(range(3, 10)) + list(range(12, 29))] == "super activation").all()
    assert (role.loc[[10, 11, 29]] == "cancelled").all()  # inputs after the cancellers of layers 9 and 28
    assert "canceller in layer 9" in marks.set_index("layer").loc[10, "reason"]


def test_rechecking_an_old_table_relabels_the_cancelled_layers_and_the_summary_has_q_values():
    from mutascope.analysis.superweight_tiles import recheck_carriers, superweight_summary

    matrices = [(layer, m) for layer in range(30) for m in ("v", "down")]
    marks = marked_axes(SMOLLM2, matrices, (64, 64))
    old = marks.replace({"role": {"cancelled": "super activation"}})  # as written before the check
    tiles = old.assign(probe_id="p", mutants=2, median_effect=1.0, effect_rank=1.0, effect_percentile=100.0, axes=3)
    fixed = recheck_carriers(tiles)
    assert fixed[["layer", "role"]].equals(marks[["layer", "role"]])
    summary = superweight_summary(fixed).set_index(["matrix", "role"])
    assert summary.loc[("v", "cancelled"), "layers"] == 3 and summary.loc[("v", "super activation"), "layers"] == 24
    assert summary["q_value"].notna().all() and (summary["q_value"] >= summary["p_value"]).all()


def test_the_before_sentence_only_accompanies_a_called_super_activation_axis():
    from types import SimpleNamespace

    from mutascope.analysis.sentences import superweights as say

    def row(role, top, q):
        return dict(
            probe_id="p",
            matrix="k",
            axis="col",
            role=role,
            channel=540,
            layers=17 if role != "before" else 1,
            top_layers=top,
            expected_top=1.7,
            p_value=q,
            q_value=q,
            median_percentile=60.0,
        )

    ctx = SimpleNamespace(alpha=0.05)
    uncalled = pd.DataFrame([row("super activation", 0, 1.0), row("before", 1, 1.0)])
    assert say(uncalled, ctx) == []
    called = pd.DataFrame([row("super activation", 12, 0.001), row("before", 1, 0.3)])
    lines = say(called, ctx)
    assert len(lines) == 2 and "already the most sensitive in 1 of the 1 layers" in lines[1] and "q = 0.3" in lines[1]
