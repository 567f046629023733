"""A screen's run and probes read back from its results file, as plain values.

Commands that continue a screen's work without its original command line
(``mutascope fill``, ``zoom``, ``show``) rebuild what they need from these;
:mod:`mutascope.screen.readback` turns them into prepared probes and checks
the loaded model against the one the screen ran on.
"""

from __future__ import annotations

import json

import duckdb


def stored_config(con: duckdb.DuckDBPyConnection) -> dict:
    """The screen's configuration as stored in ``runs.config`` (its identity)."""
    return json.loads(con.execute("SELECT config FROM runs").fetchall()[0][0])


def screened_model(con: duckdb.DuckDBPyConnection) -> tuple[str, str, str]:
    """``(model_id, model_hash, dtype)`` of the model the screen ran on."""
    model_id, model_hash, dtype = con.execute("SELECT model_id, model_hash, dtype FROM runs").fetchall()[0]
    return model_id, model_hash, dtype


def tile_shape(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """The screen's tile, ``(height, width)``."""
    tile_h, tile_w = con.execute("SELECT tile_h, tile_w FROM runs").fetchall()[0]
    return tile_h, tile_w


def ordered_probe_ids(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The screen's probe ids, in screen order."""
    return [r[0] for r in con.execute("SELECT probe_id FROM probes ORDER BY position").fetchall()]


def probe_tokens(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """``(probe_id, prompt_tokens, wt_tokens)`` of each probe, in screen order."""
    return con.execute("SELECT probe_id, prompt_tokens, wt_tokens FROM probes ORDER BY position").fetchall()


def wt_texts(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each probe's WT output text, by probe id."""
    return dict(con.execute("SELECT probe_id, wt_text FROM probes").fetchall())
