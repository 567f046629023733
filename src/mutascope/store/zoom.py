"""The ``zoom`` tables of a results file: what ``mutascope zoom`` measured, read and written.

A zoom adds rows and never changes the screen's own tables or its identity.
Each level of one (site, kind, probe) refinement is one transaction, so an
interrupted zoom leaves whole levels and a rerun recomputes only what is
missing, with the same mutants batched together: the table it ends with is
the one an uninterrupted run writes. The rule a (site, kind) was zoomed with
is kept in ``zoom_settings``; a rerun with another rule is refused, since its
rows would not be one refinement.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from ..errors import ResultsFileError
from .db import transaction
from .schema import ZOOM_DDL

ZOOM_COLUMNS = (
    "site",
    "layer",
    "matrix",
    "row",
    "col",
    "height",
    "width",
    "level",
    "parent",
    "kind",
    "probe_id",
    "nsm",
    "logprob_drop",
    "followed",
)


def has_zoom(con: duckdb.DuckDBPyConnection) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'zoom'").fetchall()[0][0] > 0


def read_zoom(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every zoom row, in a fixed order (empty, with the columns, in a file without zooms)."""
    if not has_zoom(con):
        return pd.DataFrame(columns=list(ZOOM_COLUMNS))
    cols = ", ".join(f'"{c}"' for c in ZOOM_COLUMNS)
    return con.execute(f'SELECT {cols} FROM zoom ORDER BY site, kind, probe_id, level, "row", col, height, width').df()


def check_settings(con: duckdb.DuckDBPyConnection, site: str, kind: str, share: float, beam: int, floor: int) -> None:
    """Refuse to continue a (site, kind) zoom with another rule than the one stored (one line)."""
    if not has_zoom(con):
        return
    row = con.execute(
        "SELECT share, beam, floor FROM zoom_settings WHERE site = ? AND kind = ?", [site, kind]
    ).fetchone()
    if row is not None and (float(row[0]), int(row[1]), int(row[2])) != (float(share), int(beam), int(floor)):
        raise ResultsFileError(
            f"site {site} was zoomed with {kind} at --share {row[0]:g} --beam {row[1]} --floor {row[2]}; "
            "rerun with those to resume it (a zoom table holds one refinement per site and kind)"
        )


def write_level(con: duckdb.DuckDBPyConnection, settings: tuple[str, str, float, int, int], rows: pd.DataFrame) -> None:
    """Add one level's rows of a refinement (and its settings row, once), all or nothing."""
    with transaction(con):
        con.execute(ZOOM_DDL)
        con.execute(
            "INSERT INTO zoom_settings SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS "
            "(SELECT 1 FROM zoom_settings WHERE site = ? AND kind = ?)",
            [*settings, settings[0], settings[1]],
        )
        if len(rows):
            con.register("_zoom", rows[list(ZOOM_COLUMNS)])
            con.execute("INSERT INTO zoom BY NAME SELECT * FROM _zoom")
            con.unregister("_zoom")
