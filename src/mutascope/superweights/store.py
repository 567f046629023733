"""Results of a super-weight run as DuckDB tables.

Tables (replaced on every run, so a file holds one run's results):

* ``superweight_runs``  model id and hash, settings;
* ``superweights``      one row per super weight (``kind='creator'``) and per
                        canceller found (``kind='canceller'``, not ablated);
* ``superactivations``  one row per super activation and later layer, with its
                        magnitude there (long format, ready to plot);
* ``ablations``         one row per ablation (perplexity, accuracy, stopwords);
* ``quantization``      one row per weight-quantization variant (all details);
* ``superweight_quant_sweep``  the same, tidy: bits x block size x method -> perplexity
                        (``method`` naive or sw-aware; ``block_index`` orders the block sizes);
* ``superweight_activation_quant``  per-tensor activation RTN: bits x method (naive or
                        sa-held) -> perplexity, with how many elements were held.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..model.subject import Subject
from ..store import replace_tables
from .detect import Detection
from .proof import Measurement

TABLES = (
    "superweight_runs",
    "superweights",
    "superactivations",
    "ablations",
    "quantization",
    "superweight_quant_sweep",
    "superweight_activation_quant",
)


def _measurements(rows: list[Measurement]) -> pd.DataFrame:
    records = []
    for m in rows:
        r = dict(name=m.name, detail=m.detail, perplexity=m.perplexity, accuracy=m.accuracy, n_changed=m.n_changed)
        for word, p in m.stopwords.items():
            r[f"p_{word.strip() or 'space'}"] = p
        records.append(r)
    return pd.DataFrame.from_records(records)


def sweep_frame(quantization: list[Measurement]) -> pd.DataFrame:
    """``superweight_quant_sweep``: one row per (bits, block size, method), perplexity against the original."""
    base = quantization[0].perplexity
    rows = [
        dict(
            bits=m.config["bits"],
            block_size=m.config["block_size"],
            method=m.config["method"],
            perplexity=m.perplexity,
            x_original=m.perplexity / base,
            accuracy=m.accuracy,
        )
        for m in quantization
        if m.config
    ]
    frame = pd.DataFrame(rows, columns=["bits", "block_size", "method", "perplexity", "x_original", "accuracy"])
    order = {b: i for i, b in enumerate(dict.fromkeys(frame["block_size"]))}
    frame.insert(2, "block_index", frame["block_size"].map(order).astype("int64"))
    return frame


def activation_quant_frame(rows: list[Measurement]) -> pd.DataFrame:
    """``superweight_activation_quant``: one row per (bits, method), perplexity against the original."""
    base = rows[0].perplexity
    records = [
        dict(
            bits=m.config["bits"],
            method=m.config["method"],
            perplexity=m.perplexity,
            x_original=m.perplexity / base,
            accuracy=m.accuracy,
            held_elements=m.config["held_elements"],
            quantized_elements=m.config["quantized_elements"],
            quantized_tensors=m.config["quantized_tensors"],
        )
        for m in rows
        if m.config
    ]
    return pd.DataFrame(
        records,
        columns=[
            "bits",
            "method",
            "perplexity",
            "x_original",
            "accuracy",
            "held_elements",
            "quantized_elements",
            "quantized_tensors",
        ],
    )


def frames(
    subject: Subject, detection: Detection, ablations=None, quantization=None, settings=None, activation_quant=None
) -> dict[str, pd.DataFrame]:
    """Every table as a DataFrame (empty tables keep their columns)."""
    sw_cols = [
        "kind",
        "layer",
        "module_path",
        "param_name",
        "row",
        "col",
        "value",
        "rank",
        "input_spike",
        "output_spike",
        "text_index",
        "token",
        "iteration",
    ]
    sw = [dict(kind="creator", **asdict(w)) for w in detection.weights]
    sw += [dict(kind="canceller", **asdict(w)) for w in detection.cancellers]
    acts = [
        dict(
            channel=a.channel,
            first_layer=a.layer,
            layer=a.layer + i,
            magnitude=m,
            value=a.value,
            text_index=a.text_index,
            token=a.token,
            iteration=a.iteration,
        )
        for a in detection.activations
        for i, m in enumerate(a.magnitudes)
    ]
    act_cols = ["channel", "first_layer", "layer", "magnitude", "value", "text_index", "token", "iteration"]
    run = dict(
        model_id=subject.model_id,
        content_hash=subject.content_hash(),
        family=subject.anatomy.family,
        dtype=str(subject.dtype).removeprefix("torch."),
        threshold=detection.threshold,
        relative=detection.relative,
        weight_z=detection.weight_z,
        iterations=detection.iterations,
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
        out["superweight_quant_sweep"] = sweep_frame(quantization)
    if activation_quant is not None:
        out["superweight_activation_quant"] = activation_quant_frame(activation_quant)
    return out


def write_results(path: str | os.PathLike, tables: dict[str, pd.DataFrame], *, owned: tuple[str, ...] = TABLES) -> Path:
    """Write ``tables`` into the DuckDB file at ``path`` (created if needed), replacing them; tables of
    ``owned`` that this run did not produce are dropped, so the file holds one run's results."""
    return replace_tables(path, tables, owned=owned)
