"""Reading a user's text file with one-line errors that name it.

Probe files, concept sets, corpora and domain files are all read the same
way: a missing file or one that is not UTF-8 text is the user's mistake, and
the message should say which file and what kind of file was expected. JSON
Lines files (probes, concepts) are split and parsed here too, so a bad line
reads the same in every kind of file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import InputError


def read_text_file(path: str | os.PathLike, what: str, hint: str = "") -> str:
    """The UTF-8 text of ``path``; ``what`` names it in errors ("probe file")."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} {p}: not found" + (f"; {hint}" if hint else ""))
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {p}: not valid UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{what} {p}: cannot be read: {exc.strerror or exc}") from None


def read_jsonl(path: str | os.PathLike, raw: str, what: str) -> list[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of the JSON Lines text ``raw`` read from ``path``.

    A line that is not JSON is one error naming the file, the entry and its line, whatever the
    kind of file (``what``: "probe file", "concept file"); what a value must hold is the caller's.
    """
    entries: list[tuple[int, Any]] = []
    for lineno, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            where = f"entry {len(entries) + 1} (line {lineno})"
            raise InputError(f"{what} {path}: {where}: invalid JSON: {e.msg} at column {e.colno}") from None
        entries.append((lineno, value))
    return entries
