"""The results file's schema: its tables, their columns, and migration of older files.

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
* ``fills``     one row per committed chunk of ``mutascope fill``;
* ``predictions`` (only once ``mutascope predict`` or ``screen --order predicted``
                has run) one row per (mutation, probe), keyed like ``outcomes``:
                the first-order predicted ``logprob_drop``, the local one (exact
                through the mutated block's first nonlinearity; schema 4) and the
                cheap scores of docs/methods.md, "Predicted maps";
* ``estimates`` (only after ``screen --order adaptive``; :data:`ESTIMATES_DDL`) one row
                per (mutation, probe), keyed like ``outcomes``: every mutant's effect
                (``logprob_drop``), measured or estimated by the surrogate, its 95 %
                interval (``low``, ``high``; equal to the effect where measured) and
                its ``source`` (``measured`` or ``estimated``); replaced whole at the
                end of each adaptive run, and read by no statistic;
                ``adaptive_settings`` the seed, audit size and chunk size that fix
                the rounds, and the audit as drawn for the first run's budget (its
                chunks and mutants; a budget under the audit caps it); a resume
                with settings that would choose other rounds, or in another order,
                is refused;
* ``phenotypes``, ``choice_scores``, ``phenotype_runs`` (only once ``mutascope
                phenotype`` has run; :data:`PHENOTYPE_DDL`): each outcome's phenotype,
                each mutant's score on each multiple-choice set, and the run that
                computed them (:mod:`mutascope.phenotype.store` says what they mean);
* ``zoom``      (only once ``mutascope zoom`` has run) one row per region and probe
                of a zoomed site: the region in weights (``row``, ``col`` its first
                element, ``height``, ``width``), its ``level`` and ``parent`` in the
                refinement, the kind, the NSM call and ``logprob_drop``, and whether
                the refinement ``followed`` it; ``zoom_settings`` the rule each
                (site, kind) was zoomed with (docs/methods.md, "Zoom").

Files of an older schema open everywhere and are migrated (:func:`migrate`)
before a command writes to them.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from .db import transaction
from .rows import EFFECT_FIELDS

SCHEMA_VERSION = 4  # 2: outcomes.filled (calls-only screens) and the fills table; 3: probes.wt_logprob;
# 4: predictions.local
# Measurements an engine may report beside the NSM call (the batched engine's
# teacher-forced pass does; the reference engine leaves them null): the fields of
# MeasuredOutcomeRow, with their Arrow types (an annotation without one fails at import).
_ARROW = {"float": pa.float64(), "float | None": pa.float64(), "bool": pa.bool_()}
EFFECT_COLUMNS = {name: _ARROW[annotation] for name, annotation in EFFECT_FIELDS}
TABLES = ("runs", "probes", "mutations", "outcomes", "progress", "fills")  # every screen has these
UNGROUPED = "choice"  # the set name of choice probes that name no group (``probes.probe_group`` null)

SCREEN_DDL = """
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
FILLS_DDL = """
CREATE TABLE IF NOT EXISTS fills (
    first_mutation_id INTEGER, last_mutation_id INTEGER, n_outcomes INTEGER,
    engine VARCHAR, seconds DOUBLE, finished_at TIMESTAMP DEFAULT current_timestamp
);
"""
# An adaptive screen's optional tables (docs/adaptive.md), created when first written.
ESTIMATES_DDL = """
CREATE TABLE IF NOT EXISTS estimates (
    mutation_id INTEGER, probe_id VARCHAR, effect DOUBLE, low DOUBLE, high DOUBLE, source VARCHAR,
    PRIMARY KEY (mutation_id, probe_id)
);
CREATE TABLE IF NOT EXISTS adaptive_settings (
    seed BIGINT, audit INTEGER, chunk_size INTEGER, budget BIGINT, audit_chunks INTEGER, audit_mutants INTEGER
);
"""

