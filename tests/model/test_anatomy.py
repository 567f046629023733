"""The anatomy maps canonical (layer, matrix, row, col) onto every storage layout."""

import pytest
import torch

from mutascope.errors import MutascopeError
from mutascope.model.anatomy import MATRICES, anatomy_of
from mutascope.testing import TINY_FAMILIES, tiny_model

HIDDEN, INTER, HEADS, HEAD_DIM = 96, 200, 4, 24
FULL_KV = {"gpt2", "opt"}  # their configs have no grouped-query attention
NO_GATE = {"gpt2", "opt"}


@pytest.fixture(params=TINY_FAMILIES)
def subject(request):
    return tiny_model(request.param)


def family(subject):
    return subject.model_id.split("-")[1]


def test_matrices_and_shapes(subject):
    a = subject.anatomy
    fam = family(subject)
    kv = HEADS if fam in FULL_KV else 2
    expected = {
        "q": (HEADS * HEAD_DIM, HIDDEN),
        "k": (kv * HEAD_DIM, HIDDEN),
        "v": (kv * HEAD_DIM, HIDDEN),
        "o": (HIDDEN, HEADS * HEAD_DIM),
        "gate": (INTER, HIDDEN),
        "up": (INTER, HIDDEN),
        "down": (HIDDEN, INTER),
    }
    if fam in NO_GATE:
        del expected["gate"]
    assert a.n_layers == 3
    assert a.matrices == tuple(m for m in MATRICES if m in expected)
    for layer in range(a.n_layers):
        for m, shape in expected.items():
            assert a.ref(layer, m).shape == shape
            assert tuple(a.weight(layer, m).shape) == shape
    refs = a.refs()
    assert [(r.layer, r.matrix) for r in refs] == [(layer, m) for layer in range(3) for m in a.matrices]
    for r in refs:
        assert r.param_name == r.module_path + ".weight"
        assert r.transposed == (fam == "gpt2")
        assert not any(x in r.param_name for x in ("embed", "lm_head", "norm", "wte", "wpe"))


def test_view_writes_the_parameter_at_the_right_place(subject):
    a = subject.anatomy
    for r in a.refs():
        param = subject.model.get_parameter(r.param_name)
        w = a.weight(r.layer, r.matrix)
        assert w.untyped_storage().data_ptr() == param.untyped_storage().data_ptr()
        for row, col in [(0, 0), (r.shape[0] - 1, r.shape[1] - 1), (r.shape[0] // 2, 1)]:
            w[row, col] = 1234.5
            stored = param[col, r.offset + row] if r.transposed else param[r.offset + row, col]
            assert stored.item() == 1234.5


def test_fused_offsets():
    phi3 = tiny_model("phi3").anatomy
    assert [(phi3.ref(0, m).offset, phi3.ref(0, m).module_path) for m in ("q", "k", "v")] == [
        (0, "model.layers.0.self_attn.qkv_proj"),
        (96, "model.layers.0.self_attn.qkv_proj"),
        (144, "model.layers.0.self_attn.qkv_proj"),
    ]
    assert [phi3.ref(0, m).offset for m in ("gate", "up")] == [0, 200]
    gpt2 = tiny_model("gpt2").anatomy
    assert [gpt2.ref(2, m).offset for m in ("q", "k", "v")] == [0, 96, 192]
    assert gpt2.ref(2, "k").module_path == "transformer.h.2.attn.c_attn"


@pytest.mark.parametrize("fam", ["phi3", "gpt2"])
def test_writing_one_fused_part_leaves_the_others(fam):
    s = tiny_model(fam)
    a = s.anatomy
    before = {m: a.weight(1, m).clone() for m in ("q", "v", "up")}
    a.weight(1, "k").fill_(7.0)
    assert (a.weight(1, "k") == 7.0).all()
    for m, w in before.items():
        assert torch.equal(a.weight(1, m), w)
    if fam == "phi3":
        up = a.weight(1, "up").clone()
        a.weight(1, "gate").zero_()
        assert torch.equal(a.weight(1, "up"), up)


def test_forward_uses_the_canonical_weight(subject):
    """Changing canonical W[r, c] by d moves module output channel offset+r by d * x[c] only."""
    subject = tiny_model(family(subject), dtype="float64")  # so the difference is exact enough
    a = subject.anatomy
    torch.manual_seed(0)
    for r in a.refs():
        if r.layer != 1:
            continue
        module = subject.model.get_submodule(r.module_path)
        x = torch.randn(1, r.shape[1], dtype=torch.float64)
        y0 = module(x)
        row, col = r.shape[0] - 1, r.shape[1] // 3
        w = a.weight(r.layer, r.matrix)
        old = w[row, col].item()
        w[row, col] = old + 2.0
        delta = module(x) - y0
        w[row, col] = old
        expected = torch.zeros_like(delta)
        expected[0, r.offset + row] = 2.0 * x[0, col]
        torch.testing.assert_close(delta, expected, atol=1e-9, rtol=1e-9)


def test_lookup_errors():
    gpt2 = tiny_model("gpt2").anatomy
    with pytest.raises(MutascopeError, match="unknown matrix 'wq'.*q, k, v, o, gate, up, down"):
        gpt2.ref(0, "wq")
    with pytest.raises(MutascopeError, match="'gate' does not exist.*q, k, v, o, up, down"):
        gpt2.weight(0, "gate")
    with pytest.raises(MutascopeError, match="layer 3 out of range.*0-2"):
        gpt2.ref(3, "q")
    with pytest.raises(MutascopeError, match="out of range"):
        gpt2.weight(-1, "q")


def test_unrecognised_model():
    with pytest.raises(MutascopeError, match="unrecognised architecture"):
        anatomy_of(torch.nn.Sequential(torch.nn.Linear(4, 4)))


def test_interleaved_qkv_is_refused():
    from transformers import AutoModelForCausalLM, GPTNeoXConfig

    config = GPTNeoXConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        vocab_size=64,
        bos_token_id=0,
        eos_token_id=1,
    )
    with pytest.raises(MutascopeError, match="not supported yet"):
        anatomy_of(AutoModelForCausalLM.from_config(config))


def test_fused_split_must_match_the_config():
    s = tiny_model("phi3")
    s.model.config.num_key_value_heads = 1
    with pytest.raises(MutascopeError, match="cannot split fused .*qkv_proj"):
        anatomy_of(s.model)


def test_block_path_names_the_decoder_block():
    from mutascope.testing import tiny_model

    for family, prefix in (("llama", "model.layers"), ("gpt2", "transformer.h")):
        anatomy = tiny_model(family).anatomy
        assert anatomy.block_path(1) == f"{prefix}.1"
        assert anatomy.ref(1, "down").module_path.startswith(anatomy.block_path(1) + ".")
