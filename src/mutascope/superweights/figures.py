"""Figure of the block-size sweep: perplexity against quantization block size (PNG via Agg).

Built with the object API (``Figure`` + ``FigureCanvasAgg``), never pyplot.
One colour per method (Okabe-Ito: naive orange, super-weight aware blue),
one line style per bit width, the unquantized model's perplexity as a grey
dashed line. Block sizes sit at even steps in the order swept (64, 128, ...,
per-row, per-tensor), since per-row and per-tensor have no common size.
The paper's claim is a gap between the methods that widens to the right.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import InputError

__all__ = ["quant_sweep_figure", "write_figure"]

COLOURS = {"naive": "#D55E00", "sw-aware": "#0072B2"}
STYLES = ("-", "--", ":", "-.")


def quant_sweep_figure(sweep: pd.DataFrame, original: float | None = None) -> Figure:
    """The figure from :func:`.store.sweep_frame`'s table (bits, block_size, block_index, method, perplexity)."""
    if sweep.empty:
        raise InputError("nothing to plot: the quantization sweep is empty")
    fig = Figure(figsize=(7, 4.5), dpi=120, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    widths = sorted(sweep["bits"].unique(), reverse=True)
    for (bits, method), part in sweep.groupby(["bits", "method"], sort=False):
        part = part.sort_values("block_index")
        label = "naive RTN" if method == "naive" else "clip + super weights kept"
        ax.plot(
            part["block_index"],
            part["perplexity"],
            STYLES[widths.index(bits) % len(STYLES)],
            marker="o",
            color=COLOURS.get(method, "#000000"),
            label=f"INT{bits} {label}",
        )
    if original is not None:
        ax.axhline(original, color="grey", ls="--", lw=1, label=f"unquantized ({original:.3g})")
    ticks = sweep.drop_duplicates("block_index").sort_values("block_index")
    ax.set_xticks(ticks["block_index"], ticks["block_size"])
    ax.set_yscale("log")
    ax.set_xlabel("quantization block size (weights per block along a row)")
    ax.set_ylabel("perplexity (log scale)")
    ax.set_title("round-to-nearest weight quantization against block size")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return fig


def write_figure(path: str | os.PathLike, sweep: pd.DataFrame, original: float | None = None) -> Path:
    """Render :func:`quant_sweep_figure` to ``path`` by the output-file rule (:mod:`mutascope.files.outputs`)."""
    from ..files.outputs import save_figure

    return save_figure(quant_sweep_figure(sweep, original), Path(path))
