"""The results store: one DuckDB file per screen, tidy tables, resumable.

Tables (one row per thing, like deep-mutational-scanning tables):

* ``runs``      the screen's configuration (model id and content hash, dtype,
                device, tile, plan, probes, versions) and its hash;
* ``probes``    each probe's text, prompt tokens and wild-type (WT) output;
* ``mutations`` every mutation of the plan (site, element size, kind, value);
* ``outcomes``  one row per (mutation, probe): NSM call, divergence step,
                output tokens and text, phenotype id (distinct outputs per
                probe, numbered in plan order, the WT output being 0), and
                the batched engine's effect sizes (top-1/top-2 margin at the
                divergence step, smallest margin, drop in log-probability of
                the WT output, whether a near tie was re-checked);
* ``progress``  one row per committed chunk of mutations (bookkeeping).

A chunk's outcomes and its progress row are written in one transaction, so a
stopped screen leaves only whole chunks behind and a rerun of the same
command continues after them without duplicating a row (the primary key of
``outcomes`` enforces it). A different configuration is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from .errors import MutascopeError
from .mutation import Mutation

SCHEMA_VERSION = 1
# Measurements an engine may report beside the NSM call (the batched engine's
# teacher-forced pass does; the reference engine leaves them null).
EFFECT_COLUMNS = {
    "margin": pa.float64(),
    "min_margin": pa.float64(),
    "logprob_drop": pa.float64(),
    "logprob_drop_per_token": pa.float64(),
    "rechecked": pa.bool_(),
}
TABLES = ("runs", "probes", "mutations", "outcomes", "progress")

_DDL = """
CREATE TABLE runs (
    schema_version INTEGER, config_hash VARCHAR, config VARCHAR,
    model_id VARCHAR, model_hash VARCHAR, dtype VARCHAR, device VARCHAR,
    decoding VARCHAR, tile_h INTEGER, tile_w INTEGER, n_mutations INTEGER,
    shard VARCHAR, versions VARCHAR, created_at TIMESTAMP DEFAULT current_timestamp
);
CREATE TABLE probes (
    probe_id VARCHAR PRIMARY KEY, position INTEGER, kind VARCHAR, text VARCHAR,
    chat BOOLEAN, max_new_tokens INTEGER, decoding VARCHAR, answer VARCHAR,
    probe_group VARCHAR, prompt_tokens INTEGER[], wt_tokens INTEGER[], wt_text VARCHAR
);
CREATE TABLE mutations (
    mutation_id INTEGER PRIMARY KEY, layer INTEGER, matrix VARCHAR,
    "row" INTEGER, col INTEGER, height INTEGER, width INTEGER,
    kind VARCHAR, value DOUBLE, r0 INTEGER, c0 INTEGER
);
CREATE TABLE outcomes (
    mutation_id INTEGER, probe_id VARCHAR, nsm BOOLEAN, divergence INTEGER,
    output_tokens INTEGER[], output_text VARCHAR, phenotype_id INTEGER,
    margin DOUBLE, min_margin DOUBLE, logprob_drop DOUBLE, logprob_drop_per_token DOUBLE,
    rechecked BOOLEAN,
    PRIMARY KEY (mutation_id, probe_id)
);
CREATE TABLE progress (
    first_mutation_id INTEGER, last_mutation_id INTEGER, n_mutations INTEGER,
    engine VARCHAR, seconds DOUBLE, finished_at TIMESTAMP DEFAULT current_timestamp
);
"""


def config_hash(config: dict) -> str:
    """A stable hash of a screen configuration (canonical JSON)."""
    blob = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _diff_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _diff_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


@dataclass(frozen=True)
class OutcomeRow:
    """One (mutation, probe) result as an engine reports it."""

    mutation_id: int
    probe_id: str
    tokens: tuple[int, ...]
    text: str
    divergence: int | None

    @property
    def nsm(self) -> bool:
        return self.divergence is not None


@dataclass(frozen=True)
class ProbeRecord:
    """What the store keeps of a probe: its definition, prompt and WT output."""

    probe_id: str
    kind: str
    text: str
    chat: bool
    max_new_tokens: int
    decoding: str
    answer: str | None
    group: str | None
    prompt_tokens: tuple[int, ...]
    wt_tokens: tuple[int, ...]
    wt_text: str


class Store:
    """A screen's DuckDB file, opened for writing."""

    def __init__(self, path: str | os.PathLike, con: duckdb.DuckDBPyConnection):
        self.path = Path(path)
        self.con = con
        self._phenotypes: dict[str, dict[tuple[int, ...], int]] = {}
        self._load_phenotypes()

    # -- opening -----------------------------------------------------------
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        config: dict,
        *,
        run: dict,
        probes: Sequence[ProbeRecord],
        mutations: Sequence[Mutation],
    ) -> "Store":
        """Create the file, or reopen it for the *same* configuration.

        Everything is validated before anything is written: a file holding a
        different screen, or that is not a mutascope file, is left untouched.
        """
        path = Path(path)
        digest = config_hash(config)
        if path.exists():
            existing = _read_config(path)
            if existing is not None and existing[0] != digest:
                changed = ", ".join(_diff_keys(existing[1], config)) or "configuration"
                raise MutascopeError(
                    f"{path} holds a different screen (differs in: {changed}); "
                    "use a new --out file or rerun the original command to resume"
                )
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path))
        store = cls(path, con)
        if existing_runs(con) == 0:
            store._create(config, digest, run, probes, mutations)
        else:
            store._check_probes(probes)
        store._load_phenotypes()
        return store

    def _create(self, config, digest, run, probes, mutations) -> None:
        con = self.con
        con.begin()
        try:
            con.execute(_DDL)
            con.execute(
                "INSERT INTO runs (schema_version, config_hash, config, model_id, model_hash, dtype, device,"
                " decoding, tile_h, tile_w, n_mutations, shard, versions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    SCHEMA_VERSION, digest, json.dumps(config, sort_keys=True), run["model_id"],
                    run["model_hash"], run["dtype"], run["device"], run["decoding"], run["tile"][0],
                    run["tile"][1], len(mutations), run["shard"], json.dumps(run["versions"], sort_keys=True),
                ],
            )
            probe_table = pa.table(
                {
                    "probe_id": [p.probe_id for p in probes],
                    "position": list(range(len(probes))),
                    "kind": [p.kind for p in probes],
                    "text": [p.text for p in probes],
                    "chat": [p.chat for p in probes],
                    "max_new_tokens": [p.max_new_tokens for p in probes],
                    "decoding": [p.decoding for p in probes],
                    "answer": [p.answer for p in probes],
                    "probe_group": [p.group for p in probes],
                    "prompt_tokens": pa.array([list(p.prompt_tokens) for p in probes], pa.list_(pa.int32())),
                    "wt_tokens": pa.array([list(p.wt_tokens) for p in probes], pa.list_(pa.int32())),
                    "wt_text": [p.wt_text for p in probes],
                }
            )
            _insert(con, "probes", probe_table)
            mutation_table = pa.table(
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
            _insert(con, "mutations", mutation_table)
            con.commit()
        except BaseException:
            con.rollback()
            raise

    def _check_probes(self, probes: Sequence[ProbeRecord]) -> None:
        """On resume, the WT outputs must be what they were (same model, same decoding)."""
        stored = {
            pid: tuple(tokens)
            for pid, tokens in self.con.execute("SELECT probe_id, wt_tokens FROM probes").fetchall()
        }
        for p in probes:
            if stored.get(p.probe_id) != tuple(p.wt_tokens):
                raise MutascopeError(
                    f"{self.path}: the wild-type output of probe {p.probe_id!r} differs from the stored one; "
                    "the model or its numerics changed, so this screen cannot be resumed here"
                )

    def _load_phenotypes(self) -> None:
        self._phenotypes = {}
        if existing_runs(self.con) == 0:
            return
        for pid, wt in self.con.execute("SELECT probe_id, wt_tokens FROM probes").fetchall():
            self._phenotypes[pid] = {tuple(wt): 0}
        rows = self.con.execute(
            "SELECT DISTINCT probe_id, output_tokens, phenotype_id FROM outcomes WHERE phenotype_id > 0"
        ).fetchall()
        for pid, tokens, ph in rows:
            self._phenotypes[pid][tuple(tokens)] = ph

    # -- progress ----------------------------------------------------------
    def done_mutations(self) -> set[int]:
        """Ids of mutations whose outcomes are committed."""
        return {r[0] for r in self.con.execute("SELECT DISTINCT mutation_id FROM outcomes").fetchall()}

    def write_chunk(self, outcomes: Iterable[OutcomeRow], *, engine: str, seconds: float) -> None:
        """Commit one chunk of outcomes and its progress row, all or nothing."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        pending: dict[str, dict[tuple[int, ...], int]] = {}
        phenotype_ids = []
        for o in outcomes:
            known = self._phenotypes[o.probe_id]
            new = pending.setdefault(o.probe_id, {})
            ph = known.get(o.tokens, new.get(o.tokens))
            if ph is None:
                ph = len(known) + len(new)
                new[o.tokens] = ph
            phenotype_ids.append(ph)
        table = pa.table(
            {
                "mutation_id": pa.array([o.mutation_id for o in outcomes], pa.int32()),
                "probe_id": [o.probe_id for o in outcomes],
                "nsm": [o.nsm for o in outcomes],
                "divergence": pa.array([o.divergence for o in outcomes], pa.int32()),
                "output_tokens": pa.array([list(o.tokens) for o in outcomes], pa.list_(pa.int32())),
                "output_text": [o.text for o in outcomes],
                "phenotype_id": pa.array(phenotype_ids, pa.int32()),
                **{
                    name: pa.array([getattr(o, name, None) for o in outcomes], kind)
                    for name, kind in EFFECT_COLUMNS.items()
                },
            }
        )
        ids = [o.mutation_id for o in outcomes]
        con = self.con
        con.begin()
        try:
            _insert(con, "outcomes", table)
            con.execute(
                "INSERT INTO progress (first_mutation_id, last_mutation_id, n_mutations, engine, seconds)"
                " VALUES (?,?,?,?,?)",
                [min(ids), max(ids), len(set(ids)), engine, seconds],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        for pid, new in pending.items():
            self._phenotypes[pid].update(new)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _insert(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Append an Arrow table to ``name`` (columns in table order)."""
    con.register("_incoming", table)
    try:
        con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")


def existing_runs(con: duckdb.DuckDBPyConnection) -> int:
    """How many ``runs`` rows a connection's database holds (0 when new)."""
    has = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'runs'"
    ).fetchone()[0]
    return con.execute("SELECT count(*) FROM runs").fetchone()[0] if has else 0


