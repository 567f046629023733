"""Attention per row length: each row's own positions, the model's own function, nothing left behind."""

import pytest
import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from mutascope.engine.ragged import attention_per_length, supported
from mutascope.testing import tiny_model


def test_rows_attend_to_their_own_positions_only_and_the_registry_is_restored():
    subject = tiny_model("llama", dtype="bfloat16")
    model = subject.model
    name = model.config._attn_implementation
    original = ALL_ATTENTION_FUNCTIONS[name]
    attention = model.model.layers[0].self_attn
    heads, kv_heads, dim = (
        attention.config.num_attention_heads,
        attention.config.num_key_value_heads,
        attention.head_dim,
    )
    q = torch.randn(3, heads, 1, dim).bfloat16()
    k = torch.randn(3, kv_heads, 7, dim).bfloat16()
    v = torch.randn(3, kv_heads, 7, dim).bfloat16()
    padding = [0, 4, 2]
    alone = [
        original(attention, q[r : r + 1], k[r : r + 1, :, p:], v[r : r + 1, :, p:], None)[0]
        for r, p in enumerate(padding)
    ]
    with attention_per_length(model, padding):
        together, _ = ALL_ATTENTION_FUNCTIONS[name](attention, q, k, v, torch.zeros(3, 1, 1, 7))
    assert all(torch.equal(together[r], alone[r][0]) for r in range(3))
    assert ALL_ATTENTION_FUNCTIONS[name] is original
    with pytest.raises(RuntimeError, match="paddings"), attention_per_length(model, [0, 1]):
        ALL_ATTENTION_FUNCTIONS[name](attention, q, k, v, None)
    assert ALL_ATTENTION_FUNCTIONS[name] is original


def test_only_registered_attention_is_supported():
    subject = tiny_model("llama")
    assert supported(subject.model)
    subject.model.config._attn_implementation = "eager"
    assert not supported(subject.model)
    with pytest.raises(ValueError, match="per row length"), attention_per_length(subject.model, [0]):
        pass
