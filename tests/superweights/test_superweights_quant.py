"""Weight quantization over block sizes, and activation quantization with the super activation held,
on tiny models with planted outliers (seconds).

Perplexity of a random tiny model says nothing about quantization quality
(it is near the vocabulary size either way), so the planted cases are read
by how far the quantized model's next-token distribution moves from the
unquantized one (mean KL over a corpus): that ordering is known by
construction. The tables themselves are checked for shape, restore and
content; their perplexities are measured on SmolLM2 in the real-model test.
"""

from __future__ import annotations

import json

import duckdb
import pytest
import torch
from test_superweights import K1, K2, ROW, plant

from mutascope import evaluate
from mutascope import superweights as sw
from mutascope.errors import MutascopeError
from mutascope.testing import tiny_model


def _kl(subject, ids, manager) -> float:
    """Mean KL(original || inside ``manager``) of the next-token distributions over ``ids``."""
    with torch.no_grad():
        ref = subject.model(ids[None]).logits[0].float().log_softmax(-1)
        with manager:
            got = subject.model(ids[None]).logits[0].float().log_softmax(-1)
    return float((ref.exp() * (ref - got)).sum(-1).mean())


@pytest.fixture(scope="module")
def outlier():
    """A tiny llama whose layer-1 ``down`` holds one weight ~250 std from the rest."""
    subject = tiny_model("llama")
    with torch.no_grad():
        subject.anatomy.weight(1, "down")[ROW, K1] = 50.0
    return subject


@pytest.fixture(scope="module")
def ids(outlier):
    return sw.corpus_ids(outlier, sw.default_corpus(), 96)


def test_parse_blocks_and_bits():
    assert sw.parse_blocks("64") == (64,)
    assert sw.parse_blocks(64) == (64,)
    assert sw.parse_blocks("per-tensor, 128,64,per-row,64,PER-ROW") == (64, 128, "per-row", "per-tensor")
    for bad, msg in (
        ("", "bad --block-size"),
        ("64,,128", "bad --block-size"),
        ("0", "at least 1"),
        ("-64", "at least 1"),
        ("abc", "'abc'"),
        ("64.5", "'64.5'"),
        ("per-column", "per-column"),
    ):
        with pytest.raises(MutascopeError, match=msg):
            sw.parse_blocks(bad)
    assert sw.parse_bits("3,4,4") == (4, 3)
    for bad in ("", "1", "9", "x", "4,"):
        with pytest.raises(MutascopeError, match="--bits"):
            sw.parse_bits(bad)
    assert sw.parse_bits("16", "--activation-bits", 2, 16) == (16,)


def test_per_row_and_per_tensor_blocks():
    torch.manual_seed(0)
    w = torch.randn(6, 70)
    assert torch.equal(sw.rtn(w, "per-row"), sw.rtn(w, 70))
    q = sw.rtn(w, "per-tensor", bits=3)
    assert len(torch.unique(q)) <= 8 and q.shape == w.shape
    assert torch.equal(sw.rtn(w, "per-tensor"), sw.rtn(w.reshape(1, -1), 420).reshape(6, 70))
    with pytest.raises(MutascopeError, match="block size"):
        sw.rtn(w, "per-column")


def test_a_planted_outlier_hurts_naive_rtn_more_the_larger_the_block():
    """Reconstruction error of the *other* weights: naive RTN loses them to the outlier's range,
    clip + keep does not, and the gap widens with the block (the paper's claim, constructed)."""
    torch.manual_seed(0)
    w = torch.randn(64, 256) * 0.02
    w[3, 5] = 2.0
    others = torch.ones_like(w, dtype=torch.bool)
    others[3, 5] = False
    gaps = []
    for block in (16, 64, "per-row", "per-tensor"):
        naive = (sw.rtn(w, block) - w).abs()[others].mean()
        aware_q = sw.rtn(sw.clip_z(w, 6.0), block)
        aware_q[3, 5] = w[3, 5]
        aware = (aware_q - w).abs()[others].mean()
        assert aware_q[3, 5] == w[3, 5]
        gaps.append(float(naive / aware))
    assert gaps == sorted(gaps) and gaps[0] < 1.1 and gaps[-1] > 3, gaps


