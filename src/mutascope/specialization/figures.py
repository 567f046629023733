"""PSS against k, one line per model, with its random-mask baseline; held-out accuracy
against k per fine-tuning arm (PNGs via Agg).

Built with the object API (``Figure`` + ``FigureCanvasAgg``), never
``pyplot``, so no global backend or figure registry is touched. Colours are
the Okabe-Ito palette (safe for common colour blindness): each model's
targeted PSS is a solid line, its random baseline a dashed line of the same
colour with a band of +-1 sd over draws.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import InputError

COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def pss_figure(table: pd.DataFrame) -> Figure:
    """The figure from :func:`.score.summary`'s table (columns model_id, accuracy, k, pss, pss_random,
    pss_random_sd)."""
    if table.empty:
        raise InputError("nothing to plot: the summary table is empty")
    fig = Figure(figsize=(6.4, 4.2), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (model, group) in enumerate(table.groupby("model_id", sort=False)):
        group = group.sort_values("k")
        colour = COLOURS[i % len(COLOURS)]
        acc = group["accuracy"].iloc[0]
        ax.plot(group["k"], group["pss"], "o-", color=colour, label=f"{model} (accuracy {acc:.2f})")
        ax.plot(group["k"], group["pss_random"], "s--", color=colour, alpha=0.7, label=f"{model}, random mask")
        sd = group["pss_random_sd"].fillna(0)
        ax.fill_between(group["k"], group["pss_random"] - sd, group["pss_random"] + sd, color=colour, alpha=0.15, lw=0)
    if table["k"].nunique() > 1 and table["k"].min() > 0:
        ax.set_xscale("log")
    ax.set_xlabel("k (value vectors masked)")
    ax.set_ylabel("PSS (mean over concepts)")
    ax.set_title("Parameter specialization score against k")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


ARM_STYLES = {"specific": ("#D55E00", "o-"), "random": ("#0072B2", "s--"), "general": ("#009E73", "^:")}


def finetune_figure(table: pd.DataFrame) -> Figure:
    """Held-out accuracy against k for each arm, one panel per model, from
    :func:`.causal.arm_table` (columns model_id, k, arm, heldout_before, heldout_after); the
    base model's held-out accuracy is the grey line."""
    if table.empty:
        raise InputError("nothing to plot: the fine-tuning table is empty")
    models = list(dict.fromkeys(table["model_id"]))
    fig = Figure(figsize=(5.2 * len(models), 4.0), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    for i, model in enumerate(models):
        ax = fig.add_subplot(1, len(models), i + 1)
        rows = table[table["model_id"] == model]
        for arm, (colour, style) in ARM_STYLES.items():
            group = rows[rows["arm"] == arm].sort_values("k")
            if len(group):
                ax.plot(group["k"], group["heldout_after"], style, color=colour, label=f"{arm} vectors")
        base = rows.groupby("k")["heldout_before"].mean().sort_index()
        ax.plot(base.index, base.values, "-", color="grey", alpha=0.6, label="before fine-tuning")
        if rows["k"].nunique() > 1:
            ax.set_xscale("log")
        ax.set_xlabel("k (value vectors fine-tuned)")
        ax.set_ylabel("held-out accuracy (mean over concepts)")
        ax.set_title(str(model), fontsize="medium")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    return fig


def write_finetune_figure(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Render :func:`finetune_figure` to a PNG file at ``path`` (the output-file rule, as :func:`write_figure`)."""
    from ..files.outputs import save_figure

    return save_figure(finetune_figure(table), Path(path), format="png")


def write_figure(path: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Render :func:`pss_figure` to a PNG file at ``path`` by the output-file rule of
    :mod:`mutascope.files.outputs` (parent folders created; never over a DuckDB file; atomic)."""
    from ..files.outputs import save_figure

    return save_figure(pss_figure(table), Path(path), format="png")
