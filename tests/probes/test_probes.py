"""Probes: built-in texts, decoding specs, probe files and prompt encoding."""

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
    load_probe_file,
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
    ["", "beam", "greedy:0.7", "sample:", "sample:hot", "sample:0", "sample:-1", "sample:nan",
     "sample:inf", "sample:0.7:x", "sample:0.7:1.5", "sample:0.7:-3", "sample:0.7:1:2"],
)
def test_decoding_parse_bad(text):
    with pytest.raises(MutascopeError) as e:
        Decoding.parse(text)
    assert "\n" not in str(e.value)


def test_decoding_describe():
    assert Decoding().describe() == "greedy"
    assert Decoding("sample", 0.7, 0).describe() == "sample(t=0.7, seed=0)"
    assert Decoding("sample", 1, 42).describe() == "sample(t=1.0, seed=42)"


@pytest.mark.parametrize("kwargs", [{"method": "beam"}, {"temperature": 0}, {"temperature": True}, {"seed": -1}, {"seed": 1.0}, {"seed": 2**63}])
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
# Probe files

GOOD_YAML = """\
probes:
  - id: hello
    text: "Hello there:"
  - id: story.1
    text: Once upon a time
    chat: true
    max_new_tokens: 20
    decoding: sample:0.7:3
  - id: "42"
    text: x
    decoding: {method: sample, temperature: 0.5}
"""


def test_yaml_file_good(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD_YAML)
    probes = load_probe_file(path)
    assert [p.id for p in probes] == ["hello", "story.1", "42"]
    assert probes[0] == Probe("hello", "Hello there:", 48, Decoding())
    assert probes[1] == Probe("story.1", "Once upon a time", 20, Decoding("sample", 0.7, 3), chat=True)
    assert probes[2].decoding == Decoding("sample", 0.5, 0)


def test_yaml_plain_list_and_yml_extension(tmp_path):
    path = tmp_path / "p.yml"
    path.write_text("- {id: a, text: A}\n- {id: b, text: B, max_new_tokens: 3}\n")
    assert [(p.id, p.max_new_tokens) for p in load_probe_file(path)] == [("a", 48), ("b", 3)]


def test_jsonl_file_good(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        json.dumps({"id": "a", "text": "A"}) + "\n\n"
        + json.dumps({"id": "b", "text": "B", "decoding": {"method": "sample", "temperature": 0.7, "seed": 1}})
        + "\n"
    )
    probes = load_probe_file(path)
    assert probes == [Probe("a", "A", 48, Decoding()), Probe("b", "B", 48, Decoding("sample", 0.7, 1))]


BAD_YAML = {
    "empty": ("", "empty"),
    "only comment": ("# nothing\n", "empty"),
    "empty list": ("[]\n", "no probes"),
    "invalid yaml": ("- id: a\n  text: [unclosed\n", "invalid YAML"),
    "scalar top": ("just text\n", "expected a list"),
    "wrong top key": ("prompts:\n  - {id: a, text: A}\n", "'probes'"),
    "entry not mapping": ("- hello\n", "entry 1: must be a mapping"),
    "missing id": ("- {text: A}\n", "entry 1: missing required field 'id'"),
    "missing text": ("- {id: a, text: A}\n- {id: b}\n", "entry 2: missing required field 'text'"),
    "unknown field": ("- {id: a, text: A, temprature: 0.7}\n", "entry 1: unknown field(s) temprature"),
    "id not string": ("- {id: 7, text: A}\n", "entry 1: id must be a string"),
    "bad id chars": ("- {id: a b, text: A}\n", "entry 1: probe id 'a b' is invalid"),
    "text not string": ("- {id: a, text: [1, 2]}\n", "entry 1: text must be a string"),
    "chat not bool": ("- {id: a, text: A, chat: 'sometimes'}\n", "entry 1: chat must be true or false"),
    "max tokens not int": ("- {id: a, text: A, max_new_tokens: 2.5}\n", "entry 1: max_new_tokens"),
    "max tokens zero": ("- {id: a, text: A, max_new_tokens: 0}\n", "entry 1: max_new_tokens"),
    "bad decoding string": ("- {id: a, text: A, decoding: beam}\n", "entry 1: decoding 'beam'"),
    "bad decoding type": ("- {id: a, text: A, decoding: 3}\n", "entry 1: decoding must be"),
    "bad decoding key": ("- {id: a, text: A, decoding: {method: sample, temp: 1}}\n", "entry 1: decoding has unknown"),
    "bad temperature": ("- {id: a, text: A, decoding: {method: sample, temperature: 0}}\n", "entry 1: decoding temperature"),
    "duplicate id": ("- {id: a, text: A}\n- {id: b, text: B}\n- {id: a, text: C}\n", "entry 3: duplicate id 'a' (first used by entry 1)"),
}


BAD_JSONL = {
    "empty": ("", "no probes"),
    "blank lines only": ("\n\n", "no probes"),
    "invalid json": ('{"id": "a", "text": "A"}\n{"id": "b", text: B}\n', "entry 2 (line 2): invalid JSON"),
    "not an object": ('["a", "A"]\n', "entry 1 (line 1): must be a mapping"),
    "missing text": ('\n{"id": "a"}\n', "entry 1 (line 2): missing required field 'text'"),
    "unknown field": ('{"id": "a", "text": "A", "kind": "choice"}\n', "unknown field(s) kind"),
    "wrong type": ('{"id": "a", "text": "A", "max_new_tokens": "10"}\n', "max_new_tokens must be an integer"),
    "chat as int": ('{"id": "a", "text": "A", "chat": 1}\n', "chat must be true or false"),
    "duplicate id": ('{"id": "a", "text": "A"}\n{"id": "a", "text": "B"}\n', "entry 2 (line 2): duplicate id 'a' (first used by entry 1)"),
}


BAD_FILES = [("yaml", case, *BAD_YAML[case]) for case in BAD_YAML] + [("jsonl", case, *BAD_JSONL[case]) for case in BAD_JSONL]


@pytest.mark.parametrize("suffix, case, content, expected", BAD_FILES, ids=[f"{s}-{c}" for s, c, _, _ in BAD_FILES])
def test_probe_file_malformed(tmp_path, suffix, case, content, expected):
    path = tmp_path / f"bad.{suffix}"
    path.write_text(content)
    with pytest.raises(MutascopeError) as e:
        load_probe_file(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"probe file {path}:")
    assert expected in msg


def test_probe_file_missing_or_wrong_extension(tmp_path):
    with pytest.raises(MutascopeError, match="not found"):
        load_probe_file(tmp_path / "nope.yaml")
    txt = tmp_path / "p.txt"
    txt.write_text("hello")
    with pytest.raises(MutascopeError, match="unsupported extension"):
        load_probe_file(txt)


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
    template = "{% for m in messages %}<|user|> {{ m['content'] }} {% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    tok = make_tokenizer(chat_template=template)
    ids = encode_probe(tok, text_probe("Hi", chat=True))
    assert ids == [9, 11, 10]
    assert all(isinstance(i, int) for i in ids)


def test_encode_chat_without_template_errors():
    tok = make_tokenizer()
    with pytest.raises(MutascopeError, match="chat template"):
        encode_probe(tok, text_probe("Hi", chat=True))
