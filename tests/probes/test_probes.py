"""Probes: built-in texts, decoding specs and prompt encoding (probe files: test_probe_files.py)."""

from __future__ import annotations

import json

import pytest

from mutascope.errors import MutascopeError
from mutascope.probes import (
    BUILTIN_PROBES,
    Decoding,
    Probe,
    builtin_probe,
    encode_probe,
)

# ---------------------------------------------------------------------------
# Built-in probes: the paper's five prompts, verbatim (docs/methods.md, "1. The mutagenesis screen")

PAPER_TEXTS = {
    "drosophila": "The life cycle of Drosophila:",
    "python": "The following is a python program for bubble sort:",
    "java": "The following is a Java program for bubble sort:",
    "newton": "The scientific accomplishments and influences of Isaac Newton:",
    "p53": "Tell me 10 different signal pathways through which p53 is involved in cancer development:",
}


@pytest.mark.parametrize("pid", list(PAPER_TEXTS))
def test_builtin_probe_text_is_exactly_the_papers(pid):
    probe = builtin_probe(pid)
    assert probe.text == PAPER_TEXTS[pid]
    assert probe.id == pid
    assert probe.chat is False
    assert probe.kind == "text"
    assert probe.decoding == Decoding("sample", 0.7, 0)
    assert probe.max_new_tokens == (300 if pid in ("newton", "p53") else 150)


def test_builtin_ids_are_exactly_the_five():
    assert list(BUILTIN_PROBES) == ["drosophila", "python", "java", "newton", "p53"]


def test_unknown_builtin_lists_valid_ids():
    with pytest.raises(MutascopeError) as e:
        builtin_probe("drosphila")
    msg = str(e.value)
    assert "\n" not in msg
    for pid in PAPER_TEXTS:
        assert pid in msg


# ---------------------------------------------------------------------------
# Decoding


@pytest.mark.parametrize(
    "text, expected",
    [
        ("greedy", Decoding()),
        ("sample", Decoding("sample", 1.0, 0)),
        ("sample:0.7", Decoding("sample", 0.7, 0)),
        ("sample:0.7:42", Decoding("sample", 0.7, 42)),
        (" Sample:2:0 ", Decoding("sample", 2.0, 0)),
    ],
)
def test_decoding_parse_good(text, expected):
    assert Decoding.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "beam",
        "greedy:0.7",
        "sample:",
        "sample:hot",
        "sample:0",
        "sample:-1",
        "sample:nan",
        "sample:inf",
        "sample:0.7:x",
        "sample:0.7:1.5",
        "sample:0.7:-3",
        "sample:0.7:1:2",
    ],
)
def test_decoding_parse_bad(text):
    with pytest.raises(MutascopeError) as e:
        Decoding.parse(text)
    assert "\n" not in str(e.value)


def test_decoding_describe():
    assert Decoding().describe() == "greedy"
    assert Decoding("sample", 0.7, 0).describe() == "sample(t=0.7, seed=0)"
    assert Decoding("sample", 1, 42).describe() == "sample(t=1.0, seed=42)"


@pytest.mark.parametrize(
    "kwargs",
    [{"method": "beam"}, {"temperature": 0}, {"temperature": True}, {"seed": -1}, {"seed": 1.0}, {"seed": 2**63}],
)
def test_decoding_validates(kwargs):
    with pytest.raises(MutascopeError):
        Decoding(**kwargs)


# ---------------------------------------------------------------------------
# Probe values


def test_probe_dict_round_trip_through_json():
    probes = list(BUILTIN_PROBES.values()) + [
        Probe("q:1", "Q?\nAnswer:", 1, Decoding(), kind="choice", answer="C", group="mmlu21:x"),
        Probe("chatty", "Hi", 12, Decoding("sample", 0.5, 3), chat=True),
    ]
    for p in probes:
        assert Probe.from_dict(json.loads(json.dumps(p.to_dict()))) == p


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": "has space"},
        {"id": ""},
        {"text": ""},
        {"max_new_tokens": 0},
        {"kind": "essay"},
        {"answer": "A"},  # a text probe has no answer
        {"kind": "choice", "max_new_tokens": 1},  # a choice probe needs one
        {"kind": "choice", "answer": "A", "max_new_tokens": 5},
    ],
)
def test_probe_validates(kwargs):
    base = {"id": "p", "text": "hello", "max_new_tokens": 4, "decoding": Decoding()}
    with pytest.raises(MutascopeError):
        Probe(**{**base, **kwargs})


# ---------------------------------------------------------------------------
# Encoding, with a tokenizer built in-process (no downloads)

VOCAB = ["<unk>", "<s>", "</s>", "The", "life", "cycle", "of", "Drosophila", ":", "<|user|>", "<|assistant|>", "Hi"]


def make_tokenizer(bos: bool = True, chat_template: str | None = None):
    tokenizers = pytest.importorskip("tokenizers")
    from transformers import PreTrainedTokenizerFast

    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    kwargs = {"unk_token": "<unk>", "eos_token": "</s>"}
    if bos:
        kwargs["bos_token"] = "<s>"
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **kwargs)
    fast.add_special_tokens({"additional_special_tokens": ["<|user|>", "<|assistant|>"]})
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def text_probe(text, chat=False):
    return Probe("p", text, 4, Decoding(), chat=chat)


def test_encode_prepends_bos_once():
    tok = make_tokenizer()
    assert tok.bos_token_id == 1
    assert encode_probe(tok, text_probe("The life cycle of Drosophila :")) == [1, 3, 4, 5, 6, 7, 8]


def test_encode_does_not_double_an_existing_bos():
    tok = make_tokenizer()
    assert encode_probe(tok, text_probe("<s> The life")) == [1, 3, 4]


def test_encode_without_bos_token():
    tok = make_tokenizer(bos=False)
    assert encode_probe(tok, text_probe("The life")) == [3, 4]


def test_encode_chat_uses_template():
    template = (
        "{% for m in messages %}<|user|> {{ m['content'] }} {% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    tok = make_tokenizer(chat_template=template)
    ids = encode_probe(tok, text_probe("Hi", chat=True))
    assert ids == [9, 11, 10]
    assert all(isinstance(i, int) for i in ids)


def test_encode_chat_without_template_errors():
    tok = make_tokenizer()
    with pytest.raises(MutascopeError, match="chat template"):
        encode_probe(tok, text_probe("Hi", chat=True))
