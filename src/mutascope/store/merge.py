"""Shard files read and merged into one results file, in SQL (``mutascope merge``; the checks
that shards are all the parts of one screen are :mod:`mutascope.screen.merge`'s).

The merged file is written in one transaction: the tables a fresh screen has,
the first shard's ``runs`` and ``probes`` rows (``runs`` rewritten as the
unsharded screen's), then every shard's ``mutations``, ``outcomes``,
``progress``, ``fills`` and ``predictions``, attached read-only. Each shard
numbered its own phenotypes, so the ids are renumbered once at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import duckdb

from .db import connect, transaction
from .identity import config_hash
from .schema import PREDICTIONS_DDL, SCHEMA_VERSION, create
from .writer import Store

MERGED_TABLES = ("mutations", "outcomes", "progress", "fills", "predictions")  # every shard's rows, in this order


def shard_facts(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int | None, int | None, int, list[tuple]]:
    """What merging checks of one shard: ``(n_mutations, schema_version, first, last, n_done,
    probes)``, the mutations its plan has, its file's schema, its first and last mutation id,
    how many mutations have outcomes, and its probes as ``(probe_id, position, prompt_tokens,
    wt_tokens)`` in screen order."""
    n_mut, version = con.execute("SELECT n_mutations, schema_version FROM runs").fetchall()[0]
    first, last = con.execute("SELECT min(mutation_id), max(mutation_id) FROM mutations").fetchall()[0]
    n_done = con.execute("SELECT count(DISTINCT mutation_id) FROM outcomes").fetchall()[0][0]
    probes = con.execute("SELECT probe_id, position, prompt_tokens, wt_tokens FROM probes ORDER BY position").fetchall()
    return int(n_mut), int(version), first, last, int(n_done), probes


def prediction_coverage(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """How many mutants have predictions, and how many of those a super-weight mark."""
    have, marked = con.execute(
        "SELECT count(DISTINCT mutation_id), count(DISTINCT mutation_id) FILTER (superweight IS NOT NULL) "
        "FROM predictions"
    ).fetchall()[0]
    return int(have), int(marked)


def write_merged(target: Path, shards: Sequence[str | os.PathLike], *, n_mutations: int, config: dict) -> None:
    """Write the unsharded results file of ``shards`` (checked, in index order) to ``target``, a
    new file: one transaction, then phenotype ids renumbered (module docstring). ``config`` is
    the unsharded screen's configuration, ``n_mutations`` its plan's size."""
    con = connect(target)
    try:
        for i, path in enumerate(shards):
            con.execute(f"ATTACH '{_sql_path(Path(path))}' AS s{i} (READ_ONLY)")
        with transaction(con):
            create(con)  # the tables and keys a fresh screen has
            con.execute("ALTER TABLE outcomes ALTER COLUMN filled SET DEFAULT true")  # schema-1 shards: all complete
            con.execute("INSERT INTO runs SELECT * FROM s0.runs")
            con.execute(
                "UPDATE runs SET shard = '0/1', n_mutations = ?, config = ?, config_hash = ?, schema_version = ?",
                [n_mutations, json.dumps(config, sort_keys=True), config_hash(config), SCHEMA_VERSION],
            )
            con.execute("INSERT INTO probes BY NAME SELECT * FROM s0.probes")
            if any(_has(con, f"s{i}", "predictions") for i in range(len(shards))):
                con.execute(PREDICTIONS_DDL)
            for name in MERGED_TABLES:
                for i in range(len(shards)):
                    if _has(con, f"s{i}", name):
                        con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM s{i}."{name}"')
        for i in range(len(shards)):
            con.execute(f"DETACH s{i}")
    finally:
        con.close()
    with Store.open_existing(target) as store:  # phenotype ids: each shard numbered its own outputs
        store.renumber_phenotypes()
        store.con.execute("CHECKPOINT")


def _has(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return (
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = ? AND table_name = ?", [schema, table]
        ).fetchall()[0][0]
        > 0
    )


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
