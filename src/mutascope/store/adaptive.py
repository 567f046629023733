"""An adaptive screen's tables (docs/adaptive.md): the measured effects its rounds are chosen
from, the ``estimates`` table (every mutant's effect, measured or estimated) and the
``adaptive_settings`` that fix its rounds.

The screen (:mod:`mutascope.screen.adaptive`) computes what they hold; this module only
reads and writes them, each write in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pandas as pd

from ..errors import ResultsFileError
from .db import has_table, transaction
from .schema import ESTIMATES_DDL

ESTIMATE_COLUMNS = ("mutation_id", "probe_id", "effect", "low", "high", "source")


def measured_effects(con: duckdb.DuckDBPyConnection, mutation_ids: Iterable[int]) -> pd.DataFrame:
    """``mutation_id, probe_id, nsm, logprob_drop`` of the committed outcomes of ``mutation_ids``,
    in plan order then probe id."""
    wanted = pd.DataFrame({"mutation_id": sorted(int(i) for i in mutation_ids)}, dtype="int64")
    con.register("_wanted", wanted)
    try:
        return con.execute(
            "SELECT mutation_id, probe_id, nsm, logprob_drop FROM outcomes "
            "WHERE mutation_id IN (SELECT mutation_id FROM _wanted) ORDER BY mutation_id, probe_id"
        ).df()
    finally:
        con.unregister("_wanted")


def write_estimates(con: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> None:
    """Replace the ``estimates`` table with ``frame`` (:data:`ESTIMATE_COLUMNS`), in one transaction."""
    with transaction(con):
        con.execute("DROP TABLE IF EXISTS estimates")
        con.execute(ESTIMATES_DDL)
        con.register("_estimates", frame[list(ESTIMATE_COLUMNS)].astype({"mutation_id": "int32"}))
        con.execute(f"INSERT INTO estimates SELECT {', '.join(ESTIMATE_COLUMNS)} FROM _estimates")
        con.unregister("_estimates")


def check_settings(con: duckdb.DuckDBPyConnection, path: str, seed: int, audit: int, chunk_size: int) -> None:
    """Record an adaptive screen's ``seed``, ``audit`` size and ``chunk_size`` in a file that has
    none; a file that holds others is refused in one line (they fix the rounds already run)."""
    if has_table(con, "adaptive_settings"):
        rows = con.execute("SELECT seed, audit, chunk_size FROM adaptive_settings").fetchall()
        if rows and tuple(rows[0]) != (seed, audit, chunk_size):
            s, a, c = rows[0]
            raise ResultsFileError(
                f"{path} holds an adaptive screen run with --seed {s}, an audit of at least {a} mutants and "
                f"--chunk-size {c} (these fix its rounds); resume it with those, or use another --out"
            )
        if rows:
            return
    with transaction(con):
        con.execute(ESTIMATES_DDL)
        con.execute("INSERT INTO adaptive_settings VALUES (?, ?, ?)", [seed, audit, chunk_size])


def estimate_counts(con: duckdb.DuckDBPyConnection) -> tuple[int, int] | None:
    """``(measured mutants, estimated (mutant, probe) rows)`` of a file's ``estimates`` table,
    or None when it has none (not an adaptive screen)."""
    if not has_table(con, "estimates"):
        return None
    estimated = con.execute("SELECT count(*) FROM estimates WHERE source = 'estimated'").fetchall()[0][0]
    measured = con.execute("SELECT count(DISTINCT mutation_id) FROM outcomes").fetchall()[0][0]
    return int(measured), int(estimated)


def mutant_estimates(con: duckdb.DuckDBPyConnection, mutation_id: int) -> list[tuple[str, float, float, float, str]]:
    """One mutant's rows of ``estimates`` in screen order: ``(probe_id, effect, low, high, source)``
    (empty in a file without the table)."""
    if not has_table(con, "estimates"):
        return []
    return [
        (str(p), float(e), float(lo), float(hi), str(s))
        for p, e, lo, hi, s in con.execute(
            "SELECT e.probe_id, e.effect, e.low, e.high, e.source FROM estimates e JOIN probes p USING (probe_id) "
            "WHERE e.mutation_id = ? ORDER BY p.position",
            [mutation_id],
        ).fetchall()
    ]
