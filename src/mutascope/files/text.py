"""Reading a user's text file with one-line errors that name it.

Probe files, concept sets, corpora and domain files are all read the same
way: a missing file or one that is not UTF-8 text is the user's mistake, and
the message should say which file and what kind of file was expected.
"""

from __future__ import annotations

import os
from pathlib import Path

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