# An optional table (a screen needs none): created when predictions are first written.
PREDICTIONS_DDL = """
CREATE TABLE IF NOT EXISTS predictions (
    mutation_id INTEGER, probe_id VARCHAR, predicted DOUBLE, "local" DOUBLE, magnitude DOUBLE, change DOUBLE,
    wanda DOUBLE, activation DOUBLE, superweight DOUBLE,
    PRIMARY KEY (mutation_id, probe_id)
);
"""

# Optional tables (a screen needs neither): created when `mutascope zoom` first writes.
ZOOM_DDL = """
CREATE TABLE IF NOT EXISTS zoom_settings (
    site VARCHAR, kind VARCHAR, share DOUBLE, beam INTEGER, floor INTEGER,
    PRIMARY KEY (site, kind)
);
CREATE TABLE IF NOT EXISTS zoom (
    site VARCHAR, layer INTEGER, matrix VARCHAR, "row" INTEGER, col INTEGER, height INTEGER, width INTEGER,
    level INTEGER, parent VARCHAR, kind VARCHAR, probe_id VARCHAR, nsm BOOLEAN, logprob_drop DOUBLE,
    followed BOOLEAN,
    PRIMARY KEY (site, kind, probe_id, "row", col, height, width)
);
"""

# Optional tables (a screen needs none): rebuilt whole by each `mutascope phenotype`.
PHENOTYPE_TABLES = ("phenotypes", "choice_scores", "phenotype_runs")
PHENOTYPE_DDL = """
CREATE TABLE phenotypes (
    mutation_id INTEGER, probe_id VARCHAR,
    similarity DOUBLE, severity VARCHAR, edit_distance INTEGER,
    category VARCHAR, first_word VARCHAR,
    answer VARCHAR, correct BOOLEAN, malignant BOOLEAN,
    PRIMARY KEY (mutation_id, probe_id)
);
CREATE TABLE choice_scores (
    mutation_id INTEGER, probe_group VARCHAR, n_questions INTEGER,
    answers VARCHAR, wt_answers VARCHAR, correct_right INTEGER, correct_wrong INTEGER,
    score VARCHAR, total INTEGER, changed BOOLEAN, nsm BOOLEAN,
    PRIMARY KEY (mutation_id, probe_group)
);
CREATE TABLE phenotype_runs (
    embedding_model VARCHAR, batch_size INTEGER, n_outcomes INTEGER, n_distinct INTEGER,
    n_embedded INTEGER, mutascope_version VARCHAR, seconds DOUBLE,
    computed_at TIMESTAMP DEFAULT current_timestamp
);
"""


def create(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables and keys of a fresh results file (inside the caller's transaction)."""
    con.execute(SCREEN_DDL)
    con.execute(FILLS_DDL)


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Bring a file written by an older mutascope up to :data:`SCHEMA_VERSION` (before writing to it).

    Version 1 files lack ``outcomes.filled`` (every output there is complete)
    and the ``fills`` table; versions 1 and 2 lack ``probes.wt_logprob`` (null
    until a command that loads the model records it: a resumed screen, ``fill``); versions 1-3
    lack ``predictions.local`` (added null where the table exists: the stored scores are kept
    as they are, and ``mutascope predict`` or a screen in predicted order fills only the
    null ``local`` values, :meth:`~.writer.Store.write_predictions`).
    """
    version = con.execute("SELECT max(schema_version) FROM runs").fetchall()[0][0]
    if version is not None and version >= SCHEMA_VERSION:
        return
    with transaction(con):
        con.execute("ALTER TABLE outcomes ADD COLUMN IF NOT EXISTS filled BOOLEAN DEFAULT true")
        con.execute(FILLS_DDL)
        con.execute("ALTER TABLE probes ADD COLUMN IF NOT EXISTS wt_logprob DOUBLE")
        if con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'predictions' "
            "AND table_catalog = current_database()"
        ).fetchall()[0][0]:
            con.execute('ALTER TABLE predictions ADD COLUMN IF NOT EXISTS "local" DOUBLE')
        con.execute("UPDATE runs SET schema_version = ?", [SCHEMA_VERSION])
