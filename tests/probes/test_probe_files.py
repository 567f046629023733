"""Probe files (``mutascope.probes.files``): YAML and JSONL read strictly, one-line errors
that name the file and the entry; and how ``--probe`` resolves them."""

from __future__ import annotations

import json

import pytest

from mutascope.errors import MutascopeError
from mutascope.probes import Decoding, Probe, load_probe_file, resolve_probes

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
        json.dumps({"id": "a", "text": "A"})
        + "\n\n"
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
    "bad temperature": (
        "- {id: a, text: A, decoding: {method: sample, temperature: 0}}\n",
        "entry 1: decoding temperature",
    ),
    "duplicate id": (
        "- {id: a, text: A}\n- {id: b, text: B}\n- {id: a, text: C}\n",
        "entry 3: duplicate id 'a' (first used by entry 1)",
    ),
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
    "duplicate id": (
        '{"id": "a", "text": "A"}\n{"id": "a", "text": "B"}\n',
        "entry 2 (line 2): duplicate id 'a' (first used by entry 1)",
    ),
}


BAD_FILES = [("yaml", case, *BAD_YAML[case]) for case in BAD_YAML] + [
    ("jsonl", case, *BAD_JSONL[case]) for case in BAD_JSONL
]


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


def test_a_file_that_is_not_utf8_is_one_line(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes("- {id: a, text: caf\xe9}\n".encode("latin-1"))
    with pytest.raises(MutascopeError, match=r"probe file .*latin\.yaml: not valid UTF-8 text"):
        load_probe_file(path)


def test_a_file_resolves_in_order_among_other_specs_with_the_overrides(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(
        json.dumps({"id": "x", "text": "X", "max_new_tokens": 5})
        + "\n"
        + json.dumps({"id": "y", "text": "Y", "decoding": "sample:0.7:2"})
        + "\n"
    )
    plain = resolve_probes(["python", str(path)])
    assert [p.id for p in plain] == ["python", "x", "y"]
    assert plain[1] == Probe("x", "X", 5, Decoding())
    overridden = resolve_probes([str(path)], max_new_tokens=3, decoding=Decoding("greedy"))
    assert [(p.id, p.max_new_tokens, p.decoding) for p in overridden] == [("x", 3, Decoding()), ("y", 3, Decoding())]


def test_resolving_a_missing_file_or_a_clash_with_a_builtin_is_one_line(tmp_path):
    with pytest.raises(MutascopeError, match="probe file not found"):
        resolve_probes([str(tmp_path / "absent.yaml")])
    path = tmp_path / "dup.yaml"
    path.write_text("- {id: python, text: Another python}\n")
    with pytest.raises(MutascopeError, match="probe id 'python' appears twice"):
        resolve_probes(["python", str(path)])


def test_probe_values_from_a_file_round_trip_through_their_stored_form(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD_YAML)
    for probe in load_probe_file(path):
        assert Probe.from_dict(json.loads(json.dumps(probe.to_dict()))) == probe
