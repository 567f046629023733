"""Figures of activation statistics (PNG via the Agg canvas; pyplot's global state is never touched).

Each function takes the tables :mod:`mutascope.activation.stats`,
:mod:`~mutascope.activation.pruning`, :mod:`~mutascope.activation.transfer` and
:mod:`~mutascope.activation.pairs` produce and returns a
:class:`matplotlib.figure.Figure`, so callers (CLI, notebooks, reports) decide
where it goes; :func:`write_figures` saves them all, by the output-file rule
of :mod:`mutascope.files.outputs` (:data:`FIGURES` names them, so a caller can
check the paths before any slow work).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.patches
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .inputs import ALL

__all__ = [
    "FIGURES",
    "fractions_figure",
    "pruning_figure",
    "semantic_figure",
    "similarity_figure",
    "transfer_figure",
    "write_figures",
]

# every file write_figures may write, by the table it draws
FIGURES = {
    "fractions": "activated_fraction.png",
    "similarity": "similarity.png",
    "layers": "pruning_sparsity.png",
    "transfer": "calibration_transfer.png",
    "semantic": "semantic_pairs.png",
}


def _figure(width: float, height: float, ncols: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def fractions_figure(fractions: pd.DataFrame, key_gammas=(2e-5, 2e-6)) -> Figure:
    """Left: activated fraction by layer at the key gammas, one line per domain.
    Right: fraction vs gamma (the curve), one line per layer coloured by depth (pooled inputs)."""
    fig, (ax1, ax2) = _figure(12, 4.5, 2)
    f = fractions[fractions["matrix"] == "all"]
    styles = ["-", "--", ":", "-."]
    for gi, g in enumerate(key_gammas):
        sel = f[np.isclose(f["gamma"], g, rtol=1e-9, atol=0)]
        for domain, part in sel.groupby("domain", sort=False):
            part = part.sort_values("layer")
            ax1.plot(
                part["layer"],
                part["fraction"],
                styles[gi % len(styles)],
                marker=".",
                label=f"{domain}, gamma={g:g}",
                lw=2 if domain == ALL else 1,
            )
    ax1.set(xlabel="layer", ylabel="activated fraction", title="activated parameters by layer", ylim=(0, 1.02))
    ax1.legend(fontsize=7)
    pooled = ALL if (f["domain"] == ALL).any() else f["domain"].iloc[0]
    p = f[f["domain"] == pooled]
    layers = sorted(p["layer"].unique())
    cmap = matplotlib.colormaps["viridis"]
    for layer in layers:
        part = p[p["layer"] == layer].sort_values("gamma")
        ax2.plot(part["gamma"], part["fraction"], color=cmap(layer / max(1, len(layers) - 1)), lw=1)
    for g in key_gammas:
        ax2.axvline(g, color="grey", ls=":", lw=1)
    ax2.set(
        xscale="log",
        xlabel="gamma",
        ylabel="activated fraction",
        title=f"fraction vs threshold ({pooled}); dark = shallow, yellow = deep",
    )
    return fig


def similarity_figure(similarity: pd.DataFrame) -> Figure:
    """Mean cosine of two inputs' maps by layer: each domain, each pair of domains, within/across."""
    fig, (ax,) = _figure(7, 4.5)
    for (a, b), part in similarity.groupby(["domain_a", "domain_b"], sort=False):
        part = part.sort_values("layer")
        summary = a in ("within", "across")
        label = a if summary else (a if a == b else f"{a} x {b}")
        ax.plot(
            part["layer"],
            part["cosine_mean"],
            "-" if summary else ":",
            marker="." if summary else None,
            lw=2 if summary else 1,
            label=label,
        )
    ax.set(xlabel="layer", ylabel="mean cosine", title="similarity of activation patterns")
    ax.legend(fontsize=7)
    return fig


def pruning_figure(layers: pd.DataFrame) -> Figure:
    """Per-layer sparsity, uniform vs layer-wise, beside the activated count N_i."""
    fig, (ax,) = _figure(7, 4.5)
    ax.plot(layers["layer"], layers["sparsity_layerwise"], marker=".", label="layer-wise S_i")
    ax.plot(layers["layer"], layers["sparsity_uniform"], "--", label="uniform S")
    ax.set(xlabel="layer", ylabel="sparsity", title="pruning ratio per layer")
    twin = ax.twinx()
    twin.bar(layers["layer"], layers["n_activated"], alpha=0.2, color="grey")
    twin.set_ylabel("activated parameters N_i")
    ax.legend(fontsize=7)
    return fig


