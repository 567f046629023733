"""Super weights on tiny random models with planted super weights.

Planting (``plant``): in ``layer``'s MLP, input channel ``k`` of ``down`` is
made to spike by setting row ``k`` of ``up`` (and of ``gate`` where the model
has one) to ``c * u``, ``u`` a fixed random unit vector; so ``x[k] ~ c^2 (u.h)^2``
(gated) or ``~ c (u.h)`` (GPT-2/OPT), largest at the token where ``u.h`` is.
Column ``k`` of ``down`` is zeroed except ``down[row, k] = value`` (an outlier,
15-20 std of the 0.2 init), so that channel writes a spike into one residual
channel only. Two channels ``k1`` (c=20, value 4) and ``k2`` (c=15, value 3)
share ``u`` (so they spike at the same token) and ``row``: the layer's
largest output is then ``row``, explained by ``k1``; ``k2`` is hidden until
``down[row, k1]`` is zeroed, after which ``row`` still spikes (~1/3 as much)
and ``k2`` explains it. The paper's "largest input" rule would pick ``k1``
again there and never find ``k2``; the detector's "largest contribution" rule
finds it (Llama-13B's two super weights share a row like this).
"""

from __future__ import annotations

import json
import math

import duckdb
import pytest
import torch

from mutascope import evaluate
from mutascope import superweights as sw
from mutascope.errors import MutascopeError
from mutascope.testing import tiny_model

ROW, K1, K2 = 5, 17, 42


def plant(subject, layer=0, row=ROW, cols=(K1, K2), scales=(20.0, 15.0), values=(4.0, 3.0), seed=1):
    a = subject.anatomy
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(a.ref(layer, "up").shape[1], generator=g)
    u /= u.norm()
    down = a.weight(layer, "down")
    for k, c, v in zip(cols, scales, values):
        for m in ("gate", "up"):
            if m in a.matrices:
                a.weight(layer, m)[k] = c * u
        down[:, k] = 0
        down[row, k] = v
    return subject


@pytest.fixture(scope="module")
def planted():
    return plant(tiny_model("llama"))


@pytest.fixture(scope="module")
def work(planted):
    ids = sw.corpus_ids(planted, sw.default_corpus(), 96)
    return sw.Workload(ids, window=48, prompts=("Hello world, the", "Once upon a time"), words=(".", ","))


def test_finds_planted_super_weight_and_iterates_to_the_hidden_one(planted):
    first = sw.detect(planted, max_iterations=1)
    assert first.coords == [(0, ROW, K1)]
    found = sw.detect(planted)
    assert found.coords == [(0, ROW, K1), (0, ROW, K2)]
    assert [w.iteration for w in found.weights] == [0, 1]
    assert found.iterations == 3  # pass 2 finds nothing new
    w1 = found.weights[0]
    assert w1.value == 4.0 and w1.rank == 1 and w1.module_path == "model.layers.0.mlp.down_proj"
    assert found.weights[1].rank == 2
    assert abs(w1.input_spike) > 50 and abs(w1.output_spike) > 50
    act = found.activations[0]
    assert act.channel == ROW and act.layer == 0 and len(act.magnitudes) == 3
    assert min(act.magnitudes) > 50  # rides the residual stream through the later layers


@pytest.mark.parametrize("family", ["gpt2", "phi3", "opt"])
def test_finds_planted_super_weights_in_other_layouts(family):
    gain = 10.0 if family in ("gpt2", "opt") else 1.0  # ungated MLPs: x grows like c, not c^2
    subject = plant(tiny_model(family), scales=(200.0 * gain / 10, 150.0 * gain / 10) if gain > 1 else (20.0, 15.0))
    before = subject.content_hash()
    assert sw.detect(subject).coords == [(0, ROW, K1), (0, ROW, K2)]
    assert subject.content_hash() == before


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_nothing_found_without_super_weights(family):
    found = sw.detect(tiny_model(family))
    assert found.weights == [] and found.activations == [] and found.iterations == 1