def test_quantized_model_ordering_and_restore(outlier, ids):
    """INT8, so that quantizing every other (random, wide) matrix per tensor costs little and the
    planted outlier's matrix decides: naive per-tensor RTN moves the model far more than clip + keep,
    and the gap widens with the block."""
    before = outlier.content_hash()
    keep = [(1, ROW, K1)]
    gaps = []
    for block in (16, "per-row", "per-tensor"):
        naive = _kl(outlier, ids, sw.quantized(outlier, block, bits=8))
        aware = _kl(outlier, ids, sw.quantized(outlier, block, bits=8, clip=6.0, keep=keep))
        gaps.append(naive / aware)
    assert outlier.content_hash() == before
    assert gaps == sorted(gaps) and gaps[0] < 1.2 and gaps[-1] > 4, gaps
    with pytest.raises(KeyError):
        with sw.quantized(outlier, "per-tensor", bits=3, clip=6.0, keep=keep):
            raise KeyError("mid-measurement failure")
    assert outlier.content_hash() == before


def test_quantization_sweep_table_and_frame(outlier, ids, monkeypatch):
    before = outlier.content_hash()
    work = sw.Workload(ids, window=48, prompts=())
    rows = sw.quantization_table(outlier, [(1, ROW, K1)], work, block_size=[16, "per-tensor"], bits=[4, 3])
    assert outlier.content_hash() == before
    assert [r.name for r in rows][:3] == ["original", "INT4 RTN naive, block 16", "INT4 RTN + SW handling, block 16"]
    assert len(rows) == 1 + 2 * 2 * 2
    frame = sw.store.sweep_frame(rows)
    assert list(frame.columns) == [
        "bits",
        "block_size",
        "block_index",
        "method",
        "perplexity",
        "x_original",
        "accuracy",
    ]
    assert list(zip(frame.bits, frame.block_size, frame.method))[:4] == [
        (4, "16", "naive"),
        (4, "16", "sw-aware"),
        (4, "per-tensor", "naive"),
        (4, "per-tensor", "sw-aware"),
    ]
    assert frame["block_index"].tolist() == [0, 0, 1, 1] * 2
    assert frame["x_original"].tolist() == pytest.approx((frame["perplexity"] / rows[0].perplexity).tolist())
    # a single block size, as before the sweep existed
    one = sw.quantization_table(outlier, [(1, ROW, K1)], work, block_size=64, original=rows[0])
    assert len(one) == 3 and one[1].config == dict(bits=4, block_size="64", method="naive")

    calls = {"n": 0}
    real = evaluate.perplexity

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("injected")
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate, "perplexity", flaky)
    with pytest.raises(RuntimeError, match="injected"):
        sw.quantization_table(outlier, [(1, ROW, K1)], work, block_size=["per-tensor"], bits=[4, 3])
    assert outlier.content_hash() == before


def test_sweep_figure(outlier, ids, tmp_path):
    from mutascope.superweights.figures import quant_sweep_figure, write_figure

    work = sw.Workload(ids[:48], window=48, prompts=())
    rows = sw.quantization_table(outlier, [(1, ROW, K1)], work, block_size=[16, 32, "per-tensor"], bits=[4])
    frame = sw.store.sweep_frame(rows)
    fig = quant_sweep_figure(frame, rows[0].perplexity)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["16", "32", "per-tensor"]
    assert len(ax.get_lines()) == 3  # naive, aware, the unquantized line
    path = write_figure(tmp_path / "sweep.png", frame, rows[0].perplexity)
    assert path.read_bytes()[:4] == b"\x89PNG"


# ---- activation quantization ---------------------------------------------------------------------


def test_quantize_activation_holds_only_the_spike():
    torch.manual_seed(0)
    x = torch.randn(2, 10, 50)
    x[0, 0, 7] = 1000.0
    naive, n0 = sw.quantize_activation(x, 8)
    held, n1 = sw.quantize_activation(x, 8, channels=(7,))
    assert n0 == 0 and n1 == 1
    assert held[0, 0, 7] == 1000.0
    rest = torch.ones_like(x, dtype=torch.bool)
    rest[0, 0, 7] = False
    assert (naive - x).abs()[rest].mean() > 20 * (held - x).abs()[rest].mean()
    assert (held - x).abs()[rest].max() <= (x[rest].max() - x[rest].min()) / 255 / 2 + 1e-5
    assert held.dtype == x.dtype and held.shape == x.shape
    # ordinary values of a candidate channel are quantized like the rest; no spike -> nothing held
    y = torch.randn(10, 50)
    assert torch.equal(sw.quantize_activation(y, 8, (7,))[0], sw.quantize_activation(y, 8)[0])
    assert sw.quantize_activation(y, 8, (7,))[1] == 0


