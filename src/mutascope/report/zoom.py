"""Zoomed regions drawn inside their tile, coloured by effect: figures and the report's section.

:func:`zoom_figure` (``mutascope zoom --figures``): one panel per probe of a
zoomed (site, kind): the tile at full resolution, every region the
refinement screened painted with its ``logprob_drop`` as a share of the
tile's own, smaller regions over larger ones, so the path of the refinement
shows as nested rectangles ending at what carries the effect (outlined).
Object API only (no ``pyplot``), as in :mod:`.figures`.

:func:`zoom_payload` and :func:`zoom_section`: the same picture in the HTML
report, drawn by its script on a canvas from the ``zoom`` table's rows (one
entry per zoomed site, kind and probe, with what carries the effect,
:mod:`mutascope.analysis.carriers`), beside the carriers table. A file
without a zoom table gets neither (the page has no zoom section).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..analysis.carriers import carriers, sentence
from ..plan.region import Region
from .tables import esc, section, table_html


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
        image = ax.imshow(
            share,
            cmap=cmap,
            norm=norm,
            interpolation="nearest",
            extent=(c0 - 0.5, c0 + w - 0.5, r0 + h - 0.5, r0 - 0.5),
        )
        for r in g[g["followed"].astype(bool)].itertuples(index=False):
            if r.level > 0:
                ax.add_patch(
                    Rectangle(
                        (r.col - 0.5, r.row - 0.5), r.width, r.height, fill=False, edgecolor="#D55E00", linewidth=0.8
                    )
                )
        ax.set_title(f"{pid}: tile effect {parent:.3g}, {len(g)} mutants", fontsize=9)
        ax.set_xlabel("input feature (column)")
        ax.set_ylabel("output feature (row)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="logprob_drop / tile's")
    fig.suptitle(f"zoom {site} {kind} (followed regions outlined)", fontsize=10)
    return fig


def zoom_payload(table: pd.DataFrame) -> list[dict]:
    """One entry per zoomed (site, kind, probe) for the page's script: the tile (``r0, c0, h, w``
    in the matrix's weights), its effect, the carrier and verdict, the sentence, and every
    region as ``[row, col, height, width, level, logprob_drop, followed, nsm]``."""
    if table.empty:
        return []
    verdicts = {(v.site, v.kind, v.probe_id): v for v in carriers(table).itertuples(index=False)}
    out = []
    for (site, kind, pid), g in table.groupby(["site", "kind", "probe_id"], sort=True):
        root = g[g["level"] == 0].iloc[0]
        v = verdicts[(site, kind, pid)]
        c = Region.parse(v.carrier)
        carrier = [c.r0, c.c0, c.height, c.width]
        layer, matrix, row, col = site.split(".")
        out.append(
            {
                "site": site,
                "layer": int(layer),
                "matrix": matrix,
                "row": int(row),
                "col": int(col),
                "kind": kind,
                "probe": pid,
                "tile": [int(root["row"]), int(root["col"]), int(root["height"]), int(root["width"])],
                "parent": float(root["logprob_drop"]),
                "verdict": str(v.verdict),
                "carrier": carrier,
                "sentence": sentence(v),
                "regions": [
                    [
                        int(r.row),
                        int(r.col),
                        int(r.height),
                        int(r.width),
                        int(r.level),
                        round(float(r.logprob_drop), 4),
                        bool(r.followed),
                        bool(r.nsm),
                    ]
                    for r in g.itertuples(index=False)
                ],
            }
        )
    return out


def zoom_section(table: pd.DataFrame) -> str:
    """The report's zoom section (empty for a file without zooms): the canvas the script draws
    the selected zoomed tile on, and the carriers table."""
    if table.empty:
        return ""
    found = carriers(table)
    intro = (
        'Tiles refined into sub-blocks by <code>mutascope zoom</code> (docs/methods.md, "Zoom"). '
        "The selected tile is drawn at the resolution of single weights: every region the refinement "
        "screened is painted with its effect as a share of the tile's (the colour bar), smaller regions over "
        "larger ones; followed regions are outlined, and the smallest region found carrying at least half the "
        "tile's effect (the carrier) is outlined in black. Hover a weight for the smallest region holding it."
    )
    view = (
        '<div class="controls"><label>Zoomed tile <select id="zoom-select"></select></label></div>'
        '<p class="note" id="zoom-sentence"></p><div id="zoom-legend" class="legend"></div>'
        '<canvas id="zoommap" width="10" height="10"></canvas>'
    )
    return section(
        "zoom",
        "Zoomed tiles",
        f'<p class="note">{intro}</p>{view}<h3>What carries each tile\'s effect'
        f"</h3>{table_html(found, max_rows=len(found))}"
        f'<p class="note">{esc(len(found))} zoomed tiles x probes; the verdict rule is in docs/methods.md.</p>',
    )
