"""The results store: one DuckDB file per screen, tidy tables, resumable.

The store owns persistence: every table is declared in :mod:`.schema` and
read or written through functions of these modules, the only ones that run
SQL, and every write runs inside :func:`.db.transaction`.

* :mod:`.schema`: the tables and their columns (schema 4), migration of older files;
* :mod:`.rows`: what engines hand the store (:class:`OutcomeRow`, :class:`ProbeRecord`);
* :mod:`.identity`: a screen's configuration hash, and refusing a file that
  holds another screen (:func:`check_target`);
* :mod:`.mutations`: the ``mutations`` table, written from a plan and read back;
* :mod:`.writer`: :class:`Store`, atomic chunk writes, fills, canonical phenotype ids;
* :mod:`.reader`: :class:`Results` (read-only DataFrames, Parquet export);
* :mod:`.zoom`: the ``zoom`` tables (``mutascope zoom``), read and written a level at a time;
* :mod:`.db`: DuckDB connections with one-line errors, :func:`transaction`, and
  :func:`write_tables`, which every analysis uses to keep its tables;
* one module per stage's reads and writes: :mod:`.readback` (a screen's run and
  probes), :mod:`.mutants` (mutants and outcomes looked up), :mod:`.phenotypes`,
  :mod:`.frame` (the site frame's rows), :mod:`.merge`, :mod:`.report`,
  :mod:`.superweights` (a super-weights file read back).
"""

from .db import check_tables_file, connect, existing_runs, open_error, replace_tables, transaction, write_tables
from .identity import check_target, config_hash
from .mutations import mutation_table, read_mutations
from .reader import Results, open_results
from .rows import MeasuredOutcomeRow, OutcomeRow, ProbeRecord, RunRecord
from .schema import EFFECT_COLUMNS, SCHEMA_VERSION, TABLES
from .writer import Store
from .zoom import ZOOM_COLUMNS, read_zoom

__all__ = [
    "EFFECT_COLUMNS",
    "SCHEMA_VERSION",
    "TABLES",
    "ZOOM_COLUMNS",
    "MeasuredOutcomeRow",
    "OutcomeRow",
    "ProbeRecord",
    "RunRecord",
    "Results",
    "Store",
    "check_tables_file",
    "check_target",
    "config_hash",
    "connect",
    "existing_runs",
    "mutation_table",
    "open_error",
    "open_results",
    "read_mutations",
    "read_zoom",
    "replace_tables",
    "transaction",
    "write_tables",
]
