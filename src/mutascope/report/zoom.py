"""Zoomed regions drawn inside their tile, coloured by effect (``mutascope zoom --figures``).

One panel per probe of a zoomed (site, kind): the tile at full resolution,
every region the refinement screened painted with its ``logprob_drop`` as a
share of the tile's own, smaller regions over larger ones, so the path of
the refinement shows as nested rectangles ending at what carries the effect
(outlined). Object API only (no ``pyplot``), as in :mod:`.figures`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle


def zoom_figure(table: pd.DataFrame, site: str, kind: str) -> Figure:
    """The regions of ``site`` zoomed with ``kind`` (rows of the ``zoom`` table), one panel per probe."""
    rows = table[(table["site"] == site) & (table["kind"] == kind)]
    probes = sorted(rows["probe_id"].unique())
    fig = Figure(figsize=(4.2 * max(1, len(probes)), 4.4), layout="constrained")
    axes = fig.subplots(1, max(1, len(probes)), squeeze=False)[0]
    norm = Normalize(0.0, 1.0)
    cmap = "cividis"
    for ax, pid in zip(axes, probes):
        g = rows[rows["probe_id"] == pid]
        root = g[g["level"] == 0].iloc[0]
        r0, c0, h, w = int(root["row"]), int(root["col"]), int(root["height"]), int(root["width"])
        parent = float(root["logprob_drop"])
        share = np.zeros((h, w))
        drawn = g.assign(size=g["height"] * g["width"]).sort_values(["size", "level"], ascending=[False, True])
        for r in drawn.itertuples(index=False):
            value = r.logprob_drop / parent if parent > 0 else 0.0
            share[r.row - r0 : r.row - r0 + r.height, r.col - c0 : r.col - c0 + r.width] = max(0.0, min(1.0, value))
        image = ax.imshow(share, cmap=cmap, norm=norm, interpolation="nearest",
                          extent=(c0 - 0.5, c0 + w - 0.5, r0 + h - 0.5, r0 - 0.5))
        for r in g[g["followed"].astype(bool)].itertuples(index=False):
            if r.level > 0:
                ax.add_patch(Rectangle((r.col - 0.5, r.row - 0.5), r.width, r.height, fill=False,
                                       edgecolor="#D55E00", linewidth=0.8))
        ax.set_title(f"{pid}: tile effect {parent:.3g}, {len(g)} mutants", fontsize=9)
        ax.set_xlabel("input feature (column)")
        ax.set_ylabel("output feature (row)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="logprob_drop / tile's")
    fig.suptitle(f"zoom {site} {kind} (followed regions outlined)", fontsize=10)
    return fig
