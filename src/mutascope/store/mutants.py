"""Mutants and their outcomes looked up in a screen's tables: by site (``mutascope show``),
the NSMs ``mutascope fill`` chooses from, the sites ``mutascope zoom --top`` ranks.

Each question is one named function returning plain values or a DataFrame, so the
commands that ask them hold no SQL and the one-line errors stay theirs.
"""

from __future__ import annotations

import duckdb
import pandas as pd


def find_mutation(con: duckdb.DuckDBPyConnection, layer: int, matrix: str, row: int, col: int, kind: str):
    """``(mutation_id, layer, matrix, row, col, kind, value, r0, r1, c0, c1)`` of the mutation of
    ``kind`` at one site, or None when the screen has none."""
    rows = con.execute(
        'SELECT mutation_id, layer, matrix, "row", col, kind, value, r0, r0 + height, c0, c0 + width '
        'FROM mutations WHERE layer = ? AND matrix = ? AND "row" = ? AND col = ? AND kind = ?',
        [layer, matrix, row, col, kind],
    ).fetchall()
    return next(iter(rows), None)


def kinds_at(con: duckdb.DuckDBPyConnection, layer: int, matrix: str, row: int, col: int) -> list[str]:
    """The kinds screened at one site, sorted (empty when the site is not in the screen)."""
    return [
        k
        for (k,) in con.execute(
            'SELECT DISTINCT kind FROM mutations WHERE layer = ? AND matrix = ? AND "row" = ? AND col = ? ORDER BY 1',
            [layer, matrix, row, col],
        ).fetchall()
    ]


def screen_extent(
    con: duckdb.DuckDBPyConnection, layer: int, matrix: str
) -> tuple[list[int], list[str], list[int], list[int]]:
    """What the screen mutated, to say where a missing site could have been: every layer and
    matrix, and the tile rows and columns of ``layer``'s ``matrix`` (empty if not screened)."""
    layers = [v for (v,) in con.execute("SELECT DISTINCT layer FROM mutations").fetchall()]
    matrices = [v for (v,) in con.execute("SELECT DISTINCT matrix FROM mutations ORDER BY 1").fetchall()]
    rows = [
        v
        for (v,) in con.execute(
            'SELECT DISTINCT "row" FROM mutations WHERE layer = ? AND matrix = ?', [layer, matrix]
        ).fetchall()
    ]
    cols = [
        v
        for (v,) in con.execute(
            "SELECT DISTINCT col FROM mutations WHERE layer = ? AND matrix = ?", [layer, matrix]
        ).fetchall()
    ]
    return layers, matrices, rows, cols


def mutant_outcomes(con: duckdb.DuckDBPyConnection, mutation_id: int) -> list[tuple]:
    """One mutant's outcome per probe, in screen order: ``(probe_id, kind, probe_group, answer,
    wt_tokens, wt_text, nsm, divergence, output_tokens, output_text)``."""
    return con.execute(
        "SELECT p.probe_id, p.kind, p.probe_group, p.answer, p.wt_tokens, p.wt_text, "
        "o.nsm, o.divergence, o.output_tokens, o.output_text "
        "FROM outcomes o JOIN probes p USING (probe_id) WHERE o.mutation_id = ? ORDER BY p.position",
        [mutation_id],
    ).fetchall()


def screened_sites(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every site the screen mutated: ``layer, matrix, row, col``."""
    return con.execute('SELECT DISTINCT layer, matrix, "row", col FROM mutations').df()


def nsm_rows(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every NSM outcome with its site, in plan and screen order: ``mutation_id, probe_id,
    filled, logprob_drop, layer, matrix, row, col``."""
    return con.execute(
        "SELECT o.mutation_id, o.probe_id, o.output_tokens IS NOT NULL AS filled, o.logprob_drop, "
        'm.layer, m.matrix, m."row", m.col FROM outcomes o JOIN mutations m USING (mutation_id) '
        "JOIN probes p USING (probe_id) WHERE o.nsm ORDER BY o.mutation_id, p.position"
    ).df()


def nsm_calls(con: duckdb.DuckDBPyConnection) -> dict[tuple[int, str], int]:
    """The stored divergence step of every NSM, by ``(mutation_id, probe_id)``."""
    rows = con.execute("SELECT mutation_id, probe_id, divergence FROM outcomes WHERE nsm").fetchall()
    return {(m, p): d for m, p, d in rows}


def unfilled_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many NSMs still have no stored output (a calls-only screen before ``fill``)."""
    return int(con.execute("SELECT count(*) FROM outcomes WHERE nsm AND output_tokens IS NULL").fetchall()[0][0])


def site_effects(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every outcome's site, kind and ``logprob_drop``."""
    return con.execute(
        'SELECT m.layer, m.matrix, m."row", m.col, m.kind, o.logprob_drop FROM outcomes o '
        "JOIN mutations m USING (mutation_id)"
    ).df()
