"""Figures of a predicted map against the exact screen: the scatter, and the recall curves.

* :func:`prediction_scatter`: each estimate of each mutant's ``logprob_drop``
  (the first-order and, where the table has it, the local one) against the
  exact one, a panel per probe and estimate (both axes symmetric-log, so
  negative effects and five orders of magnitude fit);
* :func:`recall_figure`: the share of the exact top 1 % of effects found
  against the share of the genome screened, for the orders a screen can run
  in: by each estimate (mutant by mutant, the ideal), by chunk in predicted
  order (what ``screen --order predicted`` does: chunks of the fixed grid,
  ranked by :data:`~mutascope.predict.order.ORDER_BY`), plan order and a
  random order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..model.anatomy import MATRICES as MATRIX_ORDER
from ..predict.agreement import recall_curve
from ..predict.order import predicted_order

CHUNK = 256  # the screen's chunk grid (the batched engine's chunk size)
COLOURS = dict(zip(MATRIX_ORDER, ("#0072B2", "#56B4E9", "#009E73", "#F0E442", "#E69F00", "#D55E00", "#CC79A7")))


ESTIMATES = {"predicted": "first order", "local": "local"}


def _estimates(predictions: pd.DataFrame) -> list[str]:
    return [c for c in ESTIMATES if c in predictions.columns and predictions[c].notna().any()]


def _joined(frame: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    cols = ["mutation_id", "probe_id", "matrix", "effect"]
    keep = ["mutation_id", "probe_id", *_estimates(predictions)]
    return frame[cols].merge(predictions[keep], on=["mutation_id", "probe_id"]).dropna(subset=["effect", "predicted"])


def prediction_scatter(frame: pd.DataFrame, predictions: pd.DataFrame) -> Figure:
    """Each estimate against exact ``logprob_drop``, a panel per probe and estimate, coloured by matrix type."""
    joined = _joined(frame, predictions)
    probes = list(dict.fromkeys(joined["probe_id"]))[:6]
    estimates = _estimates(predictions)
    panels = [(p, e) for e in estimates for p in probes]
    fig = Figure(figsize=(4.2 * max(1, len(probes)) + 1.2, 4.0 * len(estimates)), layout="constrained")
    axes = np.atleast_1d(fig.subplots(len(estimates), max(1, len(probes)), squeeze=False).ravel())
    for ax, (probe, estimate) in zip(axes, panels):
        p = joined[joined["probe_id"] == probe].dropna(subset=[estimate])
        for matrix, g in p.groupby("matrix", sort=False):
            ax.scatter(
                g[estimate],
                g["effect"],
                s=2,
                alpha=0.35,
                color=COLOURS.get(matrix, "#777777"),
                label=matrix,
                rasterized=True,
            )
        rho = p[estimate].abs().rank().corr(p["effect"].rank())
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_yscale("symlog", linthresh=0.1)
        screened = int(frame.loc[frame["probe_id"] == probe, "effect"].notna().sum())
        part = "" if len(p) == screened else f"; {len(p)} of {screened} mutants predicted"
        ax.set_title(f"{probe} (Spearman of |estimate| {rho:.2f}{part})", fontsize=9)
        ax.set_xlabel(f"predicted logprob_drop ({ESTIMATES[estimate]})", fontsize=8)
        ax.set_ylabel("exact logprob_drop", fontsize=8)
        ax.tick_params(labelsize=7)
    if panels:
        axes[len(probes) - 1].legend(
            fontsize=7, markerscale=4, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0)
        )
    fig.suptitle("Predictions against the exact screen", fontsize=11)
    return fig


def recall_curves(frame: pd.DataFrame, predictions: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """The curves of :func:`recall_figure` as a table (probe, order, screened, found)."""
    joined = _joined(frame, predictions)
    # the screen orders chunks once, by the predictions of every probe together
    ids_all = np.unique(joined["mutation_id"].to_numpy())
    chunk_ids = np.unique(ids_all // CHUNK)
    chunks = [list(ids_all[ids_all // CHUNK == c]) for c in chunk_ids]
    position = {int(chunk_ids[c]): i for i, c in enumerate(predicted_order(chunks, joined))}
    parts = []
    for probe, p in joined.groupby("probe_id", sort=False):
        p = p.sort_values("mutation_id")
        effect = p["effect"].to_numpy(dtype=float)
        ids = p["mutation_id"].to_numpy()
        chunk_rank = np.array([position[int(c)] for c in ids // CHUNK])
        orders = {
            **{
                f"{ESTIMATES[e]} (each mutant)": np.argsort(
                    -np.nan_to_num(np.abs(p[e].to_numpy()), nan=-1.0), kind="stable"
                )
                for e in _estimates(predictions)
            },
            "predicted (chunks, as screened)": np.lexsort((ids, chunk_rank)),
            "plan order": np.arange(len(p)),
            "random order": np.random.default_rng(seed).permutation(len(p)),
        }
        for name, o in orders.items():
            parts.append(recall_curve(effect, o).assign(probe_id=probe, order=name))
    return (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["screened", "found", "probe_id", "order"])
    )


def recall_figure(frame: pd.DataFrame, predictions: pd.DataFrame) -> Figure:
    """Share of the exact top 1 % found against the share screened, per probe and order."""
    curves = recall_curves(frame, predictions)
    probes = list(dict.fromkeys(curves["probe_id"]))[:6]
    fig = Figure(figsize=(4.2 * max(1, len(probes)) + 2.0, 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(1, len(probes))))
    for ax, probe in zip(axes, probes):
        for name, g in curves[curves["probe_id"] == probe].groupby("order", sort=False):
            ax.plot(g["screened"], g["found"], linewidth=1.3, label=name)
        ax.axvline(0.1, color="#999999", linestyle=":", linewidth=1)
        ax.axhline(0.5, color="#999999", linestyle=":", linewidth=1)
        ax.set_title(probe, fontsize=9)
        ax.set_xlabel("share of the genome screened", fontsize=8)
        ax.set_ylabel("share of the exact top 1 % found", fontsize=8)
        ax.tick_params(labelsize=7)
    if probes:
        axes[-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Screens in predicted order: how soon the strongest effects are found", fontsize=11)
    return fig