def transfer_figure(transfer: pd.DataFrame) -> Figure:
    """Heat maps, one per pruning method: calibration domain (rows) x evaluation domain (columns).

    Colour is perplexity over the dense model's on the evaluation domain
    (so columns of different difficulty compare), the number in each cell
    the perplexity itself; the diagonal (calibrated on the domain itself)
    is outlined. The paper's claim is a diagonal lighter than its column.
    """
    from .transfer import DENSE

    pruned = transfer[transfer["method"] != DENSE]
    methods = list(dict.fromkeys(pruned["method"]))
    domains = list(dict.fromkeys(transfer["eval_domain"]))
    calib = list(dict.fromkeys(pruned["calibration_domain"]))
    n = max(1, len(domains))
    fig, axes = _figure(1.2 + 1.6 * n * len(methods), 1.3 + 1.1 * len(calib), max(1, len(methods)))
    ratio = {(r.method, r.calibration_domain, r.eval_domain): (r.x_dense, r.perplexity) for r in pruned.itertuples()}
    vmax = float(np.nanmax(pruned["x_dense"])) if len(pruned) else 1.0
    vmin = float(np.nanmin(pruned["x_dense"])) if len(pruned) else 1.0
    image = None
    for ax, method in zip(axes, methods):
        grid = np.array([[ratio.get((method, c, e), (np.nan, np.nan))[0] for e in domains] for c in calib])
        image = ax.imshow(grid, cmap="magma_r", vmin=vmin, vmax=vmax, aspect="auto")
        for i, c in enumerate(calib):
            for j, e in enumerate(domains):
                x, ppl = ratio.get((method, c, e), (np.nan, np.nan))
                if np.isfinite(ppl):
                    dark = (x - vmin) > 0.55 * (vmax - vmin)
                    ax.text(
                        j,
                        i,
                        f"{ppl:.4g}\nx{x:.2f}",
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if dark else "black",
                    )
                if c == e:
                    ax.add_patch(
                        matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2, edgecolor="#0072B2")
                    )
        ax.set_xticks(range(len(domains)), domains, rotation=30, ha="right")
        ax.set_yticks(range(len(calib)), calib)
        ax.set(xlabel="evaluated on (held-out text)", ylabel="calibrated on", title=f"{method} Wanda")
    if image is not None:
        fig.colorbar(image, ax=axes, label="perplexity / dense perplexity", shrink=0.9)
    return fig


def semantic_figure(semantic: pd.DataFrame) -> Figure:
    """Spearman rho of pair cosine vs similarity score by layer; filled markers where p < 0.05."""
    fig, (ax,) = _figure(7, 4.2)
    t = semantic.sort_values("layer")
    ax.axhline(0, color="grey", lw=0.8)
    ax.plot(t["layer"], t["spearman_rho"], "-", color="#0072B2", lw=1.5)
    sig = t["p_value"] < 0.05
    ax.plot(t["layer"][sig], t["spearman_rho"][sig], "o", color="#0072B2", label="p < 0.05 (permutation)")
    ax.plot(t["layer"][~sig], t["spearman_rho"][~sig], "o", mfc="white", color="#0072B2", label="p >= 0.05")
    layers = len(t)
    k = max(1, layers // 3)
    ax.axvspan(-0.5, k - 0.5, color="#E69F00", alpha=0.12, lw=0, label="shallow third")
    ax.axvspan(layers - k - 0.5, layers - 0.5, color="#009E73", alpha=0.12, lw=0, label="deep third")
    n = int(t["n_pairs"].iloc[0]) if len(t) else 0
    ax.set_xlim(-0.5, layers - 0.5)
    ax.set(
        xlabel="layer",
        ylabel="Spearman rho (pattern cosine vs score)",
        title=f"semantic pairs: do similar sentences share patterns? ({n} pairs)",
    )
    ax.legend(fontsize=7)
    return fig


def write_figures(
    directory: str | os.PathLike,
    fractions: pd.DataFrame,
    similarity: pd.DataFrame | None = None,
    layers: pd.DataFrame | None = None,
    transfer: pd.DataFrame | None = None,
    semantic: pd.DataFrame | None = None,
    dpi: int = 120,
) -> list[Path]:
    """Save every figure the tables allow as PNG in ``directory``; returns the paths.

    Each file is checked and written by :mod:`mutascope.files.outputs` (never
    over a DuckDB file; an existing PNG is replaced atomically).
    """
    from ..files.outputs import check_output_dir, save_figure

    d = check_output_dir(directory, what="figure directory")
    figs = {FIGURES["fractions"]: lambda: fractions_figure(fractions)}
    if similarity is not None and not similarity.empty:
        figs[FIGURES["similarity"]] = lambda: similarity_figure(similarity)
    if layers is not None and not layers.empty:
        figs[FIGURES["layers"]] = lambda: pruning_figure(layers)
    if transfer is not None and not transfer.empty:
        figs[FIGURES["transfer"]] = lambda: transfer_figure(transfer)
    if semantic is not None and not semantic.empty:
        figs[FIGURES["semantic"]] = lambda: semantic_figure(semantic)
    d.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, make in figs.items():
        paths.append(save_figure(make(), d / name, dpi=dpi))
    return paths
