"""The site frame every analysis starts from, and per-matrix tile maps.

Columns: ``probe_id, layer, matrix, row, col, kind, value, mutation_id, nsm,
effect, effect_per_token, filled`` plus, when ``mutascope phenotype`` has run, ``similarity, severity,
category, first_word`` (text probes).

* ``nsm`` is the paper's binary call (the output tokens differ from WT's);
* ``effect`` is the continuous readout: by default ``logprob_drop``, the
  drop in log-probability of the WT output under the mutant (teacher-forced,
  summed over the WT tokens). It is null where the screen did not measure it
  (the reference engine, files written before effect sizes existed);
  ``effect_per_token`` is the same divided by the WT output's length, so
  probes (or screens) of different lengths can be set side by side;
* ``filled`` says whether the outcome's output is stored: an NSM of a
  calls-only screen (``--outputs calls``) has its call and effect but no
  output until ``mutascope fill``. Files of schema version 1 have no
  ``filled`` column, so it is read as ``output_tokens IS NOT NULL``, which
  means the same in every version.

A multiple-choice *set* (e.g. MMLU21) counts as one probe whose NSM is "any
answer changed", as in the paper; its effect is the sum over its questions
(null unless every question has one) and it is filled when every question is.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ..errors import InputError

PHENOTYPE_COLUMNS = ("similarity", "severity", "category", "first_word")
UNGROUPED = "choice"  # the set name of choice probes that name no group (as in the phenotype tables)
# outcome columns that can serve as the continuous readout (both additive over tokens and questions)
EFFECT_CHOICES = ("logprob_drop", "logprob_drop_per_token")
DEFAULT_EFFECT = "logprob_drop"


def _has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return (
        con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchall()[0][0] > 0
    )


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
        ).fetchall()
    }


def phenotype_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The phenotype columns this file has (none before ``mutascope phenotype`` ran)."""
    if not _has_table(con, "phenotypes"):
        return []
    have = _columns(con, "phenotypes")
    return [c for c in PHENOTYPE_COLUMNS if c in have]


def check_effect(effect: str) -> str:
    """``effect`` if it names a continuous readout, else a one-line error."""
    if effect not in EFFECT_CHOICES:
        raise InputError(f"effect {effect!r} is not an effect-size column; use one of {', '.join(EFFECT_CHOICES)}")
    return effect


def effect_sql(con: duckdb.DuckDBPyConnection, effect: str = DEFAULT_EFFECT) -> str:
    """SQL for the effect of outcome ``o`` (NULL in files that predate effect sizes)."""
    check_effect(effect)
    return f"o.{effect}" if effect in _columns(con, "outcomes") else "CAST(NULL AS DOUBLE)"


def site_frame(results, effect: str = DEFAULT_EFFECT) -> pd.DataFrame:
    """The site frame of an open :class:`~mutascope.store.Results` (or a DuckDB connection).

    Built in SQL without output texts or tokens: a full-genome screen has
    millions of outcome rows, and no analysis needs their texts (phenotype
    columns carry what they need).
    """
    con = getattr(results, "con", results)
    eff = effect_sql(con, effect)
    per_token = effect_sql(con, "logprob_drop_per_token")
    summed = effect_sql(con, "logprob_drop")
    ph = phenotype_columns(con)
    ph_select = "".join(f", f.{c}" for c in ph)
    ph_join = "LEFT JOIN phenotypes f ON f.mutation_id = o.mutation_id AND f.probe_id = o.probe_id" if ph else ""
    text = con.execute(
        f"SELECT o.probe_id, m.layer, m.matrix, m.row, m.col, m.kind, m.value, o.mutation_id, o.nsm, "
        f"{eff} AS effect, {per_token} AS effect_per_token, o.output_tokens IS NOT NULL AS filled{ph_select} "
        f"FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) {ph_join} "
        "WHERE p.kind <> 'choice' ORDER BY o.mutation_id, p.position"
    ).df()
    sets = con.execute(
        f"SELECT coalesce(p.probe_group, '{UNGROUPED}') AS probe_id, m.layer, m.matrix, m.row, m.col, m.kind, "
        f"m.value, o.mutation_id, bool_or(o.nsm) AS nsm, "
        f"CASE WHEN count({eff}) = count(*) THEN sum({eff}) END AS effect, "
        f"CASE WHEN count({per_token}) = count(*) THEN sum({summed}) / sum(len(p.wt_tokens)) END "
        "AS effect_per_token, "
        "bool_and(o.output_tokens IS NOT NULL) AS filled "
        "FROM outcomes o JOIN mutations m USING (mutation_id) JOIN probes p USING (probe_id) "
        "WHERE p.kind = 'choice' GROUP BY ALL ORDER BY o.mutation_id, probe_id"
    ).df()
    if sets.empty:
        frame = text
    elif text.empty:
        frame = sets
    else:
        frame = pd.concat([text, sets], ignore_index=True)
    frame["nsm"] = frame["nsm"].astype(bool)
    frame["filled"] = frame["filled"].astype(bool)
    frame["effect"] = frame["effect"].astype(float)
    frame["effect_per_token"] = frame["effect_per_token"].astype(float)
    return frame.reset_index(drop=True)


def probe_context(results) -> pd.DataFrame:
    """Per probe of the site frame (a multiple-choice set as one): the length of its WT
    output (``new_tokens``, summed over a set's questions) and the WT output's own
    log-likelihood under the unmutated model (``wt_logprob``; null in files written
    before it was recorded). Effect sizes of probes with different lengths or
    likelihoods are not on one scale: the tables carry these beside their effects."""
    con = getattr(results, "con", results)
    wt = "p.wt_logprob" if "wt_logprob" in _columns(con, "probes") else "CAST(NULL AS DOUBLE)"
    return (
        con.execute(
            f"SELECT CASE WHEN p.kind = 'choice' THEN coalesce(p.probe_group, '{UNGROUPED}') ELSE p.probe_id END "
            f"AS probe_id, sum(len(p.wt_tokens)) AS new_tokens, "
            f"CASE WHEN count({wt}) = count(*) THEN sum({wt}) END AS wt_logprob, min(p.position) AS _pos "
            "FROM probes p GROUP BY 1 ORDER BY _pos"
        )
        .df()
        .drop(columns="_pos")
    )


def tile_map(
    frame: pd.DataFrame, value: str = "nsm", rows: pd.Index | None = None, cols: pd.Index | None = None
) -> tuple[np.ndarray, pd.Index, pd.Index]:
    """A 2-D array (tile rows x tile cols) of ``value`` for one matrix, probe and kind.

    Tiles without a mutation are NaN. ``rows``/``cols`` fix the labels (so maps
    of two kinds line up); by default the ones present. Returns the array and labels.
    """
    rows = pd.Index(sorted(frame["row"].unique())) if rows is None else rows
    cols = pd.Index(sorted(frame["col"].unique())) if cols is None else cols
    grid = np.full((len(rows), len(cols)), np.nan)
    grid[rows.get_indexer(frame["row"]), cols.get_indexer(frame["col"])] = frame[value].astype(float).to_numpy()
    return grid, rows, cols
