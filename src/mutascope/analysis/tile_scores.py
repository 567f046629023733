"""The tile as the unit: one score per tile, and the kinds that pair on a tile.

The max and the min mutant of one tile are not two independent samples: they
share the tile's position, its weights and whatever makes that part of the
matrix sensitive (their effect sizes correlate, strongly in some matrix
types, negatively in others). A test that treats them as two observations
counts each tile twice and overstates its evidence. So:

* tests of *where* sensitivity lies (enrichment, COPA profiles, re-ordering)
  reduce each tile to one score, the mean over its kinds of a per-kind score
  (:func:`tile_scores`);
* tests of *which kind* matters more (bias) compare the two kinds of a tile
  as one paired observation (:func:`paired`).

Per-kind scores, by readout (see :mod:`.readouts`): ``nsm``, the call (0 or 1);
``effect``, the effect's percentile rank among the mutants of that kind in
the same matrix (0 to 1), so that each kind counts equally however its
effects are scaled and a few huge effects cannot dominate; ``residual``, the
same percentile rank of the residual (the effect beyond the activation
baseline).

Which kinds: the screen's *main* kinds are ``max`` and ``min`` where the
frame has them (the paper's screen), otherwise every kind it has. Control
kinds (``sym:X``, ``noise:X``, ``zero``) are analysed as controls, never
pooled into the main map.
"""

from __future__ import annotations

import pandas as pd

from .readouts import check_readout, effect_rows, value_column

MATRIX_KEYS = ["probe_id", "layer", "matrix"]
TILE_KEYS = MATRIX_KEYS + ["row", "col"]
MAIN_PAIR = ("max", "min")


def main_kinds(frame: pd.DataFrame) -> list[str]:
    """``max`` and ``min`` where present, else every kind of the frame (in order of appearance)."""
    present = list(dict.fromkeys(frame["kind"])) if len(frame) else []
    main = [k for k in MAIN_PAIR if k in present]
    return main or present


def kind_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    """The pairs of kinds written at both signs of one size on the same tiles:
    (max, min), and (sym:x, sym:-x) for every size x of a size-matched control."""
    present = set(frame["kind"]) if len(frame) else set()
    pairs = [MAIN_PAIR] if set(MAIN_PAIR) <= present else []
    for kind in sorted(present):
        name, _, arg = kind.partition(":")
        if name == "sym" and arg and not arg.startswith("-") and f"sym:-{arg}" in present:
            pairs.append((kind, f"sym:-{arg}"))
    return pairs


def kind_scores(frame: pd.DataFrame, readout: str, kinds: list[str] | None = None) -> pd.DataFrame:
    """The rows of ``kinds`` (default: the main kinds) with a per-kind ``score``."""
    check_readout(readout)
    kinds = main_kinds(frame) if kinds is None else kinds
    sub = frame[frame["kind"].isin(kinds)]
    if readout == "nsm":
        return sub.assign(score=sub["nsm"].astype(float))
    sub = effect_rows(sub, readout)
    return sub.assign(score=sub.groupby(MATRIX_KEYS + ["kind"])[value_column(readout)].rank(pct=True))


def tile_scores(frame: pd.DataFrame, readout: str, kinds: list[str] | None = None) -> pd.DataFrame:
    """One row per tile: the mean per-kind ``score`` over its kinds (``kinds``: how many),
    with the tile's mutants' NSM count and median effect, for description."""
    scored = kind_scores(frame, readout, kinds)
    if scored.empty:
        return pd.DataFrame(columns=TILE_KEYS + ["score", "kinds", "nsm", "effect", "effect_per_token"])
    agg = {"score": ("score", "mean"), "kinds": ("score", "size"), "nsm": ("nsm", "sum")}
    if "effect" in scored.columns:
        agg["effect"] = ("effect", "median")
    if "effect_per_token" in scored.columns:
        agg["effect_per_token"] = ("effect_per_token", "median")
    return scored.groupby(TILE_KEYS, as_index=False, sort=True).agg(**agg)


def paired(frame: pd.DataFrame, pair: tuple[str, str], column: str) -> pd.DataFrame:
    """Tiles measured under both kinds of ``pair``: ``a`` and ``b`` hold ``column`` of each."""
    a, b = pair
    sub = frame[frame["kind"].isin(pair) & frame[column].notna()]
    if sub.empty:
        return pd.DataFrame(columns=TILE_KEYS + ["a", "b"])
    wide = sub.pivot_table(index=TILE_KEYS, columns="kind", values=column, aggfunc="first")
    if a not in wide.columns or b not in wide.columns:
        return pd.DataFrame(columns=TILE_KEYS + ["a", "b"])
    wide = wide[[a, b]].dropna().rename(columns={a: "a", b: "b"})
    return wide.reset_index()


def kind_values(frame: pd.DataFrame) -> pd.DataFrame:
    """The value each kind writes in each matrix (one per matrix and kind, from ``mutations``)."""
    if "value" not in frame.columns:
        return pd.DataFrame(columns=["layer", "matrix", "kind", "value"])
    return frame.groupby(["layer", "matrix", "kind"], as_index=False)["value"].first()
