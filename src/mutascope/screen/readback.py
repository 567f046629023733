"""A screen read back from its results file: its probes and mutations as objects again.

Commands that continue a screen's work without its original command line
(``mutascope fill``) rebuild what the engine needs from what the file keeps:
the probes from the stored configuration, their prompt and WT tokens from
the ``probes`` table (both read by :mod:`mutascope.store.readback`), and the
mutations from the ``mutations`` table (:func:`mutascope.store.read_mutations`,
beside the code that writes it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from ..errors import ResultsFileError
from ..probes.chooser import TokenChooser
from ..probes.prepared import PreparedProbe
from ..probes.probe import Probe
from ..store.readback import probe_tokens, screened_model, stored_config

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


__all__ = ["check_model", "stored_config", "stored_probes"]


def stored_probes(con: duckdb.DuckDBPyConnection, vocab_size: int) -> list[PreparedProbe]:
    """The screen's probes, prepared as the engine needs them, in screen order."""
    config = stored_config(con)
    by_id = {d["id"]: Probe.from_dict(d) for d in config["probes"]}
    rows = probe_tokens(con)
    prepared = []
    for pid, prompt, wt in rows:
        probe = by_id[pid]
        prepared.append(
            PreparedProbe(
                probe=probe, prompt=tuple(prompt), chooser=TokenChooser(probe.decoding, vocab_size), wt_tokens=tuple(wt)
            )
        )
    return prepared


def check_model(con: duckdb.DuckDBPyConnection, subject: Subject, path) -> None:
    """The loaded model must be the screen's (same weights, same dtype): else a one-line error."""
    model_id, model_hash, dtype = screened_model(con)
    have = str(subject.dtype).replace("torch.", "")
    if have != dtype:
        raise ResultsFileError(f"{path} was screened in {dtype}; load the model with --dtype {dtype} (got {have})")
    if subject.content_hash() != model_hash:
        raise ResultsFileError(
            f"{path} was screened on {model_id} with weights {model_hash[:12]}..., "
            f"but the model loaded ({subject.model_id}) has different weights; pass the screen's model with --model"
        )
