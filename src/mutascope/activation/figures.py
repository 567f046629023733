"""Figures of activation statistics (PNG via the Agg canvas; pyplot's global state is never touched).

Each function takes the tables :mod:`mutascope.activation.stats` and
:mod:`~mutascope.activation.pruning` produce and returns a
:class:`matplotlib.figure.Figure`, so callers (CLI, notebooks, reports) decide
where it goes; :func:`write_figures` saves them all.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .inputs import ALL

__all__ = ["fractions_figure", "pruning_figure", "similarity_figure", "write_figures"]


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
            ax1.plot(part["layer"], part["fraction"], styles[gi % len(styles)], marker=".",
                     label=f"{domain}, gamma={g:g}", lw=2 if domain == ALL else 1)
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
    ax2.set(xscale="log", xlabel="gamma", ylabel="activated fraction",
            title=f"fraction vs threshold ({pooled}); dark = shallow, yellow = deep")
    return fig


def similarity_figure(similarity: pd.DataFrame) -> Figure:
    """Mean cosine of two inputs' maps by layer: each domain, each pair of domains, within/across."""
    fig, (ax,) = _figure(7, 4.5)
    for (a, b), part in similarity.groupby(["domain_a", "domain_b"], sort=False):
        part = part.sort_values("layer")
        summary = a in ("within", "across")
        label = a if summary else (a if a == b else f"{a} x {b}")
        ax.plot(part["layer"], part["cosine_mean"], "-" if summary else ":", marker="." if summary else None,
                lw=2 if summary else 1, label=label)
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


def write_figures(directory: str | os.PathLike, fractions: pd.DataFrame, similarity: pd.DataFrame | None = None,
                  layers: pd.DataFrame | None = None, dpi: int = 120) -> list[Path]:
    """Save every figure the tables allow as PNG in ``directory``; returns the paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    figs = {"activated_fraction.png": fractions_figure(fractions)}
    if similarity is not None and not similarity.empty:
        figs["similarity.png"] = similarity_figure(similarity)
    if layers is not None and not layers.empty:
        figs["pruning_sparsity.png"] = pruning_figure(layers)
    paths = []
    for name, fig in figs.items():
        fig.savefig(d / name, dpi=dpi)
        paths.append(d / name)
    return paths