def test_detection_restores_the_model_even_on_error(planted, monkeypatch):
    before = planted.content_hash()
    calls = {"n": 0}
    real = sw.detect.__globals__["capture"]

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] == 2:  # after pass 0 has zeroed the first super weight
            raise RuntimeError("injected")
        return real(*args)

    monkeypatch.setitem(sw.detect.__globals__, "capture", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        sw.detect(planted)
    assert planted.content_hash() == before


def test_bad_settings_are_user_errors(planted):
    with pytest.raises(MutascopeError):
        sw.detect(planted, threshold=0, relative=0)
    with pytest.raises(MutascopeError):
        sw.detect(planted, texts=[])
    with pytest.raises(MutascopeError):
        with sw.zeroed(planted, [(0, 10_000, 0)]):
            pass


@pytest.mark.parametrize(
    "make",
    [
        lambda s: sw.zeroed(s, [(0, ROW, K1)]),
        lambda s: sw.scaled(s, [(0, ROW, K1), (0, ROW, K2)], 2.5),
        lambda s: sw.top_zeroed(s, 1e-4, exclude=[(0, ROW, K1)]),
        lambda s: sw.activation_restored(s, [(0, ROW, K1)], {(0, ROW, K1): 4.0}, 50.0),
        lambda s: sw.quantized(s, 32),
        lambda s: sw.quantized(s, 64, clip=3.0, keep=[(0, ROW, K1)]),
    ],
    ids=["zero", "scale", "top", "restore-activation", "rtn", "rtn-sw"],
)
def test_every_ablation_restores_exactly_even_when_it_fails(planted, make):
    before = planted.content_hash()
    ids = planted.tokenizer("Hello world", return_tensors="pt").input_ids
    with pytest.raises(RuntimeError, match="injected"):
        with make(planted):
            assert planted.content_hash() != before
            planted.model(ids)
            raise RuntimeError("injected")
    assert planted.content_hash() == before


def test_top_weights_rule(planted):
    total = sum(r.shape[0] * r.shape[1] for r in planted.anatomy.refs())
    chosen = sw.top_weights(planted, 1e-4, exclude=[(0, ROW, K1)])
    assert len(chosen) == math.ceil(1e-4 * total)
    assert (0, "down", ROW, K1) not in {c[:4] for c in chosen}
    mags = [abs(c[4]) for c in chosen]
    assert mags == sorted(mags, reverse=True)
    everything = torch.cat([planted.anatomy.weight(r.layer, r.matrix).abs().flatten() for r in planted.anatomy.refs()])
    expected = everything.sort(descending=True).values
    expected = expected[expected != 4.0][: len(chosen)]  # the excluded super weight is the only 4.0
    assert torch.allclose(torch.tensor(mags), expected)


def test_activation_restore_brings_the_spike_back(planted):
    ids = planted.tokenizer("My favourite condiment is mustard.", return_tensors="pt").input_ids
    down = planted.model.get_submodule("model.layers.0.mlp.down_proj")
    seen = []
    handle = down.register_forward_hook(lambda m, a, o: seen.append(o[0, :, ROW].clone()))
    try:
        planted.model(ids)
        with sw.zeroed(planted, [(0, ROW, K1)]):
            planted.model(ids)
        with sw.activation_restored(planted, [(0, ROW, K1)], {(0, ROW, K1): 4.0}, 50.0):
            planted.model(ids)
    finally:
        handle.remove()
    original, zeroed, restored = seen
    t = int(original.abs().argmax())
    assert abs(zeroed[t]) < 0.5 * abs(original[t])
    assert torch.allclose(restored[t], original[t], rtol=1e-4)


def test_ablation_table_and_store(planted, work, tmp_path, monkeypatch):
    before = planted.content_hash()
    found = sw.detect(planted)
    rows = sw.ablation_table(planted, found.coords, work, fraction=1e-4)
    names = [r.name for r in rows]
    assert names[:4] == ["original", "zero super weights", "zero L0[5,17]", "zero L0[5,42]"]
    assert names[-6:] == ["scale x0", "scale x0.5", "scale x1", "scale x1.5", "scale x2", "scale x3"]
    by = {r.name: r for r in rows}
    assert by["scale x1"].perplexity == by["original"].perplexity
    assert by["scale x0"].perplexity == by["zero super weights"].perplexity
    assert set(by["original"].stopwords) == {".", ","}
    assert all(r.perplexity > 1 for r in rows)
    assert by["zero top 0.0001 others"].n_changed == math.ceil(
        1e-4 * sum(r.shape[0] * r.shape[1] for r in planted.anatomy.refs())
    )
    quant = sw.quantization_table(planted, found.coords, work, block_size=32, original=rows[0])
    assert [q.name for q in quant] == ["original", "INT4 RTN naive", "INT4 RTN + SW handling"]
    assert planted.content_hash() == before

    db = sw.write_results(tmp_path / "sw.duckdb", sw.frames(planted, found, rows, quant, {"x": 1}))
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM superweights WHERE kind='creator'").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM superactivations").fetchone()[0] == 3 + 3
        assert con.execute("SELECT count(*) FROM ablations").fetchone()[0] == len(rows)
        assert con.execute("SELECT name FROM quantization ORDER BY name").fetchall()[0][0] == "INT4 RTN + SW handling"
    finally:
        con.close()


