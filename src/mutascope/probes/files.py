"""Probe files: a user's probes in YAML or JSONL, read strictly (typos fail loudly).

Each entry has ``id`` and ``text`` and optionally ``chat``, ``max_new_tokens``
(default 48) and ``decoding`` (a string such as ``sample:0.7:42``, or a
mapping). Every mistake is one line naming the file and the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError, MutascopeError
from ..files.text import read_jsonl, read_text_file
from .probe import Decoding, Probe, _is_int, _one_line

__all__ = ["PROBE_FILE_SUFFIXES", "load_probe_file"]

PROBE_FILE_SUFFIXES = (".yaml", ".yml", ".jsonl")
_FILE_FIELDS = ("id", "text", "chat", "max_new_tokens", "decoding")
_DEFAULT_MAX_NEW_TOKENS = 48


def _probe_from_entry(entry: Any) -> Probe:
    """Validate one probe-file entry; errors carry no location (the caller adds it)."""
    if not isinstance(entry, Mapping):
        raise InputError(f"must be a mapping with at least id and text, got {type(entry).__name__}")
    keys = [str(k) for k in entry]
    unknown = [k for k in keys if k not in _FILE_FIELDS]
    if unknown:
        raise InputError(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(_FILE_FIELDS)}")
    for key in ("id", "text"):
        if key not in entry:
            raise InputError(f"missing required field {key!r}")
    pid, text = entry["id"], entry["text"]
    if not isinstance(pid, str):
        raise InputError(f"id must be a string, got {pid!r} (quote it)")
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    chat = entry.get("chat", False)
    if not isinstance(chat, bool):
        raise InputError(f"chat must be true or false, got {chat!r}")
    n = entry.get("max_new_tokens", _DEFAULT_MAX_NEW_TOKENS)
    if not _is_int(n) or n < 1:
        raise InputError(f"max_new_tokens must be an integer >= 1, got {n!r}")
    dec = entry.get("decoding", "greedy")
    if isinstance(dec, str):
        decoding = Decoding.parse(dec)
    elif isinstance(dec, Mapping):
        decoding = Decoding.from_dict(dec)
    else:
        raise InputError(f"decoding must be a string like sample:0.7:0 or a mapping, got {dec!r}")
    return Probe(id=pid, text=text, max_new_tokens=n, decoding=decoding, chat=chat)


def _read_yaml_entries(path: Path, raw: str) -> list[tuple[str, Any]]:
    import yaml

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"probe file {path}: invalid YAML{at}: {problem}") from None
    if data is None:
        raise InputError(f"probe file {path}: the file is empty; write a list of probes with id and text")
    if isinstance(data, Mapping):
        if set(data) != {"probes"}:
            raise InputError(
                f"probe file {path}: a mapping at the top must have the single key 'probes' holding the list, "
                f"got key(s) {', '.join(map(str, data))}"
            )
        data = data["probes"]
    if not isinstance(data, list):
        raise InputError(
            f"probe file {path}: expected a list of probes (or 'probes:' holding one), got {type(data).__name__}"
        )
    return [(f"entry {i}", item) for i, item in enumerate(data, start=1)]


def _read_jsonl_entries(path: Path, raw: str) -> list[tuple[str, Any]]:
    entries = read_jsonl(path, raw, "probe file")
    return [(f"entry {i} (line {lineno})", item) for i, (lineno, item) in enumerate(entries, start=1)]


def load_probe_file(path: str | Path) -> list[Probe]:
    """Read user probes from a .yaml/.yml or .jsonl file, strictly (typos fail loudly)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in PROBE_FILE_SUFFIXES:
        raise InputError(
            f"probe file {path}: unsupported extension {path.suffix or '(none)'!r}; use .yaml, .yml or .jsonl"
        )
    raw = read_text_file(path, "probe file")

    entries = _read_yaml_entries(path, raw) if suffix in (".yaml", ".yml") else _read_jsonl_entries(path, raw)
    if not entries:
        raise InputError(f"probe file {path}: holds no probes; write at least one entry with id and text")

    probes: list[Probe] = []
    first_use: dict[str, str] = {}
    for where, item in entries:
        try:
            probe = _probe_from_entry(item)
        except MutascopeError as e:
            raise InputError(_one_line(f"probe file {path}: {where}: {e}")) from None
        if probe.id in first_use:
            raise InputError(
                f"probe file {path}: {where}: duplicate id {probe.id!r} (first used by {first_use[probe.id]})"
            )
        first_use[probe.id] = where.split(" (")[0]
        probes.append(probe)
    return probes
