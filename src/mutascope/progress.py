"""How library code reports while it works: callbacks, never printing.

A long call takes ``progress(done, total)`` (a count of mutants, rows or
stages), ``status(line)`` (what slow step is under way: starting workers,
loading a model) and, where it computes several results, ``show(name,
value)`` (each result as soon as it exists, for a caller to print). The
command line renders them (:mod:`mutascope.commands.common`); a library
caller passes what it wants, or nothing.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int | None], None]
Status = Callable[[str], None]
Show = Callable[[str, object], None]


def listeners(status: Status | None = None, show: Show | None = None) -> tuple[Status, Show]:
    """``status`` and ``show``, with a silent stand-in for whichever is None."""
    return status or (lambda line: None), show or (lambda name, value: None)
