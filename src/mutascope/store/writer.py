"""Writing a screen's results file: one DuckDB file per screen, tidy tables, resumable.

The tables are described in :mod:`.schema`.

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

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from ..errors import ResultsFileError
from ..plan.mutation import Mutation
from .db import connect, existing_runs, insert, transaction
from .identity import check_target, config_hash
from .mutations import mutation_table
from .reader import Results
from .rows import OutcomeRow, ProbeRecord, RunRecord
from .schema import EFFECT_COLUMNS, PREDICTIONS_DDL, SCHEMA_VERSION, create, migrate

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
        run: RunRecord,
        probes: Sequence[ProbeRecord],
        mutations: Sequence[Mutation],
    ) -> Store:
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
                store._load_phenotypes()  # the new file's WT outputs (a reopened file's were loaded by cls())
            else:
                migrate(con)
                store = cls(path, con)
                store._check_probes(probes)
                store._check_mutations(mutations)
                store.record_wt_logprobs({p.probe_id: p.wt_logprob for p in probes})
        except BaseException:
            con.close()
            raise
        return store

    @classmethod
    def open_existing(cls, path: str | os.PathLike) -> Store:
        """Open a results file that holds a screen for writing (``mutascope fill``, ``merge``)."""
        path = Path(path)
        Results(path).close()  # one-line errors for a missing, foreign or locked file
        con = connect(path)
        try:
            migrate(con)
            return cls(path, con)
        except BaseException:
            con.close()
            raise

    def _create(
        self, config: dict, digest: str, run: RunRecord, probes: Sequence[ProbeRecord], mutations: Sequence[Mutation]
    ) -> None:
        con = self.con
        with transaction(con):
            create(con)
            con.execute(
                "INSERT INTO runs (schema_version, config_hash, config, model_id, model_hash, dtype, device,"
                " decoding, tile_h, tile_w, n_mutations, shard, versions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [
                    SCHEMA_VERSION,
                    digest,
                    json.dumps(config, sort_keys=True),
                    run.model_id,
                    run.model_hash,
                    run.dtype,
                    run.device,
                    run.decoding,
                    run.tile[0],
                    run.tile[1],
                    len(mutations),
                    run.shard,
                    json.dumps(run.versions, sort_keys=True),
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
            insert(con, "probes", probe_table)
            insert(con, "mutations", mutation_table(mutations))

    def _check_probes(self, probes: Sequence[ProbeRecord]) -> None:
        """On resume, the WT outputs must be what they were (same model, same decoding)."""
        stored = {
            pid: tuple(tokens) for pid, tokens in self.con.execute("SELECT probe_id, wt_tokens FROM probes").fetchall()
        }
        for p in probes:
            if stored.get(p.probe_id) != tuple(p.wt_tokens):
                raise ResultsFileError(
                    f"{self.path}: the wild-type output of probe {p.probe_id!r} differs from the stored one; "
                    "the model or its numerics changed, so this screen cannot be resumed here"
                )

    def _check_mutations(self, mutations: Sequence[Mutation]) -> None:
        """On resume, the plan (or shard) must hold exactly the stored mutations."""
        n, lo, hi = self.con.execute("SELECT count(*), min(mutation_id), max(mutation_id) FROM mutations").fetchall()[0]
        ids = [m.mutation_id for m in mutations]
        if (n, lo, hi) != (len(ids), min(ids, default=None), max(ids, default=None)):
            raise ResultsFileError(
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
        with transaction(con):
            for probe_id, value in values.items():
                con.execute(
                    "UPDATE probes SET wt_logprob = ? WHERE probe_id = ? AND wt_logprob IS NULL", [value, probe_id]
                )

    def restore_probe_tokens(self, tokens: dict[str, tuple[Sequence[int], Sequence[int]]]) -> int:
        """Store ``{probe_id: (prompt_tokens, wt_tokens)}`` where a probe has none (a screen replayed
        from a compact export, which keeps no token arrays), and the WT output on its silent rows,
        whose output the replay stored empty. A probe that has tokens is never changed. One
        transaction; returns the number of probes restored."""
        con = self.con
        empty = {
            pid for pid, prompt in con.execute("SELECT probe_id, prompt_tokens FROM probes").fetchall() if not prompt
        }
        chosen = {pid: v for pid, v in tokens.items() if pid in empty}
        with transaction(con):
            for pid, (prompt, wt) in chosen.items():
                con.execute(
                    "UPDATE probes SET prompt_tokens = ?, wt_tokens = ? WHERE probe_id = ?",
                    [list(prompt), list(wt), pid],
                )
                con.execute(
                    "UPDATE outcomes SET output_tokens = ? WHERE probe_id = ? AND divergence IS NULL "
                    "AND len(output_tokens) = 0",
                    [list(wt), pid],
                )
        if chosen:
            self._load_phenotypes()
        return len(chosen)

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

    # -- predictions -----------------------------------------------------
    def predicted_mutations(self) -> set[int]:
        """Ids of mutations whose predictions are complete (none in a file without the table): stored,
        and with the ``local`` estimate wherever they have a first-order one (a file predicted before
        schema 4 lacks it)."""
        if not self.has_predictions():
            return set()
        return {
            r[0]
            for r in self.con.execute(
                "SELECT mutation_id FROM predictions GROUP BY mutation_id "
                "HAVING count(*) FILTER (WHERE local IS NULL AND predicted IS NOT NULL) = 0"
            ).fetchall()
        }

    def has_predictions(self) -> bool:
        """Whether the file has a predictions table."""
        return (
            self.con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'predictions'"
            ).fetchall()[0][0]
            > 0
        )

    def write_predictions(self, frame: pd.DataFrame) -> int:
        """Add predictions of mutations that have none, and the ``local`` estimate where a stored row
        lacks it (a file predicted before schema 4), all or nothing; returns the rows added or completed.

        Predictions are a deterministic function of the screen's configuration,
        so values already stored are kept, never replaced: a stored row only
        gains a ``local`` value where it has none. Every row must name a
        mutation and a probe of this file.
        """
        missing = set(frame["mutation_id"]) - {
            r[0] for r in self.con.execute("SELECT mutation_id FROM mutations").fetchall()
        }
        unknown = set(frame["probe_id"]) - {r[0] for r in self.con.execute("SELECT probe_id FROM probes").fetchall()}
        if missing or unknown:
            raise ResultsFileError(f"{self.path}: predictions of mutations or probes this screen does not have")
        stored = set()
        if self.has_predictions():
            stored = {r[0] for r in self.con.execute("SELECT DISTINCT mutation_id FROM predictions").fetchall()}
        fresh = frame[~frame["mutation_id"].isin(stored)]
        known = frame[frame["mutation_id"].isin(stored)][["mutation_id", "probe_id", "local"]]
        if fresh.empty and known.empty:
            return 0
        con = self.con
        with transaction(con):
            con.execute(PREDICTIONS_DDL)
            added = len(fresh)
            if added:
                con.register("_predictions", fresh.astype({"mutation_id": "int32", "superweight": "float64"}))
                con.execute("INSERT INTO predictions BY NAME SELECT * FROM _predictions")
                con.unregister("_predictions")
            if len(known):
                con.register("_local", known.astype({"mutation_id": "int32", "local": "float64"}))
                before = con.execute("SELECT count(*) FROM predictions WHERE local IS NULL").fetchall()[0][0]
                con.execute(
                    "UPDATE predictions SET local = l.local FROM _local l WHERE predictions.local IS NULL "
                    "AND predictions.mutation_id = l.mutation_id AND predictions.probe_id = l.probe_id"
                ).fetchall()
                added += before - con.execute("SELECT count(*) FROM predictions WHERE local IS NULL").fetchall()[0][0]
                con.unregister("_local")
        return added

    def fill_superweight_marks(self, marks: dict[int, float]) -> int:
        """Set the ``superweight`` score of stored predictions where it is NULL (predictions
        written without ``--superweights``); a mark already stored is kept. Returns rows set."""
        if not self.has_predictions() or not marks:
            return 0
        con = self.con
        frame = pd.DataFrame({"mutation_id": list(marks), "mark": list(marks.values())})
        with transaction(con):
            con.register("_marks", frame.astype({"mutation_id": "int32", "mark": "float64"}))
            n = con.execute(
                "UPDATE predictions SET superweight = _marks.mark FROM _marks "
                "WHERE predictions.mutation_id = _marks.mutation_id AND predictions.superweight IS NULL "
                "RETURNING 1"
            ).fetchall()
            con.unregister("_marks")
        return len(n)

    def read_predictions(self) -> pd.DataFrame | None:
        """The predictions table in plan order (None in a file without one)."""
        if not self.has_predictions():
            return None
        return self.con.execute("SELECT * FROM predictions ORDER BY mutation_id, probe_id").df()

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
                    [None if o.tokens is None else list(o.tokens) for o in outcomes], pa.list_(pa.int32())
                ),
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
        with transaction(con):
            insert(con, "outcomes", table)
            con.execute(
                "INSERT INTO progress (first_mutation_id, last_mutation_id, n_mutations, engine, seconds)"
                " VALUES (?,?,?,?,?)",
                [min(ids), max(ids), len(set(ids)), engine, seconds],
            )
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
        with transaction(con):
            con.register("_filled", table)
            n = con.execute(
                "UPDATE outcomes SET output_tokens = f.output_tokens, output_text = f.output_text, "
                "phenotype_id = f.phenotype_id, filled = true FROM _filled f "
                "WHERE outcomes.mutation_id = f.mutation_id AND outcomes.probe_id = f.probe_id "
                "AND NOT outcomes.filled"
            ).fetchall()[0][0]
            con.unregister("_filled")
            ids = [o.mutation_id for o in outcomes]
            con.execute(
                "INSERT INTO fills (first_mutation_id, last_mutation_id, n_outcomes, engine, seconds)"
                " VALUES (?,?,?,?,?)",
                [min(ids), max(ids), int(n), engine, seconds],
            )
        for pid, new in pending.items():
            self._phenotypes[pid].update(new)
        return int(n)

    def renumber_phenotypes(self) -> int:
        """Give every output its canonical phenotype id (plan order; module docstring).

        One transaction; returns the number of rows whose id changed (0 when
        rows were committed in plan order).
        """
        con = self.con
        with transaction(con):
            changed = con.execute(_RENUMBER).fetchall()[0][0]
        self._load_phenotypes()
        return int(changed)

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