def write_tables(path: str | os.PathLike, tables: dict[str, pd.DataFrame]) -> Path:
    """Write DataFrames into the DuckDB file at ``path`` (created if needed), replacing
    tables of the same names, all in one transaction.

    Every analysis (statistics of a screen, super weights, activation patterns,
    specialization) keeps its tables this way, so its results are one file too.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(p))
    except duckdb.Error as exc:
        raise MutascopeError(f"cannot open {p} as a DuckDB file: {str(exc).splitlines()[0]}") from None
    try:
        con.begin()
        for name, df in tables.items():
            con.register("_frame", df)
            con.execute(f'CREATE OR REPLACE TABLE "{name}" AS SELECT * FROM _frame')
            con.unregister("_frame")
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.close()
    return p


def _connect_read(path: Path) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MutascopeError(f"{path} is not a readable mutascope results file ({first})") from None


def _read_config(path: Path) -> tuple[str, dict] | None:
    con = _connect_read(path)
    try:
        n_tables = con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0]
        if n_tables == 0:
            return None  # an empty database (e.g. a creation that was rolled back): reuse it
        if existing_runs(con) == 0:
            raise MutascopeError(f"{path} exists but holds no mutascope screen; choose another --out file")
        digest, blob = con.execute("SELECT config_hash, config FROM runs").fetchone()
        return digest, json.loads(blob)
    finally:
        con.close()


class Results:
    """A results file opened read-only; each table as a pandas DataFrame."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise MutascopeError(f"results file not found: {self.path}")
        self.con = _connect_read(self.path)
        if existing_runs(self.con) == 0:
            self.con.close()
            raise MutascopeError(f"{self.path} holds no mutascope screen")

    def table_names(self) -> list[str]:
        """Every table in the file: the screen's, then phenotypes and analyses if computed."""
        names = [r[0] for r in self.con.execute(
            "SELECT table_name FROM information_schema.tables ORDER BY table_name").fetchall()]
        return [t for t in TABLES if t in names] + [t for t in names if t not in TABLES]

    def table(self, name: str) -> pd.DataFrame:
        names = self.table_names()
        if name not in names:
            raise MutascopeError(f"unknown table {name!r}: choose from {', '.join(names)}")
        return self.con.execute(f'SELECT * FROM "{name}" ORDER BY ALL').df()

    @property
    def runs(self) -> pd.DataFrame:
        return self.table("runs")

    @property
    def probes(self) -> pd.DataFrame:
        return self.con.execute("SELECT * FROM probes ORDER BY position").df()

    @property
    def mutations(self) -> pd.DataFrame:
        return self.con.execute("SELECT * FROM mutations ORDER BY mutation_id").df()

    @property
    def outcomes(self) -> pd.DataFrame:
        return self.con.execute(
            "SELECT o.* FROM outcomes o JOIN probes p USING (probe_id) ORDER BY o.mutation_id, p.position"
        ).df()

    @property
    def config(self) -> dict:
        return json.loads(self.con.execute("SELECT config FROM runs").fetchone()[0])

    def sites(self) -> pd.DataFrame:
        """Outcomes joined with their mutations: the table most analyses start from."""
        return self.con.execute(
            "SELECT m.layer, m.matrix, m.row, m.col, m.kind, m.value, o.* "
            "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
            "ORDER BY o.mutation_id, p.position"
        ).df()

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.con.execute(sql, params or []).df()

    def export(self, directory: str | os.PathLike) -> list[Path]:
        """Write every table (phenotypes and analyses too) as Parquet into ``directory``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name in self.table_names():
            target = directory / f"{name}.parquet"
            escaped = str(target).replace("'", "''")
            self.con.execute(f"COPY (SELECT * FROM \"{name}\" ORDER BY ALL) TO '{escaped}' (FORMAT PARQUET)")
            written.append(target)
        return written

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_results(path: str | os.PathLike) -> Results:
    """Open a screen's results file for reading."""
    return Results(path)
