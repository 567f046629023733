"""What is known of a model before it loads: the layer count from config.json or a GGUF header,
read without importing torch."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from mutascope.errors import MutascopeError
from mutascope.model.source import stated_layers


def _gguf(path, entries) -> None:
    """A GGUF file holding only a key-value header (version 3, no tensors)."""

    def string(s: str) -> bytes:
        return struct.pack("<Q", len(s.encode())) + s.encode()

    body = b""
    for key, kind, value in entries:
        body += string(key) + struct.pack("<I", kind)
        if kind == 8:
            body += string(value)
        elif kind == 9:  # an array of strings (the tokenizer's vocabulary comes as one)
            body += struct.pack("<IQ", 8, len(value)) + b"".join(string(v) for v in value)
        else:
            body += struct.pack({4: "<I", 10: "<Q", 6: "<f"}[kind], value)
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(entries)) + body)


def test_a_gguf_header_states_the_block_count(tmp_path):
    path = tmp_path / "m.gguf"
    _gguf(
        path,
        [
            ("general.architecture", 8, "llama"),
            ("general.alignment", 4, 32),
            ("tokenizer.ggml.tokens", 9, ["a", "bb", "ccc"]),
            ("llama.rope.freq_base", 6, 1e4),
            ("llama.block_count", 10, 24),
        ],
    )
    assert stated_layers(path) == 24
    _gguf(path, [("general.architecture", 8, "llama")])  # no count: known only once loaded
    assert stated_layers(path) is None
    path.write_bytes(b"GGUF\x03\x00")  # truncated: the load will say what is wrong
    assert stated_layers(path) is None


def test_a_directory_states_its_layers_in_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 12}))
    assert stated_layers(tmp_path) == 12
    (tmp_path / "config.json").write_text(json.dumps({"text_config": {"num_hidden_layers": 5}}))
    assert stated_layers(tmp_path) == 5
    (tmp_path / "config.json").write_text("{not json")
    assert stated_layers(tmp_path) is None
    assert stated_layers("org/some-hub-model") is None  # a hub id is not looked up
    with pytest.raises(MutascopeError, match="model path not found"):
        stated_layers(tmp_path / "missing")


def test_parsing_a_plan_and_its_model_config_imports_no_torch(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 2}))
    code = (
        "import sys; from mutascope.plan import PlanSpec, check_spec_source; "
        "spec = PlanSpec.parse('0-1', 'q,down', 'all', '0', 'max,sym,noise:0.1,value:2', '64x32'); "
        "check_spec_source(spec, sys.argv[1]); print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
