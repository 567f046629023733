"""The ``mutations`` table's format, both ways: a plan's mutations written as Arrow, and read
back as :class:`~mutascope.plan.Mutation` objects (what ``mutascope fill`` runs again)."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from ..plan.kinds import Kind
from ..plan.mutation import Mutation


def mutation_table(mutations: Sequence[Mutation]) -> pa.Table:
    """The ``mutations`` rows of a plan (or shard) as Arrow."""
    return pa.table(
        {
            "mutation_id": pa.array([m.mutation_id for m in mutations], pa.int32()),
            "layer": pa.array([m.layer for m in mutations], pa.int32()),
            "matrix": [m.matrix for m in mutations],
            "row": pa.array([m.row for m in mutations], pa.int32()),
            "col": pa.array([m.col for m in mutations], pa.int32()),
            "height": pa.array([m.height for m in mutations], pa.int32()),
            "width": pa.array([m.width for m in mutations], pa.int32()),
            "kind": [str(m.kind) for m in mutations],
            "value": pa.array([m.value for m in mutations], pa.float64()),
            "r0": pa.array([m.r0 for m in mutations], pa.int32()),
            "c0": pa.array([m.c0 for m in mutations], pa.int32()),
        }
    )


def read_mutations(con: duckdb.DuckDBPyConnection, ids: list[int] | None = None) -> dict[int, Mutation]:
    """Mutations of the file by id (all, or those in ``ids``)."""
    sql = 'SELECT mutation_id, layer, matrix, "row", col, kind, value, r0, height, c0, width FROM mutations'
    if ids is not None:
        con.register("_wanted", pd.DataFrame({"mutation_id": list(ids)}))
        sql += " WHERE mutation_id IN (SELECT mutation_id FROM _wanted)"
    try:
        rows = con.execute(sql + " ORDER BY mutation_id").fetchall()
    finally:
        if ids is not None:
            con.unregister("_wanted")
    return {
        mid: Mutation(
            mutation_id=mid,
            layer=layer,
            matrix=matrix,
            row=row,
            col=col,
            kind=Kind.parse(kind),
            value=value,
            r0=r0,
            r1=r0 + h,
            c0=c0,
            c1=c0 + w,
        )
        for mid, layer, matrix, row, col, kind, value, r0, h, c0, w in rows
    }