def test_ablation_table_restores_when_a_measurement_fails(planted, work, monkeypatch):
    before = planted.content_hash()
    calls = {"n": 0}
    real = evaluate.perplexity

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # inside the top-weight ablation
            raise RuntimeError("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "perplexity", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        sw.ablation_table(planted, [(0, ROW, K1), (0, ROW, K2)], work)
    assert planted.content_hash() == before


def test_rtn_quantizes_blockwise():
    w = torch.randn(3, 70)
    w[1, 5] = 40.0  # an outlier widens only its own block
    q = sw.rtn(w, 32)
    assert q.shape == w.shape
    for r in range(3):
        for b0 in range(0, 70, 32):
            assert len(torch.unique(q[r, b0 : b0 + 32])) <= 16
    err = (q - w).abs()
    assert err[1, :32].max() > 5 * err[1, 32:].max()  # the outlier's block lost its resolution
    assert err[0].max() < 0.5
    assert torch.equal(sw.rtn(torch.ones(2, 5), 4), torch.ones(2, 5))
    with pytest.raises(MutascopeError):
        sw.rtn(w, 0)


def test_super_weight_handling_keeps_the_super_weight(planted):
    view = planted.anatomy.weight(0, "down")
    with sw.quantized(planted, 64, clip=3.0, keep=[(0, ROW, K1)]):
        assert view[ROW, K1] == 4.0
        assert view[ROW, K2] != 3.0  # clipped, not kept
    with sw.quantized(planted, 64):
        assert view[ROW, K1] != 4.0 or True  # naive RTN: 4.0 is a block max, may survive
        assert len(torch.unique(view[0, :64])) <= 16


def test_catalogue_matching():
    assert sw.catalogue_key("meta-llama/Llama-2-7b-hf") == "llama-2-7b"
    assert sw.catalogue_key("allenai/OLMo-1B-0724-hf") == "olmo-1b-0724"
    assert sw.catalogue_key("/models/Mistral-7B-v0.1/") == "mistral-7b-v0.1"
    assert sw.known("SmolLM2-135M-Instruct")[1] == ((2, 507, 90), (11, 507, 1229))
    assert sw.check("tiny-llama-seed0", [(0, 1, 2)]) is None
    r = sw.check("huggyllama/llama-13b", [(2, 2231, 2278), (5, 1, 1)])
    assert not r.ok and r.matched == ((2, 2231, 2278),) and r.missing == ((2, 2231, 6939),)
    assert r.extra == ((5, 1, 1),)
    assert sw.check("Meta-Llama-3-8B", list(sw.CATALOGUE["meta-llama-3-8b"][1])).ok


def test_export(planted, tmp_path):
    found = sw.detect(planted)
    path = sw.write_export(tmp_path / "sub" / "sw.json", planted, found, (4, 8))
    data = json.loads(path.read_text())
    assert data["model_id"] == planted.model_id and data["content_hash"] == planted.content_hash()
    w = data["super_weights"][0]
    assert (w["layer"], w["row"], w["col"], w["value"]) == (0, ROW, K1, 4.0)
    assert w["tile"] == {"layer": 0, "matrix": "down", "row": ROW // 4, "col": K1 // 8}
    assert w["stored_index"] == [ROW, K1]
    act = data["super_activations"][0]
    assert act["channel"] == ROW and act["row_tile"] == ROW // 4 and act["col_tile"] == ROW // 8
    assert {t["matrix"] for t in act["tiles"]} == {"q", "k", "v", "o", "gate", "up", "down"}


def test_export_gpt2_stored_index_is_transposed():
    subject = plant(tiny_model("gpt2"), scales=(200.0, 150.0))
    data = sw.export_dict(subject, sw.detect(subject))
    assert data["super_weights"][0]["stored_index"] == [K1, ROW]


def test_evaluation_pieces(planted, tmp_path):
    ids = sw.corpus_ids(planted, "Hello there. " * 20, 50)
    assert len(ids) == 50
    ppl = sw.perplexity(planted, ids, window=16)
    assert 1 < ppl < 1e4
    assert sw.stopword_probs(planted, ["Hi"], (".", " the")).keys() == {"."}
    with pytest.raises(MutascopeError):
        sw.read_corpus(tmp_path / "missing.txt")
    assert "village" in sw.default_corpus()


def test_choice_accuracy(planted, tmp_path):
    for split, n in (("dev", 5), ("test", 3)):
        (tmp_path / split).mkdir()
        rows = [f"Question {i}?,one,two,three,four,{'ABCD'[i % 4]}" for i in range(n)]
        (tmp_path / split / f"toy_{split}.csv").write_text("\n".join(rows) + "\n")
    qs = sw.choice_set(planted, tmp_path, "toy", limit=3)
    assert len(qs.prompts) == 3 and qs.answers == (0, 1, 2)
    assert sw.choice_accuracy(planted, qs) in (0, 1 / 3, 2 / 3, 1)


def test_command_on_a_saved_tiny_model(tmp_path):
    import typer
    from typer.testing import CliRunner

    from mutascope.commands.superweights import superweights

    subject = plant(tiny_model("llama"))
    subject.model.save_pretrained(tmp_path / "m")
    subject.tokenizer.save_pretrained(tmp_path / "m")
    app = typer.Typer()
    app.command()(superweights)
    app.command("noop")(lambda: None)  # two commands, so the command name is an argument
    args = [
        "superweights",
        "--model",
        str(tmp_path / "m"),
        "--max-tokens",
        "64",
        "--window",
        "32",
        "--out",
        str(tmp_path / "r.duckdb"),
        "--export",
        str(tmp_path / "e.json"),
        "--check",
        "--quantize",
        "--block-size",
        "32",
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "ablations" in result.output and "quantization" in result.output
    assert "catalogue has no entry" in result.output
    assert json.loads((tmp_path / "e.json").read_text())["super_weights"][0]["col"] == K1
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM ablations").fetchone()[0] > 5
    finally:
        con.close()
