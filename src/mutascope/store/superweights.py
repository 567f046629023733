"""A super-weights file's tables read back (``mutascope superweights --out``, written by
:mod:`mutascope.superweights.store`), for the analyses that mark a screen's axes with them.

The reads return plain tuples; what a missing table or an empty run means, and
whether the file fits the screen, is :mod:`mutascope.analysis.superweight_tiles`'s.
"""

from __future__ import annotations

import duckdb

SUPERWEIGHT_TABLES = ("superweight_runs", "superweights", "superactivations")  # what marks need


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Every table the file holds."""
    return {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def superweight_run(con: duckdb.DuckDBPyConnection) -> tuple | None:
    """``(model_id, content_hash, dtype)`` of the run the file holds (None if it has none)."""
    return con.execute("SELECT model_id, content_hash, dtype FROM superweight_runs LIMIT 1").fetchone()


def superweight_positions(con: duckdb.DuckDBPyConnection, kind: str) -> list[tuple]:
    """``(layer, row, col)`` of every super weight of ``kind`` (``creator`` or ``canceller``), sorted."""
    return con.execute('SELECT layer, "row", col FROM superweights WHERE kind = ? ORDER BY ALL', [kind]).fetchall()


def superactivation_channels(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """``(channel, first_layer)`` of every super activation, sorted."""
    return con.execute("SELECT DISTINCT channel, first_layer FROM superactivations ORDER BY ALL").fetchall()
