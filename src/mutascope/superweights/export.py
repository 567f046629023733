"""Files other tools read: the super-weight list and the tiles a screen map marks.

The JSON names the model (id and content hash, so a quantizer can refuse a
different checkpoint) and lists each super weight with both its canonical
coordinates and where the element sits in the stored parameter (GPT-2's
Conv1D stores ``down`` transposed). Tiles use the screen's convention: tile
``(row // h, col // w)`` of the canonical ``down`` matrix. A super-activation
channel ``c`` is an output row of ``o`` and ``down`` (row tile ``c // h``)
and an input column of ``q, k, v, gate, up`` (column tile ``c // w``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..model.subject import Subject
from ..version import __version__
from .detect import Detection

WRITES = ("o", "down")  # matrices whose output rows are residual channels
READS = ("q", "k", "v", "gate", "up")  # matrices whose input columns are residual channels


def export_dict(subject: Subject, detection: Detection, tile: tuple[int, int] = (64, 64)) -> dict:
    """The export as plain data."""
    h, w = tile
    anatomy = subject.anatomy

    def entry(sw):
        ref = anatomy.ref(sw.layer, "down")
        stored = (sw.col, ref.offset + sw.row) if ref.transposed else (ref.offset + sw.row, sw.col)
        return dict(
            layer=sw.layer,
            matrix="down",
            module_path=sw.module_path,
            param_name=sw.param_name,
            row=sw.row,
            col=sw.col,
            stored_index=list(stored),
            value=sw.value,
            rank=sw.rank,
            iteration=sw.iteration,
            tile=dict(layer=sw.layer, matrix="down", row=sw.row // h, col=sw.col // w),
        )

    weights = [entry(sw) for sw in detection.weights]
    channels = sorted({(a.channel, a.layer) for a in detection.activations})
    activations = []
    for channel, layer in channels:
        present = [m for m in WRITES + READS if m in anatomy.matrices]
        activations.append(
            dict(
                channel=channel,
                first_layer=layer,
                row_tile=channel // h,
                col_tile=channel // w,
                tiles=[
                    dict(
                        matrix=m,
                        axis="row" if m in WRITES else "col",
                        index=channel // h if m in WRITES else channel // w,
                    )
                    for m in present
                ],
            )
        )
    return dict(
        format="mutascope-superweights/1",
        mutascope_version=__version__,
        model_id=subject.model_id,
        content_hash=subject.content_hash(),
        family=anatomy.family,
        dtype=str(subject.dtype).removeprefix("torch."),
        detection=dict(
            threshold=detection.threshold,
            relative=detection.relative,
            weight_z=detection.weight_z,
            iterations=detection.iterations,
        ),
        tile=[h, w],
        super_weights=weights,
        cancellers=[entry(sw) for sw in detection.cancellers],
        super_activations=activations,
    )


def write_export(
    path: str | os.PathLike, subject: Subject, detection: Detection, tile: tuple[int, int] = (64, 64)
) -> Path:
    """Write :func:`export_dict` as indented JSON by the output-file rule (never over a DuckDB
    file; an existing file is replaced atomically); returns the path."""
    from ..files.outputs import write_text

    return write_text(Path(path), json.dumps(export_dict(subject, detection, tile), indent=2) + "\n")
