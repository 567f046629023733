"""A results file opened read-only: every table as a pandas DataFrame, and Parquet export."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from ..errors import InputError, ResultsFileError
from ..files.outputs import atomic_file, check_output_dir, check_output_file
from .db import connect, existing_runs
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

    def export(self, directory: str | os.PathLike, compact: bool = False) -> list[Path]:
        """Write every table (phenotypes and analyses too) as Parquet into ``directory``.

        ``compact``: only what the statistics read, small enough to publish: ``tiles``
        (one row per mutation and probe: site, kind, value, the call, divergence step,
        margins and effect sizes, without output tokens or texts), ``runs``, ``probes``
        (without token arrays), ``predictions``, ``estimates`` (an adaptive screen's
        map) and every ``analysis_`` table.
        Each file is written beside its target and renamed into place (see
        :mod:`mutascope.files.outputs`); a DuckDB file in the way is refused.
        """
        queries = {name: f'SELECT * FROM "{name}" ORDER BY ALL' for name in self.table_names()}
        if compact:
            have = {
                r[0]
                for r in self.con.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = 'outcomes'"
                ).fetchall()
            }
            effects = "".join(f", o.{c}" for c in EFFECT_COLUMNS if c in have)
            queries = {
                "runs": "SELECT * FROM runs",
                "probes": "SELECT * EXCLUDE (prompt_tokens, wt_tokens) FROM probes ORDER BY position",
                "tiles": "SELECT o.mutation_id, o.probe_id, m.layer, m.matrix, m.row, m.col, m.kind, m.value, "
                f"o.nsm, o.divergence{effects} FROM outcomes o JOIN mutations m USING (mutation_id) "
                "ORDER BY o.mutation_id, o.probe_id",
                **{n: q for n, q in queries.items() if n.startswith("analysis_") or n in ("predictions", "estimates")},
            }
        directory = check_output_dir(directory, inputs=[self.path], what="export directory")
        targets = [check_output_file(directory / f"{name}.parquet") for name in queries]
        directory.mkdir(parents=True, exist_ok=True)
        stale = earlier_export(directory) - {t.name for t in targets}
        for (_name, query), target in zip(queries.items(), targets):
            tmp = target.with_name(f".{target.name}.tmp")
            escaped = str(tmp).replace("'", "''")
            try:
                self.con.execute(f"COPY ({query}) TO '{escaped}' (FORMAT PARQUET, COMPRESSION ZSTD)")
                os.replace(tmp, target)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        for name in sorted(stale):  # another screen's (or a fuller export's) tables: not this export's
            (directory / name).unlink(missing_ok=True)
        manifest = {
            "format": "mutascope-export/1",
            "source": Path(self.path).name,
            "compact": compact,
            "config_hash": str(self.runs["config_hash"].iloc[0]),
            "files": sorted(t.name for t in targets),
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


MANIFEST = "export.json"  # which files of an export directory the last export wrote
# Files an export wrote before exports had a manifest: the tables a results file can hold.
_EXPORTED = re.compile(
    r"^(runs|probes|mutations|outcomes|progress|fills|predictions|tiles|phenotypes|"
    r"choice_scores|phenotype_runs|analysis_\w+)\.parquet$"
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
