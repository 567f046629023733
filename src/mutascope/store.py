"""The results store: one DuckDB file per screen, tidy tables, resumable.

Tables (one row per thing, like deep-mutational-scanning tables):

* ``runs``      the screen's configuration (model id and content hash, dtype,
                device, tile, plan, probes, versions) and its hash;
* ``probes``    each probe's text, prompt tokens and wild-type (WT) output, and
                the WT output's log-likelihood under the unmutated model
                (``wt_logprob``, the scale its effect sizes are drops from);
* ``mutations`` every mutation of the plan (site, element size, kind, value);
* ``outcomes``  one row per (mutation, probe): NSM call, divergence step,
                output tokens and text, phenotype id (distinct outputs per
                probe, numbered in plan order, the WT output being 0), and
                the batched engine's effect sizes (top-1/top-2 margin at the
                divergence step, smallest margin, drop in log-probability of
                the WT output, whether a near tie was re-checked);
                ``filled`` is false for an NSM of a calls-only screen whose
                output is not computed yet (output tokens, text and
                phenotype id are then null until ``mutascope fill``);
* ``progress``  one row per committed chunk of mutations (bookkeeping);
* ``fills``     one row per committed chunk of ``mutascope fill``.

A chunk's outcomes and its progress row are written in one transaction, so a
stopped screen leaves only whole chunks behind and a rerun of the same
command continues after them without duplicating a row (the primary key of
``outcomes`` enforces it). A different configuration is refused.

**Phenotype ids** number each probe's distinct outputs in plan order: an
output's id is its rank among the probe's distinct non-WT outputs ordered by
the first mutation (lowest id) that produced it. A screen committing chunks
in plan order assigns exactly these ids as it goes; a screen whose chunks
arrive in another order (several workers) and ``mutascope fill`` renumber
once at the end (:meth:`Store.renumber_phenotypes`), so a finished file
never depends on the order its rows were written in. After a partial fill
the ids number the outputs filled so far.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

from .errors import MutascopeError
from .mutation import Mutation

SCHEMA_VERSION = 3  # 2: outcomes.filled (calls-only screens) and the fills table; 3: probes.wt_logprob
# Measurements an engine may report beside the NSM call (the batched engine's
# teacher-forced pass does; the reference engine leaves them null).
EFFECT_COLUMNS = {
    "margin": pa.float64(),
    "min_margin": pa.float64(),
    "logprob_drop": pa.float64(),
    "logprob_drop_per_token": pa.float64(),
    "rechecked": pa.bool_(),
}
TABLES = ("runs", "probes", "mutations", "outcomes", "progress", "fills")

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
    probe_group VARCHAR, prompt_tokens INTEGER[], wt_tokens INTEGER[], wt_text VARCHAR, wt_logprob DOUBLE
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
    rechecked BOOLEAN, filled BOOLEAN,
    PRIMARY KEY (mutation_id, probe_id)
);
CREATE TABLE progress (
    first_mutation_id INTEGER, last_mutation_id INTEGER, n_mutations INTEGER,
    engine VARCHAR, seconds DOUBLE, finished_at TIMESTAMP DEFAULT current_timestamp
);
"""
_FILLS_DDL = """
CREATE TABLE IF NOT EXISTS fills (
    first_mutation_id INTEGER, last_mutation_id INTEGER, n_outcomes INTEGER,
    engine VARCHAR, seconds DOUBLE, finished_at TIMESTAMP DEFAULT current_timestamp
);
"""
# One statement renumbers every probe's distinct NSM outputs in plan order (see the
# module docstring); silent rows keep 0. An NSM's output always differs from WT's.
_RENUMBER = """
UPDATE outcomes SET phenotype_id = r.new_id
FROM (
    SELECT probe_id, output_tokens, row_number() OVER (PARTITION BY probe_id ORDER BY min(mutation_id)) AS new_id
    FROM outcomes WHERE nsm AND output_tokens IS NOT NULL GROUP BY probe_id, output_tokens
) r
WHERE outcomes.nsm AND outcomes.probe_id = r.probe_id AND outcomes.output_tokens = r.output_tokens
  AND outcomes.phenotype_id IS DISTINCT FROM r.new_id
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
    """One (mutation, probe) result as an engine reports it.

    ``tokens``/``text`` are None for an NSM whose output was not computed (a
    calls-only screen); the call (``divergence``) is always known.
    """

    mutation_id: int
    probe_id: str
    tokens: tuple[int, ...] | None
    text: str | None
    divergence: int | None

    @property
    def nsm(self) -> bool:
        return self.divergence is not None

    @property
    def filled(self) -> bool:
        return self.tokens is not None


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
    wt_logprob: float | None = None


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
            check_target(path, config)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
        con = connect(path)
        try:
            if existing_runs(con) == 0:
                store = cls(path, con)
                store._create(config, digest, run, probes, mutations)
            else:
                _migrate(con)
                store = cls(path, con)
                store._check_probes(probes)
                store._check_mutations(mutations)
                store.record_wt_logprobs({p.probe_id: p.wt_logprob for p in probes})
        except BaseException:
            con.close()
            raise
        store._load_phenotypes()
        return store

    @classmethod
    def open_existing(cls, path: str | os.PathLike) -> "Store":
        """Open a results file that holds a screen for writing (``mutascope fill``, ``merge``)."""
        path = Path(path)
        Results(path).close()  # one-line errors for a missing, foreign or locked file
        con = connect(path)
        try:
            _migrate(con)
            return cls(path, con)
        except BaseException:
            con.close()
            raise

    def _create(self, config, digest, run, probes, mutations) -> None:
        con = self.con
        con.begin()
        try:
            con.execute(_DDL)
            con.execute(_FILLS_DDL)
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
                    "wt_logprob": pa.array([p.wt_logprob for p in probes], pa.float64()),
                }
            )
            _insert(con, "probes", probe_table)
            _insert(con, "mutations", mutation_table(mutations))
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

    def _check_mutations(self, mutations: Sequence[Mutation]) -> None:
        """On resume, the plan (or shard) must hold exactly the stored mutations."""
        n, lo, hi = self.con.execute("SELECT count(*), min(mutation_id), max(mutation_id) FROM mutations").fetchone()
        ids = [m.mutation_id for m in mutations]
        if (n, lo, hi) != (len(ids), min(ids, default=None), max(ids, default=None)):
            raise MutascopeError(
                f"{self.path} holds mutations {lo}-{hi} ({n}) but this screen's plan has "
                f"{min(ids, default=0)}-{max(ids, default=0)} ({len(ids)}): it was written by a mutascope "
                "that split shards differently; rerun it with that version or start a new --out file"
            )

    def record_wt_logprobs(self, values: dict[str, float | None]) -> None:
        """Store the probes' WT log-likelihoods where the file has none (files written before
        they were recorded); a value already stored is never changed."""
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            return
        con = self.con
        con.begin()
        try:
            for probe_id, value in values.items():
                con.execute("UPDATE probes SET wt_logprob = ? WHERE probe_id = ? AND wt_logprob IS NULL",
                            [value, probe_id])
            con.commit()
        except BaseException:
            con.rollback()
            raise

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

    def _phenotype_ids(self, outcomes: Sequence[OutcomeRow]) -> tuple[list[int | None], dict]:
        """Ids for the outputs of ``outcomes`` (new outputs numbered after the known ones)."""
        pending: dict[str, dict[tuple[int, ...], int]] = {}
        ids: list[int | None] = []
        for o in outcomes:
            if o.tokens is None:
                ids.append(None)
                continue
            known = self._phenotypes[o.probe_id]
            new = pending.setdefault(o.probe_id, {})
            ph = known.get(o.tokens, new.get(o.tokens))
            if ph is None:
                ph = len(known) + len(new)
                new[o.tokens] = ph
            ids.append(ph)
        return ids, pending

    def _outcome_table(self, outcomes: Sequence[OutcomeRow], phenotype_ids: list[int | None]) -> pa.Table:
        return pa.table(
            {
                "mutation_id": pa.array([o.mutation_id for o in outcomes], pa.int32()),
                "probe_id": [o.probe_id for o in outcomes],
                "nsm": [o.nsm for o in outcomes],
                "divergence": pa.array([o.divergence for o in outcomes], pa.int32()),
                "output_tokens": pa.array(
                    [None if o.tokens is None else list(o.tokens) for o in outcomes], pa.list_(pa.int32())),
                "output_text": pa.array([o.text for o in outcomes], pa.string()),
                "phenotype_id": pa.array(phenotype_ids, pa.int32()),
                **{
                    name: pa.array([getattr(o, name, None) for o in outcomes], kind)
                    for name, kind in EFFECT_COLUMNS.items()
                },
                "filled": [o.filled for o in outcomes],
            }
        )

    def write_chunk(self, outcomes: Iterable[OutcomeRow], *, engine: str, seconds: float) -> None:
        """Commit one chunk of outcomes and its progress row, all or nothing."""
        outcomes = list(outcomes)
        if not outcomes:
            return
        phenotype_ids, pending = self._phenotype_ids(outcomes)
        table = self._outcome_table(outcomes, phenotype_ids)
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

    def fill_chunk(self, outcomes: Iterable[OutcomeRow], *, engine: str, seconds: float) -> int:
        """Write the outputs of unfilled outcomes (and a ``fills`` row), all or nothing.

        Only output columns change (tokens, text, phenotype id, ``filled``):
        the call and the effect sizes stay as the screen measured them. A row
        that is already filled is left alone, so filling twice changes
        nothing. Returns the number of rows filled.
        """
        outcomes = [o for o in outcomes if o.tokens is not None]
        if not outcomes:
            return 0
        phenotype_ids, pending = self._phenotype_ids(outcomes)
        table = self._outcome_table(outcomes, phenotype_ids)
        con = self.con
        con.begin()
        try:
            con.register("_filled", table)
            n = con.execute(
                "UPDATE outcomes SET output_tokens = f.output_tokens, output_text = f.output_text, "
                "phenotype_id = f.phenotype_id, filled = true FROM _filled f "
                "WHERE outcomes.mutation_id = f.mutation_id AND outcomes.probe_id = f.probe_id "
                "AND NOT outcomes.filled"
            ).fetchone()[0]
            con.unregister("_filled")
            ids = [o.mutation_id for o in outcomes]
            con.execute(
                "INSERT INTO fills (first_mutation_id, last_mutation_id, n_outcomes, engine, seconds) VALUES (?,?,?,?,?)",
                [min(ids), max(ids), int(n), engine, seconds],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        for pid, new in pending.items():
            self._phenotypes[pid].update(new)
        return int(n)

    def renumber_phenotypes(self) -> int:
        """Give every output its canonical phenotype id (plan order; module docstring).

        One transaction; returns the number of rows whose id changed (0 when
        rows were committed in plan order).
        """
        con = self.con
        con.begin()
        try:
            changed = con.execute(_RENUMBER).fetchone()[0]
            con.commit()
        except BaseException:
            con.rollback()
            raise
        self._load_phenotypes()
        return int(changed)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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


def _migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a file written by an older mutascope up to :data:`SCHEMA_VERSION` (before writing to it).

    Version 1 files lack ``outcomes.filled`` (every output there is complete)
    and the ``fills`` table; versions 1 and 2 lack ``probes.wt_logprob`` (null
    until a command that loads the model records it: a resumed screen, ``fill``).
    """
    version = con.execute("SELECT max(schema_version) FROM runs").fetchone()[0]
    if version is not None and version >= SCHEMA_VERSION:
        return
    con.begin()
    try:
        con.execute("ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS filled BOOLEAN DEFAULT true")
        con.execute(_FILLS_DDL)
        con.execute("ALTER TABLE probes ADD COLUMN IF NOT EXISTS wt_logprob DOUBLE")
        con.execute("UPDATE runs SET schema_version = ?", [SCHEMA_VERSION])
        con.commit()
    except BaseException:
        con.rollback()
        raise


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
        con.begin()
        for name in drop:
            con.execute(f'DROP TABLE IF EXISTS "{name}"')
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
        return MutascopeError(
            f"{path} is in use by {who} (a running screen or another mutascope command); "
            "wait for it to finish or stop it, then retry"
        )
    if path.is_dir():
        return MutascopeError(f"{path} is a directory, not a {purpose}")
    return MutascopeError(f"{path} is not a readable {purpose} ({first})")


