"""DuckDB files: connecting with one-line errors, transactions, and keeping a command's tables in one.

Every command that keeps tables (statistics of a screen, phenotypes, super
weights, activation patterns, specialization) opens and writes DuckDB
through here, so a file in use, a directory, or a file that is not DuckDB is
one line that names it, and a command's tables are replaced in one
transaction.

Every write of the package runs inside :func:`transaction`, the one place
that begins, commits and rolls back: a failure or an interruption (Ctrl-C,
SIGTERM, :class:`~mutascope.errors.Interrupted`) anywhere inside leaves the
file as it was before the block, so no command leaves a half-written
results file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ..errors import FileInUseError, InputError, MutascopeError, ResultsFileError
from ..files.outputs import is_duckdb_file, refuse_file_parent, refuse_inputs


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_error(path: Path, exc: BaseException, purpose: str = "mutascope results file") -> MutascopeError:
    """The one-line error for a DuckDB file that cannot be opened.

    A file locked by another process (a running screen) says so, with the
    process id when DuckDB names it; anything else is "not readable as ...".
    """
    first = _first_line(exc)
    if "lock" in first.lower():
        pid = re.search(r"PID (\d+)", first)
        who = f"process {pid.group(1)}" if pid else "another process"
        return FileInUseError(
            f"{path} is in use by {who} (a running screen or another mutascope command); "
            "wait for it to finish or stop it, then retry"
        )
    if path.is_dir():
        return InputError(f"{path} is a directory, not a {purpose}")
    return ResultsFileError(f"{path} is not a readable {purpose} ({first})")


def connect(path: str | os.PathLike, *, read_only: bool = False, purpose: str = "mutascope results file"):
    """A DuckDB connection to ``path``, or a one-line :class:`MutascopeError` saying why not."""
    path = Path(path)
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise open_error(path, exc, purpose) from None


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One transaction on ``con``: committed when the block ends, rolled back (and the exception
    raised again) when anything escapes it, ``KeyboardInterrupt`` and ``Interrupted`` included.

    Every write of a results file or a command's tables goes through here, so what one step
    writes (a chunk's outcomes and its progress row, a level of a zoom, a command's tables) is
    all in the file or none of it, however the process stops: a killed process never commits,
    and DuckDB discards an uncommitted transaction when the file is next opened.
    """
    con.begin()
    try:
        yield con
        con.commit()
    except BaseException:
        con.rollback()
        raise


def no_progress_bar(con: duckdb.DuckDBPyConnection) -> None:
    """Turn off DuckDB's progress bar on ``con``: library code never prints (long reads, such as a
    report's, would draw one on the terminal)."""
    con.execute("SET enable_progress_bar = false")


def insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Append an Arrow table to ``name`` (columns in table order)."""
    con.register("_incoming", table)
    try:
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")


def existing_runs(con: duckdb.DuckDBPyConnection) -> int:
    """How many ``runs`` rows a connection's database holds (0 when new)."""
    has = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'").fetchall()[0][0]
    return con.execute("SELECT count(*) FROM runs").fetchall()[0][0] if has else 0


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether the connection's database holds a table ``name`` (optional tables: phenotypes, zooms...)."""
    return (
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0] > 0
    )


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    """The columns ``table`` has (files of older schemas lack some)."""
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }


def write_tables(path: str | os.PathLike, tables: dict[str, pd.DataFrame], *, drop: Iterable[str] = ()) -> Path:
    """Write DataFrames into the DuckDB file at ``path`` (created if needed), replacing
    tables of the same names, all in one transaction; tables named in ``drop`` are
    removed in it too (a command's tables that its latest run did not produce).

    Every analysis (statistics of a screen, super weights, activation patterns,
    specialization) keeps its tables this way, so its results are one file too.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    con = connect(p, purpose="DuckDB file")
    try:
        with transaction(con):
            for name in drop:
                con.execute(f'DROP TABLE IF EXISTS "{name}"')
            for name, df in tables.items():
                con.register("_frame", df)
                con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _frame')
                con.unregister("_frame")
    finally:
        con.close()
    return p


def replace_tables(path: str | os.PathLike, tables: dict[str, pd.DataFrame], *, owned: Iterable[str]) -> Path:
    """Write a command's ``tables`` into the DuckDB file at ``path`` (created if needed), replacing
    them; the tables of ``owned`` (every table the command can write) that this run did not
    produce are dropped, so the file holds one run's results."""
    return write_tables(path, tables, drop=[t for t in owned if t not in tables])


def check_tables_file(
    path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = (), what: str = "--out file"
) -> Path:
    """Validate ``path`` as a DuckDB file a command may add its tables to (created if missing).

    Refuses one-line: one of ``inputs``, a directory, an existing file that is
    not a DuckDB database, a path whose parent is a file, and a DuckDB file
    that another process holds (opened read-only to find out, which changes
    nothing in it).
    """
    p = Path(path)
    refuse_inputs(p, inputs, what)
    if p.is_dir():
        raise InputError(f"{what} {p} is a directory; give a DuckDB file name")
    if p.exists() and not is_duckdb_file(p):
        raise ResultsFileError(f"{what} {p} exists and is not a DuckDB file; refusing to write tables over it")
    refuse_file_parent(p, what)
    if p.exists():
        connect(p, read_only=True, purpose="DuckDB file").close()
    return p
