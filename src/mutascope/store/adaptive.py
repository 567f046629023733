"""An adaptive screen's tables (docs/adaptive.md): the measured effects its rounds are chosen
from, the ``estimates`` table (every mutant's effect, measured or estimated) and the
``adaptive_settings`` that fix its rounds.

The screen (:mod:`mutascope.screen.adaptive`) computes what they hold; this module only
reads and writes them, each write in one transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from ..errors import ResultsFileError
from .db import connect, has_table, transaction
from .schema import ESTIMATES_DDL

ESTIMATE_COLUMNS = ("mutation_id", "probe_id", "effect", "low", "high", "source")
SETTINGS_COLUMNS = ("seed", "audit", "chunk_size", "budget", "audit_chunks", "audit_mutants")


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


@dataclass(frozen=True, kw_only=True)
class AdaptiveSettings:
    """What fixes an adaptive screen's rounds, as ``adaptive_settings`` records it: the audit's
    ``seed``, its least size ``audit`` (mutants), the ``chunk_size``, and the audit as drawn:
    ``audit_chunks`` chunks (``audit_mutants`` mutants) for the first run's ``budget`` (mutants).
    A budget smaller than the audit caps the audit, so the drawn audit depends on the budget
    there; a resume whose budget would draw another audit is refused (:func:`check_resume`)."""

    seed: int
    audit: int
    chunk_size: int
    budget: int
    audit_chunks: int
    audit_mutants: int

    def differs(self, held: AdaptiveSettings, path: str) -> str | None:
        """The one-line refusal of resuming ``held`` (a file's settings) with these, or None."""
        if (held.seed, held.audit, held.chunk_size) != (self.seed, self.audit, self.chunk_size):
            return (
                f"{path} holds an adaptive screen run with --seed {held.seed}, an audit of at least {held.audit} "
                f"mutants and --chunk-size {held.chunk_size} (these fix its rounds); resume it with those, or use "
                "another --out"
            )
        if held.audit_chunks != self.audit_chunks:
            capped = held.audit_mutants >= held.budget  # the first budget capped the audit
            fix = f"--budget {held.budget}" if capped else f"a --budget of at least {held.audit_mutants}"
            return (
                f"{path} holds an adaptive screen whose audit ({held.audit_chunks} chunks, {held.audit_mutants} "
                f"mutants) was drawn for --budget {held.budget}; --budget {self.budget} would draw another audit "
                f"({self.audit_chunks} chunks): resume it with {fix}, or use another --out"
            )
        return None


def _held_settings(con: duckdb.DuckDBPyConnection) -> AdaptiveSettings | None:
    """A file's ``adaptive_settings`` (None: no adaptive screen began in it)."""
    if not has_table(con, "adaptive_settings"):
        return None
    rows = con.execute(f"SELECT {', '.join(SETTINGS_COLUMNS)} FROM adaptive_settings").fetchall()
    return AdaptiveSettings(**dict(zip(SETTINGS_COLUMNS, (int(v) for v in rows[0])))) if rows else None


def check_resume(path: str | os.PathLike, order: str, settings: AdaptiveSettings | None = None) -> None:
    """Refuse, in one line and touching nothing, a screen that would leave ``path`` incoherent:
    an adaptive screen's file resumed in another order (its ``estimates`` would go stale: the
    newly measured mutants would stay estimated there), a file begun in another order resumed
    adaptively (its outcomes are no audit and no round), or an adaptive one resumed with
    ``settings`` that would choose other rounds (:meth:`AdaptiveSettings.differs`; None: not
    known yet, the order alone is checked)."""
    path = Path(path)
    if not path.exists() or not path.stat().st_size:
        return
    with connect(path, read_only=True) as con:
        if not has_table(con, "outcomes"):
            return
        held = _held_settings(con)
        measured = con.execute("SELECT count(*) FROM outcomes").fetchall()[0][0]
    if held is not None and order != "adaptive":
        raise ResultsFileError(
            f"{path} holds an adaptive screen (its table estimates would go stale under --order {order}); "
            "resume it with --order adaptive and a larger --budget (100% screens the rest), or use another --out"
        )
    if held is None and order == "adaptive" and measured:
        raise ResultsFileError(
            f"{path} holds a screen begun in another order (its outcomes are no audit sample); "
            "resume it in that order, or write the adaptive screen to another --out"
        )
    if held is not None and settings is not None:
        refusal = settings.differs(held, str(path))
        if refusal:
            raise ResultsFileError(refusal)


def check_settings(con: duckdb.DuckDBPyConnection, path: str, settings: AdaptiveSettings) -> None:
    """Record an adaptive screen's ``settings`` in a file that has none; a file that holds
    others that would choose other rounds is refused in one line."""
    held = _held_settings(con)
    if held is not None:
        refusal = settings.differs(held, path)
        if refusal:
            raise ResultsFileError(refusal)
        return
    with transaction(con):
        con.execute(ESTIMATES_DDL)
        con.execute(
            f"INSERT INTO adaptive_settings ({', '.join(SETTINGS_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?)",
            [getattr(settings, c) for c in SETTINGS_COLUMNS],
        )


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


def estimated_tiles(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """``layer, matrix, row, col, kind, probe_id, effect`` of every estimated (never measured)
    row of ``estimates``, for the report's map (empty in a file without the table)."""
    columns = ["layer", "matrix", "row", "col", "kind", "probe_id", "effect"]
    if not has_table(con, "estimates"):
        return pd.DataFrame(columns=columns)
    return con.execute(
        'SELECT m.layer, m.matrix, m."row", m.col, m.kind, e.probe_id, e.effect FROM estimates e '
        "JOIN mutations m USING (mutation_id) WHERE e.source = 'estimated' ORDER BY e.mutation_id, e.probe_id"
    ).df()