def connect(path: str | os.PathLike, *, read_only: bool = False, purpose: str = "mutascope results file"):
    """A DuckDB connection to ``path``, or a one-line :class:`MutascopeError` saying why not."""
    path = Path(path)
    try:
        return duckdb.connect(str(path), read_only=read_only)
    except duckdb.Error as exc:
        raise open_error(path, exc, purpose) from None


def _connect_read(path: Path) -> duckdb.DuckDBPyConnection:
    return connect(path, read_only=True)


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


def _partial_diff(stored: dict, expected: dict, prefix: str = "") -> list[str]:
    """Keys of ``expected`` (recursively) whose values differ in ``stored``."""
    keys = []
    for key, want in expected.items():
        have = stored.get(key)
        if isinstance(want, dict) and isinstance(have, dict):
            keys += _partial_diff(have, want, f"{prefix}{key}.")
        elif have != want:
            keys.append(f"{prefix}{key}")
    return keys


def check_target(path: str | os.PathLike, config: dict) -> None:
    """Refuse an output file that cannot take this screen, touching nothing.

    ``config`` may be partial (what is known before the model is loaded:
    model id, dtype, plan, shard, probes): only the keys it has are compared,
    so a command can check its ``--out`` file before any slow work. A missing
    file or an empty database is fine; a locked file, a file that is not
    DuckDB, one holding no screen, or one holding a different screen is a
    one-line error.
    """
    path = Path(path)
    if not path.exists():
        if path.parent.exists() and not path.parent.is_dir():
            raise MutascopeError(f"cannot create {path}: {path.parent} is not a directory")
        return
    if path.is_dir():
        raise MutascopeError(f"{path} is a directory; give a file name for the results, e.g. {path / 'screen.duckdb'}")
    existing = _read_config(path)
    if existing is None:
        return
    full = set(config) >= {"model", "plan", "probes", "shard", "dtype", "device", "eos"}
    changed = _diff_keys(existing[1], config) if full else _partial_diff(existing[1], config)
    if (full and existing[0] != config_hash(config)) or changed:
        raise MutascopeError(
            f"{path} holds a different screen (differs in: {', '.join(changed) or 'configuration'}); "
            "use a new --out file or rerun the original command to resume"
        )


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

    def export(self, directory: str | os.PathLike, compact: bool = False) -> list[Path]:
        """Write every table (phenotypes and analyses too) as Parquet into ``directory``.

        ``compact``: only what the statistics read, small enough to publish: ``tiles``
        (one row per mutation and probe: site, kind, value, the call, divergence step,
        margins and effect sizes, without output tokens or texts), ``runs``, ``probes``
        (without token arrays) and every ``analysis_`` table.
        Each file is written beside its target and renamed into place (see
        :mod:`mutascope.outfiles`); a DuckDB file in the way is refused.
        """
        from .outfiles import check_output_dir, check_output_file

        queries = {name: f'SELECT * FROM "{name}" ORDER BY ALL' for name in self.table_names()}
        if compact:
            have = {r[0] for r in self.con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'outcomes'").fetchall()}
            effects = "".join(f", o.{c}" for c in EFFECT_COLUMNS if c in have)
            queries = {
                "runs": "SELECT * FROM runs",
                "probes": "SELECT * EXCLUDE (prompt_tokens, wt_tokens) FROM probes ORDER BY position",
                "tiles": "SELECT o.mutation_id, o.probe_id, m.layer, m.matrix, m.row, m.col, m.kind, m.value, "
                         f"o.nsm, o.divergence{effects} FROM outcomes o JOIN mutations m USING (mutation_id) "
                         "ORDER BY o.mutation_id, o.probe_id",
                **{n: q for n, q in queries.items() if n.startswith("analysis_")},
            }
        directory = check_output_dir(directory, inputs=[self.path], what="export directory")
        targets = [check_output_file(directory / f"{name}.parquet") for name in queries]
        directory.mkdir(parents=True, exist_ok=True)
        for (name, query), target in zip(queries.items(), targets):
            tmp = target.with_name(f".{target.name}.tmp")
            escaped = str(tmp).replace("'", "''")
            try:
                self.con.execute(f"COPY ({query}) TO '{escaped}' (FORMAT PARQUET, COMPRESSION ZSTD)")
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        return targets

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "Results":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_results(path: str | os.PathLike) -> Results:
    """Open a screen's results file for reading."""
    return Results(path)
