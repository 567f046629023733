"""Writing the files a command was asked for, and nothing else.

The rule every command follows for an output file (a report, an export, a
CSV, a figure, a JSON list):

* it never writes over a DuckDB file (a results file or any other), nor over
  one of its own inputs: that is refused with a one-line error, before any
  slow work, and the file is left byte-for-byte as it was;
* an existing file that is none of these is replaced atomically: the new
  contents go to a temporary file beside it, which is renamed over it only
  once complete, so an interrupted or failed write leaves the old file (or
  nothing) and no stray temporary file;
* a path that names a directory where a file is wanted (or a file where a
  directory is wanted) is a one-line error too.

DuckDB outputs (``--out`` of ``superweights``, ``activation``,
``specialization``) are databases that commands add tables to; they go
through :func:`mutascope.store.write_tables` instead, and
:func:`mutascope.store.check_tables_file` checks them before any slow work:
a directory, or an existing file that is not a DuckDB database (a text file,
a figure), is refused rather than overwritten.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import InputError

_DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB database file


def is_duckdb_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing DuckDB database (by its header, not its name)."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        with open(p, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[8:12] == _DUCKDB_MAGIC


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def refuse_inputs(path: Path, inputs: Iterable[str | os.PathLike], what: str) -> None:
    """A one-line error when ``path`` is one of a command's ``inputs``."""
    for source in inputs:
        if source is not None and _same(path, Path(source)):
            raise InputError(f"{what} {path} is also an input of this command; write it somewhere else")


def refuse_file_parent(path: Path, what: str, verb: str = "write") -> None:
    """A one-line error when the nearest existing ancestor of ``path`` is a file, not a directory."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        raise InputError(f"cannot {verb} {what} {path}: {parent} is a file, not a directory")


def check_output_file(
    path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), what: str = "output"
) -> Path:
    """Validate ``path`` as a file this command may (re)write; returns it as a Path.

    Refuses one-line: a directory, a DuckDB file, one of ``inputs``, or a
    path whose parent is a file.
    """
    p = Path(path)
    refuse_inputs(p, inputs, what)
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory; give a file name")
    if is_duckdb_file(p):
        raise InputError(f"{what} {p} is a DuckDB file (a results file?); refusing to write over it")
    refuse_file_parent(p, what)
    return p


def check_output_dir(
    path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), what: str = "output directory"
) -> Path:
    """Validate ``path`` as a directory this command may write files into (created if missing)."""
    p = Path(path)
    refuse_inputs(p, inputs, what)
    if p.exists() and not p.is_dir():
        raise InputError(f"{what} {p} is an existing file, not a directory; give a directory")
    refuse_file_parent(p, what, "create")
    return p


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; on success rename it over ``path``.

    On any failure (an exception, Ctrl-C) the temporary file is removed and
    ``path`` is untouched. Checks ``path`` with :func:`check_output_file` first.
    """
    target = check_output_file(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
        if target.exists():
            os.chmod(tmp, target.stat().st_mode & 0o777)
        else:
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, by the rule above."""
    with atomic_file(path, "w", encoding="utf-8") as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically, by the rule above."""
    with atomic_file(path, "wb") as f:
        f.write(data)
    return Path(path)


def save_figure(fig, path: str | os.PathLike, **kwargs) -> Path:
    """Save a matplotlib figure to ``path`` atomically (format from the suffix)."""
    p = Path(path)
    fmt = kwargs.pop("format", p.suffix.lstrip(".") or "png")
    with atomic_file(p, "wb") as f:
        fig.savefig(f, format=fmt, **kwargs)
    return p


__all__ = [
    "atomic_file",
    "check_output_dir",
    "check_output_file",
    "is_duckdb_file",
    "refuse_file_parent",
    "refuse_inputs",
    "save_figure",
    "write_bytes",
    "write_text",
]
