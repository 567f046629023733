"""The site frame every analysis starts from, and per-matrix tile maps.

Columns: ``probe_id, layer, matrix, row, col, kind, mutation_id, nsm`` plus,
when ``mutascope phenotype`` has run, ``similarity, severity, category,
first_word`` (text probes).
A multiple-choice *set* (e.g. MMLU21) counts as one probe whose NSM is "any
answer changed", as in the paper.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

PHENOTYPE_COLUMNS = ("similarity", "severity", "category", "first_word")
UNGROUPED = "choice"  # the set name of choice probes that name no group (as in the phenotype tables)


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
    ).fetchall()[0][0] > 0


def phenotype_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The phenotype columns this file has (none before ``mutascope phenotype`` ran)."""
    if not _has_table(con, "phenotypes"):
        return []
    have = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'phenotypes'"
    ).fetchall()}
    return [c for c in PHENOTYPE_COLUMNS if c in have]


def site_frame(results) -> pd.DataFrame:
    """The site frame of an open :class:`~mutascope.store.Results` (or a DuckDB connection).

    Built in SQL without output texts or tokens: a full-genome screen has
    millions of outcome rows, and no analysis needs their texts (phenotype
    columns carry what they need).
    """
    con = getattr(results, "con", results)
    ph = phenotype_columns(con)
    ph_select = "".join(f", f.{c}" for c in ph)
    ph_join = "LEFT JOIN phenotypes f ON f.mutation_id = o.mutation_id AND f.probe_id = o.probe_id" if ph else ""
    text = con.execute(
        f"SELECT o.probe_id, m.layer, m.matrix, m.row, m.col, m.kind, o.mutation_id, o.nsm{ph_select} "
        f"FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) {ph_join} "
        "WHERE p.kind <> 'choice' ORDER BY o.mutation_id, p.position"
    ).df()
    sets = con.execute(
        f"SELECT coalesce(p.probe_group, '{UNGROUPED}') AS probe_id, m.layer, m.matrix, m.row, m.col, m.kind, "
        "o.mutation_id, bool_or(o.nsm) AS nsm "
        "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
        "WHERE p.kind = 'choice' GROUP BY ALL ORDER BY o.mutation_id, probe_id"
    ).df()
    if sets.empty:
        frame = text
    elif text.empty:
        frame = sets
    else:
        frame = pd.concat([text, sets], ignore_index=True)
    frame["nsm"] = frame["nsm"].astype(bool)
    return frame.reset_index(drop=True)


def tile_map(
    frame: pd.DataFrame, value: str = "nsm", rows: pd.Index | None = None, cols: pd.Index | None = None
) -> tuple[np.ndarray, pd.Index, pd.Index]:
    """A 2-D array (tile rows x tile cols) of ``value`` for one matrix, probe and kind.

    Tiles without a mutation are NaN. ``rows``/``cols`` fix the labels (so maps
    of two kinds line up); by default the ones present. Returns the array and labels.
    """
    rows = pd.Index(sorted(frame["row"].unique())) if rows is None else rows
    cols = pd.Index(sorted(frame["col"].unique())) if cols is None else cols
    grid = np.full((len(rows), len(cols)), np.nan)
    grid[rows.get_indexer(frame["row"]), cols.get_indexer(frame["col"])] = frame[value].astype(float).to_numpy()
    return grid, rows, cols
