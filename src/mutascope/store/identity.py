"""Which screen a results file holds: its configuration, hashed, and refusing another one.

The configuration stored in ``runs.config`` (and hashed) is the identity of a
screen: model id and content hash, dtype, device, plan spec, shard, probes
(with decoding) and end-of-sequence ids. :func:`check_target` compares a
configuration, whole or partial (what is known before the model loads), with
the file, touching nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..errors import InputError, ResultsFileError
from ..files.outputs import is_duckdb_file
from .db import connect, existing_runs


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


def read_config(path: Path) -> tuple[str, dict] | None:
    con = connect(path, read_only=True)
    try:
        n_tables = con.execute("SELECT count(*) FROM information_schema.tables").fetchone()[0]
        if n_tables == 0:
            return None  # an empty database (e.g. a creation that was rolled back): reuse it
        if existing_runs(con) == 0:
            raise ResultsFileError(f"{path} exists but holds no mutascope screen; choose another --out file")
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
            raise InputError(f"cannot create {path}: {path.parent} is not a directory")
        return
    if path.is_dir():
        raise InputError(f"{path} is a directory; give a file name for the results, e.g. {path / 'screen.duckdb'}")
    if path.stat().st_size and not is_duckdb_file(
        path
    ):  # DuckDB's own error here is "Cannot launch in-memory database"
        raise ResultsFileError(
            f"{path} is not a readable mutascope results file: it is not a DuckDB database "
            "(results files are); give a new --out file, e.g. runs/screen.duckdb"
        )
    existing = read_config(path)
    if existing is None:
        return
    full = set(config) >= {"model", "plan", "probes", "shard", "dtype", "device", "eos"}
    changed = _diff_keys(existing[1], config) if full else _partial_diff(existing[1], config)
    if (full and existing[0] != config_hash(config)) or changed:
        raise ResultsFileError(
            f"{path} holds a different screen (differs in: {', '.join(changed) or 'configuration'}); "
            "use a new --out file or rerun the original command to resume"
        )