def test_hold_channels_point_at_the_super_activation(outlier):
    subject = plant(tiny_model("llama"))
    hold = sw.hold_channels(subject, [(0, ROW, K1), (0, ROW, K2)], channels=[ROW])
    a = subject.anatomy
    assert hold[a.ref(0, "down").module_path] == (K1, K2)
    for layer in range(a.n_layers):
        for m in ("q", "k", "v", "gate", "up"):
            assert hold[a.ref(layer, m).module_path] == (ROW,)
        assert a.ref(layer, "o").module_path not in hold
    assert a.ref(1, "down").module_path not in hold


def test_a_planted_super_activation_hurts_naive_activation_rtn_and_holding_it_fixes_that():
    subject = plant(tiny_model("llama"))
    before = subject.content_hash()
    found = sw.detect(subject)
    assert found.coords == [(0, ROW, K1), (0, ROW, K2)]
    hold = sw.hold_channels(subject, found.coords, [a.channel for a in found.activations])
    ids = sw.corpus_ids(subject, sw.default_corpus(), 64)
    paths = {r.module_path for r in subject.anatomy.refs()}
    for bits in (8, 6):
        naive = _kl(subject, ids, sw.activations_quantized(subject, bits))
        with sw.activations_quantized(subject, bits, hold) as stats:
            pass
        held = _kl(subject, ids, sw.activations_quantized(subject, bits, hold))
        assert naive > 5 * held, (bits, naive, held)
    with sw.activations_quantized(subject, 8, hold) as stats:
        with torch.no_grad():
            subject.model(ids[None])
    assert stats.tensors == len(paths) and stats.held >= 1 and stats.elements > stats.held
    assert subject.content_hash() == before
    assert all(not subject.model.get_submodule(p)._forward_pre_hooks for p in paths)
    with pytest.raises(KeyError):
        with sw.activations_quantized(subject, 8, hold):
            raise KeyError("mid-measurement failure")
    assert all(not subject.model.get_submodule(p)._forward_pre_hooks for p in paths)
    with pytest.raises(MutascopeError, match="bits"):
        with sw.activations_quantized(subject, 1):
            pass


def test_activation_quant_table(tmp_path):
    subject = plant(tiny_model("llama"))
    before = subject.content_hash()
    found = sw.detect(subject)
    work = sw.Workload(sw.corpus_ids(subject, sw.default_corpus(), 64), window=32, prompts=())
    rows = sw.activation_quant_table(subject, found.coords, work, bits=[8, 4], channels=(ROW,))
    assert subject.content_hash() == before
    frame = sw.store.activation_quant_frame(rows)
    assert list(zip(frame.bits, frame.method)) == [(8, "naive"), (8, "sa-held"), (4, "naive"), (4, "sa-held")]
    assert (frame.loc[frame.method == "naive", "held_elements"] == 0).all()
    assert (frame.loc[frame.method == "sa-held", "held_elements"] > 0).all()
    assert (frame["quantized_tensors"] > 0).all()


def test_command_sweeps_blocks_and_quantizes_activations(tmp_path):
    import typer
    from typer.testing import CliRunner

    from mutascope.commands.superweights import superweights

    subject = plant(tiny_model("llama"))
    subject.model.save_pretrained(tmp_path / "m")
    subject.tokenizer.save_pretrained(tmp_path / "m")
    app = typer.Typer()
    app.command()(superweights)
    app.command("noop")(lambda: None)
    db, fig = tmp_path / "r.duckdb", tmp_path / "sweep.png"
    args = [
        "superweights",
        "--model",
        str(tmp_path / "m"),
        "--max-tokens",
        "64",
        "--window",
        "32",
        "--detect-only",
        "--quantize",
        "--block-size",
        "per-tensor,32",
        "--bits",
        "4,3",
        "--quantize-activations",
        "--activation-bits",
        "8",
        "--out",
        str(db),
        "--figure",
        str(fig),
        "--export",
        str(tmp_path / "e.json"),
    ]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "perplexity by block size" in result.output and "activation quantization" in result.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        sweep = con.execute("SELECT bits, block_size, method FROM superweight_quant_sweep").fetchall()
        act = con.execute("SELECT bits, method FROM superweight_activation_quant").fetchall()
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    assert sweep[:2] == [(4, "32", "naive"), (4, "32", "sw-aware")] and len(sweep) == 8
    assert act == [(8, "naive"), (8, "sa-held")]
    assert "ablations" not in names  # --detect-only
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert json.loads((tmp_path / "e.json").read_text())["super_weights"][0]["col"] == K1
    # a later run without the sweep drops its stale tables
    result = CliRunner().invoke(app, args[:11] + ["--out", str(db)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    finally:
        con.close()
    assert "superweight_quant_sweep" in names and "superweight_activation_quant" not in names
