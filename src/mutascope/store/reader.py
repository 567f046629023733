"""A results file opened read-only: every table as a pandas DataFrame, and Parquet export."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import InputError, ResultsFileError
from ..files.outputs import atomic_file, check_output_dir, check_output_file
from .db import connect, existing_runs, table_columns
from .phenotypes import phenotype_columns
from .schema import EFFECT_COLUMNS, TABLES


class Results:
    """A results file opened read-only; each table as a pandas DataFrame."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"results file not found: {self.path}")
        self.con = connect(self.path, read_only=True)
        if existing_runs(self.con) == 0:
            self.con.close()
            raise ResultsFileError(f"{self.path} holds no mutascope screen")

    def table_names(self) -> list[str]:
        """Every table in the file: the screen's, then phenotypes and analyses if computed."""
        names = [
            r[0]
            for r in self.con.execute("SELECT table_name FROM information_schema.tables ORDER BY table_name").fetchall()
        ]
        return [t for t in TABLES if t in names] + [t for t in names if t not in TABLES]

    def table(self, name: str) -> pd.DataFrame:
        names = self.table_names()
        if name not in names:
            raise InputError(f"unknown table {name!r}: choose from {', '.join(names)}")
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
    def predictions(self) -> pd.DataFrame | None:
        """The predictions table (``mutascope predict``), or None where the file has none."""
        if "predictions" not in self.table_names():
            return None
        return self.con.execute(
            "SELECT x.* FROM predictions x JOIN probes p USING (probe_id) ORDER BY x.mutation_id, p.position"
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

    def export(
        self,
        directory: str | os.PathLike,
        compact: bool = False,
        *,
        control: str | os.PathLike | None = None,
        only: Sequence[str] = (),
    ) -> list[Path]:
        """Write every table (phenotypes and analyses too) as Parquet into ``directory``.

        ``compact``: only what the statistics read, small enough to publish: ``tiles``
        (one row per mutation and probe: site, kind, value, the call, divergence step,
        margins and effect sizes, without output tokens or texts), ``runs``, ``probes``
        (without token arrays), ``predictions``, ``estimates`` (an adaptive screen's
        map), every ``analysis_`` table, and ``outputs``: the filled NSMs' output texts with
        their first word and category where phenotypes were computed (what the writers
        statistic groups by; absent when no NSM is filled, as in a calls-only screen).
        ``control`` (compact only): another results file of the same model, probes and tile,
        such as the size-matched control screen, whose per-tile rows go to ``control_tiles``
        (the ``tiles`` columns), so that the tests against the control can be rerun from the
        export. ``only``: write just these tables and leave the directory's other files alone
        (to add a table to a published export without rewriting it).
        Each file is written beside its target and renamed into place (see
        :mod:`mutascope.files.outputs`); a DuckDB file in the way is refused.
        """
        if control is not None and not compact:
            raise InputError("--control adds the control's tiles to a compact export: add --compact")
        queries = {name: (self.con, f'SELECT * FROM "{name}" ORDER BY ALL') for name in self.table_names()}
        opened: list[Results] = []
        if compact:
            queries = {
                "runs": (self.con, "SELECT * FROM runs"),
                "probes": (self.con, "SELECT * EXCLUDE (prompt_tokens, wt_tokens) FROM probes ORDER BY position"),
                "tiles": (self.con, _tiles_query(self.con)),
                **{n: q for n, q in queries.items() if n.startswith("analysis_") or n in ("predictions", "estimates")},
            }
            texts = _outputs_query(self.con)
            if texts is not None:
                queries["outputs"] = (self.con, texts)
            if control is not None:
                other = Results(control)
                opened.append(other)
                self._check_control(other)
                queries["control_tiles"] = (other.con, _tiles_query(other.con))
        try:
            return self._write(directory, queries, compact, only)
        finally:
            for r in opened:
                r.close()

    def _check_control(self, other: Results) -> None:
        """A control must be a screen of the same model, probes and tile (one line otherwise)."""
        what = f"--control {other.path}"
        mine, theirs = self.runs.iloc[0], other.runs.iloc[0]
        if str(mine["model_hash"]) != str(theirs["model_hash"]) or str(mine["dtype"]) != str(theirs["dtype"]):
            raise InputError(f"{what} was screened on another model ({theirs['model_id']}, {theirs['dtype']})")
        if (int(mine["tile_h"]), int(mine["tile_w"])) != (int(theirs["tile_h"]), int(theirs["tile_w"])):
            raise InputError(
                f"{what} has tile {theirs['tile_h']}x{theirs['tile_w']}, not {mine['tile_h']}x{mine['tile_w']}"
            )
        a = self.probes[["probe_id", "text", "wt_text"]].to_dict("records")
        b = other.probes[["probe_id", "text", "wt_text"]].to_dict("records")
        if a != b:
            raise InputError(f"{what} has other probes ({', '.join(other.probes['probe_id'])}) or other WT outputs")

    def _write(self, directory, queries: dict, compact: bool, only: Sequence[str]) -> list[Path]:
        if only:
            unknown = [n for n in only if n not in queries]
            if unknown:
                raise InputError(
                    f"--only {unknown[0]}: this export has no such table; choose from {', '.join(queries)}"
                )
            queries = {n: q for n, q in queries.items() if n in only}
        directory = check_output_dir(directory, inputs=[self.path], what="export directory")
        targets = [check_output_file(directory / f"{name}.parquet") for name in queries]
        directory.mkdir(parents=True, exist_ok=True)
        stale = set() if only else earlier_export(directory) - {t.name for t in targets}
        for (con, query), target in zip(queries.values(), targets):
            tmp = target.with_name(f".{target.name}.tmp")
            escaped = str(tmp).replace("'", "''")
            try:
                con.execute(f"COPY ({query}) TO '{escaped}' (FORMAT PARQUET, COMPRESSION ZSTD)")
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        for name in sorted(stale):  # another screen's (or a fuller export's) tables: not this export's
            (directory / name).unlink(missing_ok=True)
        files = {t.name for t in targets}
        if only:  # the files this export wrote before stay listed
            files |= earlier_export(directory)
        manifest = {
            "format": "mutascope-export/1",
            "source": Path(self.path).name,
            "compact": compact,
            "config_hash": str(self.runs["config_hash"].iloc[0]),
            "files": sorted(files),
        }
        with atomic_file(directory / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=1)
        return targets

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Results:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _tiles_query(con) -> str:
    """The compact per-tile table of a results file: one row per mutation and probe, no outputs."""
    have = set(table_columns(con, "outcomes"))
    effects = "".join(f", o.{c}" for c in EFFECT_COLUMNS if c in have)
    return (
        "SELECT o.mutation_id, o.probe_id, m.layer, m.matrix, m.row, m.col, m.kind, m.value, "
        f"o.nsm, o.divergence{effects} FROM outcomes o JOIN mutations m USING (mutation_id) "
        "ORDER BY o.mutation_id, o.probe_id"
    )


def _outputs_query(con) -> str | None:
    """The filled NSMs' output texts, with the phenotype columns the writers statistic reads
    (first word, category) and the similarity to WT where computed; None where none is filled."""
    if not con.execute("SELECT count(*) FROM outcomes WHERE nsm AND output_text IS NOT NULL").fetchall()[0][0]:
        return None
    ph = [c for c in ("first_word", "category", "similarity", "severity") if c in phenotype_columns(con)]
    select = "".join(f", f.{c}" for c in ph)
    join = "LEFT JOIN phenotypes f ON f.mutation_id = o.mutation_id AND f.probe_id = o.probe_id" if ph else ""
    return (
        f"SELECT o.mutation_id, o.probe_id, o.output_text{select} FROM outcomes o {join} "
        "WHERE o.nsm AND o.output_text IS NOT NULL ORDER BY o.mutation_id, o.probe_id"
    )


MANIFEST = "export.json"  # which files of an export directory the last export wrote
# Files an export wrote before exports had a manifest: the tables a results file can hold.
_EXPORTED = re.compile(
    r"^(runs|probes|mutations|outcomes|progress|fills|predictions|tiles|phenotypes|"
    r"choice_scores|phenotype_runs|outputs|control_tiles|analysis_\w+)\.parquet$"
)


def earlier_export(directory: Path) -> set[str]:
    """The file names an earlier export left in ``directory``, which a new export replaces as a
    whole (so the directory holds exactly one screen's export): those its manifest lists, or,
    without a manifest, the Parquet files named after a results file's tables. Any other file
    is the user's and is never touched."""
    listed: set[str] = set()
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        listed = {str(n) for n in manifest.get("files", []) if isinstance(n, str) and "/" not in n}
    except (OSError, ValueError, AttributeError):
        pass
    named = {p.name for p in directory.glob("*.parquet") if _EXPORTED.match(p.name)}
    return {n for n in listed | named if n.endswith(".parquet") and (directory / n).is_file()}


def open_results(path: str | os.PathLike) -> Results:
    """Open a screen's results file for reading."""
    return Results(path)
