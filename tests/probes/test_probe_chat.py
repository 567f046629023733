"""Built-in probes for small instruct models: ``ID@chat``, and ``mutascope probes``.

The plain ids must keep meaning exactly what they meant: a screen's
configuration (and its hash, which resume checks) stores ``Probe.to_dict()``,
so these tests pin it byte for byte, including the overrides a long-running
atlas screen was started with.
"""

import io
import json

import pytest

from mutascope.probes import BUILTIN_PROBES, Decoding, builtin_probe, encode_probe
from mutascope.probes.resolve import resolve_probes

PINNED = {
    "drosophila": '{"answer": null, "chat": false, "decoding": {"method": "sample", "seed": 0, "temperature": 0.7}, '
    '"group": null, "id": "drosophila", "kind": "text", "max_new_tokens": 150, '
    '"text": "The life cycle of Drosophila:"}',
    "python@greedy48": '{"answer": null, "chat": false, "decoding": {"method": "greedy", "seed": 0, '
    '"temperature": 1.0}, "group": null, "id": "python", "kind": "text", "max_new_tokens": 48, '
    '"text": "The following is a python program for bubble sort:"}',
}


def test_plain_builtin_probes_are_unchanged():
    assert json.dumps(builtin_probe("drosophila").to_dict(), sort_keys=True) == PINNED["drosophila"]
    greedy = resolve_probes(["python"], max_new_tokens=48, decoding=Decoding.parse("greedy"))[0]
    assert json.dumps(greedy.to_dict(), sort_keys=True) == PINNED["python@greedy48"]
    assert list(builtin_probe("newton").to_dict()) == [
        "id",
        "text",
        "max_new_tokens",
        "decoding",
        "chat",
        "kind",
        "answer",
        "group",
    ]


def test_chat_suffix_is_the_same_probe_with_the_chat_template():
    plain, chat = resolve_probes(["drosophila", "drosophila@chat"], max_new_tokens=48)
    assert chat.id == "drosophila@chat" and chat.chat and not plain.chat
    assert (chat.text, chat.max_new_tokens, chat.decoding) == (plain.text, 48, plain.decoding)
    assert set(chat.to_dict()) == set(plain.to_dict())  # no new keys: only chat (and the id) differ
    assert builtin_probe("p53@chat").max_new_tokens == BUILTIN_PROBES["p53"].max_new_tokens == 300


@pytest.mark.parametrize(
    "spec, message",
    [
        ("drosophila@raw", "unknown suffix @raw"),
        ("fly@chat", "applies to the built-in probes"),
        ("drosophila@", "unknown suffix @"),
    ],
)
def test_bad_suffixes_are_one_line_errors(spec, message):
    from mutascope.errors import MutascopeError

    with pytest.raises(MutascopeError, match=message):
        resolve_probes([spec])


def test_probes_command_lists_the_builtins_with_their_settings(monkeypatch):
    from mutascope.commands import common
    from mutascope.commands.probes import probes

    buf = io.StringIO()
    # The private attribute: the public ``file`` reads back sys.stdout of the moment,
    # and setting that back would pin the console to it for every later test.
    monkeypatch.setattr(common.out, "_file", buf)
    probes()
    text = buf.getvalue()
    for pid in BUILTIN_PROBES:
        assert pid in text
    assert "sample(t=0.7," in text and "150" in text and "300" in text and "@chat" in text


@pytest.mark.real_model
def test_chat_probe_prompt_uses_smollm2s_template():
    from mutascope import load_model

    tokenizer = load_model().tokenizer
    chat = encode_probe(tokenizer, builtin_probe("drosophila@chat"))
    plain = encode_probe(tokenizer, builtin_probe("drosophila"))
    text = tokenizer.decode(chat)
    assert text.startswith("<|im_start|>") and "The life cycle of Drosophila:<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n") and chat != plain and plain[0] == tokenizer.bos_token_id
