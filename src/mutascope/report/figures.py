"""Static figures of a screen (PNG via matplotlib's Agg renderer).

Every function takes the site frame (:func:`mutascope.analysis.site_frame`) and returns a
:class:`matplotlib.figure.Figure`. Figures are built with the object API
(``Figure()``, never ``pyplot``), so no global backend or figure registry is
touched: nothing leaks in long sessions and it works without a display.

Colours follow the paper's tile maps (max-only, min-only, both, silent) in
the Okabe-Ito palette, which stays distinguishable with the common forms of
colour blindness; continuous scales use ``cividis`` for the same reason.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.patches import Patch

from ..analysis.enrichment import enrichment
from ..analysis.frame import tile_map
from ..analysis.overlap import overlap
from ..analysis.reorder import reordered_map
from ..files.outputs import save_figure
from .payload import matrix_sort_key

# class index -> (label, colour); the page's script uses the same table (see payload/html).
TILE_CLASSES: tuple[tuple[str, str], ...] = (
    ("not mutated", "#FFFFFF"),
    ("silent", "#DDDDDD"),
    ("max-only NSM", "#E69F00"),
    ("min-only NSM", "#0072B2"),
    ("max and min NSM", "#CC79A7"),
    ("NSM (other kind)", "#D55E00"),
)
NOT_MUTATED, SILENT, MAX_ONLY, MIN_ONLY, BOTH, OTHER = range(len(TILE_CLASSES))
CONTINUOUS_CMAP = "cividis"
# zero and negative effect sizes in effect maps (the HTML report's colour for them too)
NONPOSITIVE_COLOUR = "#F4A6B8"
MAX_PANELS = 12  # probes shown side by side in one figure; more are left out (said in the title)


def _matrix_frame(frame: pd.DataFrame, layer: int, matrix: str) -> pd.DataFrame:
    sub = frame[(frame["layer"] == layer) & (frame["matrix"] == matrix)]
    if sub.empty:
        raise ValueError(f"no outcomes for layer {layer}, matrix {matrix!r}")
    return sub


def _probes(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame["probe_id"]))  # screen order (the frame is in probe position order)


def tile_classes(frame: pd.DataFrame, probe_id: str, layer: int, matrix: str) -> np.ndarray:
    """Class of every tile of one matrix for one probe (rows x cols of the tile grid).

    The grid spans tile rows/cols 0..max mutated; tiles without a mutation are
    ``NOT_MUTATED``. NSMs under kinds other than max/min only count where the
    tile has no max/min NSM.
    """
    sub = _matrix_frame(frame, layer, matrix)
    shape = (int(sub["row"].max()) + 1, int(sub["col"].max()) + 1)
    sub = sub[sub["probe_id"] == probe_id]
    out = np.full(shape, NOT_MUTATED, dtype=np.int8)
    if sub.empty:
        return out
    r, c = sub["row"].to_numpy(), sub["col"].to_numpy()
    nsm = sub["nsm"].to_numpy(dtype=bool)
    kind = sub["kind"].to_numpy()

    def grid(mask):
        g = np.zeros(shape, dtype=bool)
        g[r[mask], c[mask]] = True
        return g

    mutated = grid(np.ones(len(sub), dtype=bool))
    mx, mn = grid(nsm & (kind == "max")), grid(nsm & (kind == "min"))
    other = grid(nsm & (kind != "max") & (kind != "min"))
    out[mutated] = SILENT
    out[other] = OTHER
    out[mx] = MAX_ONLY
    out[mn] = MIN_ONLY
    out[mx & mn] = BOTH
    return out


def _legend(fig: Figure, classes: Sequence[int]) -> None:
    handles = [Patch(facecolor=TILE_CLASSES[i][1], edgecolor="#888888", label=TILE_CLASSES[i][0]) for i in classes]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8)


def tile_map_figure(frame: pd.DataFrame, layer: int, matrix: str, probes: Sequence[str] | None = None) -> Figure:
    """The paper's tile map of one matrix: one panel per probe, tiles coloured by class."""
    sub = _matrix_frame(frame, layer, matrix)
    probes = list(probes) if probes is not None else _probes(sub)
    shown = probes[:MAX_PANELS]
    grids = [tile_classes(sub, p, layer, matrix) for p in shown]
    nrows_t, ncols_t = grids[0].shape
    ncol = min(len(shown), 3)
    nrow = -(-len(shown) // ncol)
    aspect = nrows_t / max(ncols_t, 1)
    panel_w = 3.2
    panel_h = min(max(panel_w * aspect, 1.2), 8.0)
    fig = Figure(figsize=(panel_w * ncol + 0.4, panel_h * nrow + 1.2), layout="constrained")
    cmap = ListedColormap([c for _, c in TILE_CLASSES])
    norm = BoundaryNorm(np.arange(len(TILE_CLASSES) + 1) - 0.5, len(TILE_CLASSES))
    axes = fig.subplots(nrow, ncol, squeeze=False)
    for ax, probe, grid in zip(axes.flat, shown, grids):
        ax.imshow(grid, cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
        n_nsm = int(np.isin(grid, (MAX_ONLY, MIN_ONLY, BOTH, OTHER)).sum())
        ax.set_title(f"{probe} ({n_nsm} NSM tiles)", fontsize=9)
        ax.set_xlabel("tile col (input features)", fontsize=8)
        ax.set_ylabel("tile row (output features)", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_axis_off()
    more = f" (first {MAX_PANELS} of {len(probes)} probes)" if len(probes) > MAX_PANELS else ""
    fig.suptitle(f"Layer {layer} {matrix}: tile map{more}", fontsize=11)
    present = sorted(set(np.unique(np.concatenate([g.ravel() for g in grids]))) | {SILENT, MAX_ONLY, MIN_ONLY, BOTH})
    _legend(fig, [int(i) for i in present if i != NOT_MUTATED] + ([NOT_MUTATED] if NOT_MUTATED in present else []))
    engine = fig.get_layout_engine()
    assert isinstance(engine, ConstrainedLayoutEngine)  # layout="constrained" above
    engine.set(rect=(0, 0.06, 1, 0.94))
    return fig


def overview_table(frame: pd.DataFrame) -> pd.DataFrame:
    """NSM rate (all kinds pooled) per probe, layer and matrix: the overview's numbers."""
    out = frame.groupby(["probe_id", "layer", "matrix"], as_index=False).agg(
        mutants=("nsm", "size"), nsm=("nsm", "sum")
    )
    out["rate"] = out["nsm"] / out["mutants"]
    return out


def overview_figure(frame: pd.DataFrame) -> Figure:
    """Layer x matrix heatmap of the NSM rate, one panel per probe."""
    table = overview_table(frame)
    probes = _probes(frame)
    shown = probes[:MAX_PANELS]
    layers = sorted(table["layer"].unique())
    matrices = sorted(table["matrix"].unique(), key=matrix_sort_key)
    ncol = min(len(shown), 4)
    nrow = -(-len(shown) // ncol)
    panel_h = min(max(0.18 * len(layers) + 0.8, 1.6), 7.0)
    fig = Figure(figsize=(2.6 * ncol + 1.0, panel_h * nrow + 0.8), layout="constrained")
    axes = fig.subplots(nrow, ncol, squeeze=False)
    image = None
    for ax, probe in zip(axes.flat, shown):
        grid = (
            table[table["probe_id"] == probe]
            .pivot(index="layer", columns="matrix", values="rate")
            .reindex(index=layers, columns=matrices)
        )
        image = ax.imshow(
            grid.to_numpy(dtype=float), cmap=CONTINUOUS_CMAP, vmin=0, vmax=1, aspect="auto", interpolation="nearest"
        )
        ax.set_title(probe, fontsize=9)
        ax.set_xticks(range(len(matrices)), matrices, fontsize=7, rotation=90)
        step = max(1, len(layers) // 15)
        ax.set_yticks(range(0, len(layers), step), [str(layers[i]) for i in range(0, len(layers), step)], fontsize=7)
        ax.set_ylabel("layer", fontsize=8)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_axis_off()
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, label="NSM rate (all kinds)")
    more = f" (first {MAX_PANELS} of {len(probes)} probes)" if len(probes) > MAX_PANELS else ""
    fig.suptitle(f"NSM rate by layer and matrix{more}", fontsize=11)
    return fig


def enrichment_figure(
    frame: pd.DataFrame,
    layer: int,
    matrix: str,
    alpha: float = 0.05,
    table: pd.DataFrame | None = None,
    readout: str | None = None,
) -> Figure:
    """-log10 q of row and column enrichment along one matrix, a line per probe, threshold dashed.

    ``table`` is an enrichment table of the screen's whole family (q-values as ``analyze``
    computes them); without it the matrix is tested on its own. The readout is the effect
    size where the screen has one, else the NSM call.
    """
    sub = _matrix_frame(frame, layer, matrix)
    if readout is None:
        readout = "effect" if sub["effect"].notna().any() else "nsm"
    if table is None:
        table = enrichment(sub, readout, alpha)
    table = table[(table["layer"] == layer) & (table["matrix"] == matrix)]
    fig = Figure(figsize=(9, 3.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, axis in zip(axes, ("row", "col")):
        for probe in _probes(sub)[:MAX_PANELS]:
            t = table[(table["probe_id"] == probe) & (table["axis"] == axis)].sort_values("index")
            y = -np.log10(np.clip(t["q_value"].astype(float).to_numpy(), 1e-300, 1))
            ax.plot(t["index"], y, marker="o", markersize=3, linewidth=1, label=probe)
        ax.axhline(-np.log10(alpha), color="#444444", linestyle="--", linewidth=1, label=f"q = {alpha}")
        ax.set_xlabel(f"tile {axis}", fontsize=8)
        ax.set_ylabel("-log10 q", fontsize=8)
        ax.set_title(f"{axis} enrichment", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_ylim(bottom=0)
    axes[1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    what = "effect-size" if readout == "effect" else "NSM"
    fig.suptitle(
        f"Layer {layer} {matrix}: {what} enrichment along tile rows and columns (exact, tile as unit)", fontsize=11
    )
    return fig


def effect_map_figure(frame: pd.DataFrame, layer: int, matrix: str, probes: Sequence[str] | None = None) -> Figure:
    """Effect sizes of one matrix on a log colour scale: a panel per probe and kind (max, min).

    Zero and negative effects (the mutant made the WT output no less likely) have no place on
    a log scale; they are drawn in their own colour (``NONPOSITIVE_COLOUR``, the report's
    colour for them, outside the sequential map) so they never read as the smallest positive
    effect. The scale is shared by a probe's panels.
    """
    import matplotlib
    from matplotlib.colors import LogNorm

    cmap = matplotlib.colormaps[CONTINUOUS_CMAP].copy()
    cmap.set_under(NONPOSITIVE_COLOUR)

    sub = _matrix_frame(frame, layer, matrix)
    probes = list(probes) if probes is not None else _probes(sub)
    probes = probes[: MAX_PANELS // 2]
    kinds = [k for k in ("max", "min") if k in set(sub["kind"])] or list(dict.fromkeys(sub["kind"]))[:2]
    rows = pd.Index(range(int(sub["row"].max()) + 1))
    cols = pd.Index(range(int(sub["col"].max()) + 1))
    aspect = len(rows) / max(len(cols), 1)
    panel_w = 3.0
    panel_h = min(max(panel_w * aspect, 1.2), 8.0)
    fig = Figure(figsize=(panel_w * len(kinds) * len(probes) + 1.2, panel_h + 1.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(kinds) * len(probes), squeeze=False)[0])
    for p_i, probe in enumerate(probes):
        p = sub[sub["probe_id"] == probe]
        positive = p["effect"][p["effect"] > 0]
        if positive.empty:
            continue
        floor = max(float(positive.quantile(0.01)), 1e-6)
        norm = LogNorm(vmin=floor, vmax=float(positive.max()))
        image = None
        for k_i, kind in enumerate(kinds):
            ax = axes[p_i * len(kinds) + k_i]
            raw = tile_map(p[p["kind"] == kind], "effect", rows=rows, cols=cols)[0]
            # positive effects below the scale's floor take its lowest colour; nonpositive ones go
            # under the floor, to the colour of their own
            grid = np.where(np.isfinite(raw), np.where(raw > 0, np.maximum(raw, floor), floor / 10), np.nan)
            image = ax.imshow(grid, cmap=cmap, norm=norm, interpolation="nearest", aspect="equal")
            ax.set_title(f"{probe}, {kind}", fontsize=9)
            ax.set_xlabel("tile col (input features)", fontsize=8)
            ax.set_ylabel("tile row (output features)", fontsize=8)
            ax.tick_params(labelsize=7)
        if image is not None:
            fig.colorbar(
                image,
                ax=axes[p_i * len(kinds) : (p_i + 1) * len(kinds)].tolist(),
                shrink=0.8,
                extend="min",
                label=f"effect ({probe}), log scale; below: zero or negative",
            )
    fig.suptitle(f"Layer {layer} {matrix}: effect size (logprob_drop) per tile", fontsize=11)
    return fig


def reordered_figure(frame: pd.DataFrame, layer: int, matrix: str, readout: str = "nsm") -> Figure:
    """The cross-validated re-ordered balance view (max - min score per tile), a panel per
    probe: rows and columns sorted by the balance of the *other* probe (or of the other half
    of the tiles, for a single probe), so a gradient that appears is shared structure, not
    the sorting of noise."""
    sub = _matrix_frame(frame, layer, matrix)
    probes = _probes(sub)[:MAX_PANELS]
    fig = Figure(figsize=(3.2 * len(probes) + 1, 3.6), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(probes)))
    image = None
    for ax, probe in zip(axes, probes):
        view = reordered_map(sub, probe, layer, matrix, readout=readout)
        source = view.attrs.get("order_from")
        image = ax.imshow(view.to_numpy(), cmap="PuOr", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        learnt = "odd tiles, order from the even ones" if source == "halves" else f"order learnt on {source}"
        ax.set_title(f"{probe} ({learnt})", fontsize=8)
        ax.set_xlabel("tile columns, sorted", fontsize=8)
        ax.set_ylabel("tile rows, sorted", fontsize=8)
        ax.tick_params(labelsize=6)
    if image is not None:
        label = "max NSM - min NSM" if readout == "nsm" else "max - min effect percentile"
        fig.colorbar(image, ax=axes, shrink=0.8, label=label)
    fig.suptitle(f"Layer {layer} {matrix}, re-ordered by max-min balance learnt on held-out data", fontsize=10)
    return fig


def overlap_figure(frame: pd.DataFrame) -> Figure:
    """Jaccard index of the NSM site sets of every pair of probes, as a heatmap."""
    table = overlap(frame)
    probes = _probes(frame)
    n = len(probes)
    grid = np.eye(n)
    pos = {p: i for i, p in enumerate(probes)}
    for r in table.itertuples():
        grid[pos[r.probe_a], pos[r.probe_b]] = grid[pos[r.probe_b], pos[r.probe_a]] = r.jaccard
    size = min(max(2.5, 0.55 * n + 1.8), 12)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(grid, cmap=CONTINUOUS_CMAP, vmin=0, vmax=1)
    ax.set_xticks(range(n), probes, rotation=90, fontsize=7)
    ax.set_yticks(range(n), probes, fontsize=7)
    if n <= 15:
        for i in range(n):
            for j in range(n):
                v = grid[i, j]
                ax.text(
                    j,
                    i,
                    "" if np.isnan(v) else f"{v:.2f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="black" if (np.isnan(v) or v > 0.6) else "white",
                )
    fig.colorbar(image, ax=ax, label="Jaccard index of NSM sets")
    ax.set_title("Cross-probe overlap of NSMs", fontsize=11)
    return fig


def top_matrices(frame: pd.DataFrame, n: int = 6) -> list[tuple[int, str]]:
    """The ``n`` matrices with most NSMs (all probes and kinds), ties in layer/matrix order."""
    counts = frame.groupby(["layer", "matrix"], as_index=False)["nsm"].sum()
    counts["_key"] = counts["matrix"].map(matrix_sort_key)
    counts = counts.sort_values(["nsm", "layer", "_key"], ascending=[False, True, True])
    return [(int(r.layer), str(r.matrix)) for r in counts.head(n).itertuples()]


def structured_matrices(table: pd.DataFrame, n: int = 6) -> list[tuple[int, str]]:
    """The ``n`` matrices with the most enriched axes in an enrichment table (over probes),
    ties broken by the smallest q: the matrices whose maps have structure to show."""
    hits = table[table["enriched"].astype(bool)] if len(table) else table
    if hits.empty:
        return []
    g = hits.groupby(["layer", "matrix"], as_index=False).agg(hits=("index", "size"), q=("q_value", "min"))
    g["_key"] = g["matrix"].map(matrix_sort_key)
    g = g.sort_values(["hits", "q", "layer", "_key"], ascending=[False, True, True, True])
    return [(int(r.layer), str(r.matrix)) for r in g.head(n).itertuples()]


def figure_set(
    frame: pd.DataFrame,
    top_n: int = 6,
    tables: dict[str, pd.DataFrame] | None = None,
    alpha: float = 0.05,
    predictions: pd.DataFrame | None = None,
) -> Iterator[tuple[str, str, Figure]]:
    """``(file stem, caption, figure)`` for a bounded set: overview, overlap, and for each of
    the ``top_n`` matrices with the most enriched axes (effect size where measured, else
    the NSM call; the most NSMs where nothing is enriched) its map and its enrichment profile,
    then the cross-validated re-ordered ``gate``.

    Effect maps where the screen has effect sizes: NSM maps of small models are one flat
    colour. Bounded on purpose: a full-genome screen has hundreds of matrices, and a
    figure each would be thousands of files nobody opens; the report's interactive map
    covers every matrix. ``tables`` (from the analysis) gives the family-wide q-values;
    ``predictions`` (the file's table) adds the predicted-against-exact scatter and the
    recall curves.
    """
    if frame.empty:
        return
    tables = tables or {}
    has_effect = bool(frame["effect"].notna().any())
    readout = "effect" if has_effect else "nsm"
    enr = tables.get(f"{'effect_' if has_effect else ''}enrichment")
    if enr is None:
        enr = enrichment(frame, readout, alpha)
    yield "overview", "NSM rate by layer and matrix, per probe", overview_figure(frame)
    if frame["probe_id"].nunique() >= 2:
        yield "overlap", "Cross-probe overlap (Jaccard index of NSM sets)", overlap_figure(frame)
    chosen = structured_matrices(enr, top_n) or top_matrices(frame, top_n)
    for layer, matrix in chosen:
        stem = f"L{layer}_{_safe(matrix)}"
        if has_effect:
            yield f"effect_{stem}", f"Effect-size map, layer {layer} {matrix}", effect_map_figure(frame, layer, matrix)
        else:
            yield f"map_{stem}", f"Tile map, layer {layer} {matrix}", tile_map_figure(frame, layer, matrix)
        yield (
            f"enrichment_{stem}",
            f"Row/column enrichment, layer {layer} {matrix}",
            enrichment_figure(frame, layer, matrix, alpha, table=enr, readout=readout),
        )
    gates = top_matrices(frame[frame["matrix"] == "gate"], 1)
    if gates and frame["kind"].isin(["max"]).any() and frame["kind"].isin(["min"]).any():
        layer, matrix = gates[0]
        yield (
            f"reordered_L{layer}_gate",
            f"Re-ordered balance view, layer {layer} gate, order learnt on held-out data (2-D asymmetry)",
            reordered_figure(frame, layer, matrix, readout),
        )
    if predictions is not None and has_effect:
        from .prediction_figures import prediction_scatter, recall_figure

        yield (
            "predicted_scatter",
            "Predicted (first order, and local where stored) against exact effect of every mutant, per probe",
            prediction_scatter(frame, predictions),
        )
        yield (
            "recall_curves",
            "Share of the exact top 1 % found against the share of the plan screened: predicted, plan and random order",
            recall_figure(frame, predictions),
        )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes (what the report embeds)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figures(
    frame: pd.DataFrame,
    out_dir: str | Path,
    top_n: int = 6,
    dpi: int = 110,
    tables: dict[str, pd.DataFrame] | None = None,
) -> list[Path]:
    """Write :func:`figure_set` as PNG files into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, _caption, fig in figure_set(frame, top_n, tables):
        written.append(save_figure(fig, out_dir / f"{stem}.png", dpi=dpi))
    return written


__all__ = [
    "TILE_CLASSES",
    "effect_map_figure",
    "enrichment_figure",
    "structured_matrices",
    "figure_set",
    "overlap_figure",
    "overview_figure",
    "overview_table",
    "png_bytes",
    "reordered_figure",
    "save_figures",
    "tile_classes",
    "tile_map_figure",
    "top_matrices",
]
