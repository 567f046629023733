"""What carries a zoomed tile's effect: one weight, a row or column, the whole block, or no part.

A function of the ``zoom`` table alone (:mod:`mutascope.screen.zoom`), one
row per zoomed (site, kind, probe), with the rule of docs/methods.md, "Zoom":

* ``parent``: the tile's own ``logprob_drop`` (level 0);
* ``largest_child`` and ``children_sum``: the stronger half and the sum of
  both halves of the first cut, along the axis the refinement chose (the one
  whose stronger half carries more);
* ``carrier``: the smallest region found whose effect is at least half the
  tile's (the tile itself if none), its size in weights;
* ``verdict``: ``localised`` if that region is smaller than the tile and has
  at most :data:`FEW_WEIGHTS` weights or is one row or one column;
  else ``synergistic`` if the two halves together carry less than
  :data:`SYNERGY` of the tile's effect (the parts are much weaker than the
  whole); else ``distributed`` (halves carry it between them, but no small
  set does); ``none`` if the tile has no positive effect to explain.
"""

from __future__ import annotations

import pandas as pd

FEW_WEIGHTS = 16  # a carrier of at most this many weights is "a few weights"
SYNERGY = 0.5  # halves summing to less than this share of the tile's effect are "much weaker"

COLUMNS = (
    "site",
    "kind",
    "probe_id",
    "parent",
    "largest_child",
    "children_sum",
    "carrier",
    "carrier_weights",
    "carrier_drop",
    "mutants",
    "depth",
    "verdict",
)


def _region(r) -> str:
    return f"[{r.row}:{r.row + r.height},{r.col}:{r.col + r.width}]"


def carriers(zoom: pd.DataFrame) -> pd.DataFrame:
    """One row per zoomed (site, kind, probe): see the module docstring."""
    out = []
    for (site, kind, pid), g in zoom.groupby(["site", "kind", "probe_id"], sort=True):
        root = g[g["level"] == 0].iloc[0]
        parent = float(root["logprob_drop"])
        first = g[g["level"] == 1]
        largest = children = None
        if len(first):
            axes = {"rows": first[first["width"] == root["width"]], "cols": first[first["height"] == root["height"]]}
            axes = {a: f for a, f in axes.items() if len(f) == 2}
            if axes:
                best = max(axes, key=lambda a: (axes[a]["logprob_drop"].max(), a == "rows"))
                largest = float(axes[best]["logprob_drop"].max())
                children = float(axes[best]["logprob_drop"].sum())
        sized = g.assign(size=g["height"] * g["width"])
        holds = sized[sized["logprob_drop"] >= parent / 2] if parent > 0 else sized.iloc[:0]
        small = holds.sort_values(["size", "logprob_drop", "row", "col"], ascending=[True, False, True, True])
        carrier = small.iloc[0] if len(small) else root
        n = int(carrier["height"] * carrier["width"])
        whole = int(root["height"] * root["width"])
        if parent <= 0:
            verdict = "none"
        elif n < whole and (n <= FEW_WEIGHTS or carrier["height"] == 1 or carrier["width"] == 1):
            verdict = "localised"
        elif children is not None and children < SYNERGY * parent:
            verdict = "synergistic"
        else:
            verdict = "distributed"
        out.append(
            {
                "site": site,
                "kind": kind,
                "probe_id": pid,
                "parent": parent,
                "largest_child": largest,
                "children_sum": children,
                "carrier": _region(carrier),
                "carrier_weights": n,
                "carrier_drop": float(carrier["logprob_drop"]),
                "mutants": len(g),
                "depth": int(g["level"].max()),
                "verdict": verdict,
            }
        )
    return pd.DataFrame(out, columns=list(COLUMNS))


def sentence(row) -> str:
    """One carriers row in words."""
    head = f"{row.site} {row.kind}, probe {row.probe_id}: the tile's effect is {row.parent:.3g}"
    if row.verdict == "none":
        return f"{head}: none, no positive effect to localise ({row.mutants} exact mutants)."
    halves = (
        ""
        if row.largest_child is None
        else f"; its stronger half carries {row.largest_child:.3g}, both halves {row.children_sum:.3g}"
    )
    return (
        f"{head}{halves}; the smallest region found carrying at least half is {row.carrier} "
        f"({row.carrier_weights} weights, {row.carrier_drop:.3g}): {row.verdict} "
        f"({row.mutants} exact mutants, {row.depth} levels)."
    )
