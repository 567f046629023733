"""Results of a super-weight run as DuckDB tables.

Tables (replaced on every run, so a file holds one run's results):

* ``superweight_runs``  model id and hash, settings;
* ``superweights``      one row per super weight (``kind='creator'``) and per
                        canceller found (``kind='canceller'``, not ablated);
* ``superactivations``  one row per super activation and later layer, with its
                        magnitude there (long format, ready to plot);
* ``ablations``         one row per ablation (perplexity, accuracy, stopwords);
* ``quantization``      one row per quantization variant.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..store import write_tables

from mutascope.subject import Subject

from .detect import Detection
from .proof import Measurement

TABLES = ("superweight_runs", "superweights", "superactivations", "ablations", "quantization")


def _measurements(rows: list[Measurement]) -> pd.DataFrame:
    records = []
    for m in rows:
        r = dict(name=m.name, detail=m.detail, perplexity=m.perplexity, accuracy=m.accuracy, n_changed=m.n_changed)
        for word, p in m.stopwords.items():
            r[f"p_{word.strip() or 'space'}"] = p
        records.append(r)
    return pd.DataFrame.from_records(records)


def frames(subject: Subject, detection: Detection, ablations=None, quantization=None, settings=None) -> dict[str, pd.DataFrame]:
    """Every table as a DataFrame (empty tables keep their columns)."""
    sw_cols = ["kind", "layer", "module_path", "param_name", "row", "col", "value", "rank",
               "input_spike", "output_spike", "text_index", "token", "iteration"]
    sw = [dict(kind="creator", **asdict(w)) for w in detection.weights]
    sw += [dict(kind="canceller", **asdict(w)) for w in detection.cancellers]
    acts = [
        dict(channel=a.channel, first_layer=a.layer, layer=a.layer + i, magnitude=m,
             value=a.value, text_index=a.text_index, token=a.token, iteration=a.iteration)
        for a in detection.activations
        for i, m in enumerate(a.magnitudes)
    ]
    act_cols = ["channel", "first_layer", "layer", "magnitude", "value", "text_index", "token", "iteration"]
    run = dict(
        model_id=subject.model_id, content_hash=subject.content_hash(), family=subject.anatomy.family,
        dtype=str(subject.dtype).removeprefix("torch."), threshold=detection.threshold,
        relative=detection.relative, weight_z=detection.weight_z, iterations=detection.iterations,
        settings=json.dumps(settings or {}, default=str),
    )
    out = {
        "superweight_runs": pd.DataFrame([run]),
        "superweights": pd.DataFrame(sw, columns=sw_cols),
        "superactivations": pd.DataFrame(acts, columns=act_cols),
    }
    if ablations is not None:
        out["ablations"] = _measurements(ablations)
    if quantization is not None:
        out["quantization"] = _measurements(quantization)
    return out


def write_results(path: str | os.PathLike, tables: dict[str, pd.DataFrame]) -> Path:
    """Write ``tables`` into the DuckDB file at ``path`` (created if needed), replacing them."""
    return write_tables(path, tables)
