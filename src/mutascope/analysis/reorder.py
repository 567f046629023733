"""The re-ordered view of a matrix used to show Gate's 2-D asymmetry, cross-validated.

The paper re-ordered rows and columns without saying how. Sorting rows and
columns of a map by its *own* max-minus-min balance draws a corner-to-corner
gradient from any map, pure noise included (it sorts the noise), so such a
picture is no evidence. Here the order is always learnt on other data than
the map it is shown on:

* with two or more probes, each probe's map is shown in the order learnt on
  the next probe (the last on the first);
* with one probe, rows are sorted by their balance over the even tile
  columns and columns by their balance over the even tile rows, and only the
  held-out tiles (odd rows and odd columns) are shown.

A gradient that survives is structure shared by the two halves.
:func:`reorder_holdout` measures it: Spearman's correlation between the
order's key and the held-out balance, per layer and axis, and across layers
a sign test (:mod:`.layers`).

A tile's balance is the difference of its max and min per-kind scores
(:mod:`.tile_scores`): the NSM calls (-1, 0, 1) or the effect percentiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .frame import tile_map
from .layers import sign_test_over_layers
from .tile_scores import kind_scores

HALVES = "halves"


def _balance(
    frame: pd.DataFrame,
    probe_id: str,
    layer: int,
    matrix: str,
    readout: str,
    rows: pd.Index | None = None,
    cols: pd.Index | None = None,
) -> tuple[np.ndarray, pd.Index, pd.Index]:
    m = frame[(frame["probe_id"] == probe_id) & (frame["layer"] == layer) & (frame["matrix"] == matrix)]
    if m.empty:
        raise ValueError(f"no outcomes for probe {probe_id!r}, layer {layer}, matrix {matrix!r}")
    scored = kind_scores(m, readout, ["max", "min"])
    rows = pd.Index(sorted(m["row"].unique())) if rows is None else rows
    cols = pd.Index(sorted(m["col"].unique())) if cols is None else cols
    grid_max = np.nan_to_num(tile_map(scored[scored["kind"] == "max"], "score", rows=rows, cols=cols)[0])
    grid_min = np.nan_to_num(tile_map(scored[scored["kind"] == "min"], "score", rows=rows, cols=cols)[0])
    return grid_max - grid_min, rows, cols


def order_source(probes: list[str], probe_id: str) -> str:
    """Which probe's map orders ``probe_id``'s: the next probe, or the halves of a lone probe."""
    if len(probes) < 2:
        return HALVES
    return probes[(probes.index(probe_id) + 1) % len(probes)]


def reordered_map(
    frame: pd.DataFrame, probe_id: str, layer: int, matrix: str, order_from: str | None = None, readout: str = "nsm"
) -> pd.DataFrame:
    """Balance per tile of ``probe_id``, rows and columns sorted (descending) by the balance of
    ``order_from`` (another probe; default :func:`order_source`), or of the other half of the
    tiles (``"halves"``: only odd rows and columns are shown).

    Returned as a DataFrame indexed by the original tile row, columns by tile col;
    ``attrs["order_from"]`` says what the order was learnt on.
    """
    return _reordered(frame, probe_id, layer, matrix, order_from, readout)[0]


def _reordered(frame, probe_id, layer, matrix, order_from=None, readout="nsm"):
    """The view, the sorted row and column keys, and what the order was learnt on."""
    probes = list(dict.fromkeys(frame["probe_id"]))
    order_from = order_source(probes, probe_id) if order_from is None else order_from
    shown, rows, cols = _balance(frame, probe_id, layer, matrix, readout)
    if order_from == HALVES:
        even_r, odd_r = np.arange(len(rows)) % 2 == 0, np.arange(len(rows)) % 2 == 1
        even_c, odd_c = np.arange(len(cols)) % 2 == 0, np.arange(len(cols)) % 2 == 1
        row_key = shown[:, even_c].sum(axis=1)[odd_r]
        col_key = shown[even_r, :].sum(axis=0)[odd_c]
        shown, rows, cols = shown[np.ix_(odd_r, odd_c)], rows[odd_r], cols[odd_c]
    else:
        key, _, _ = _balance(frame, order_from, layer, matrix, readout, rows, cols)
        row_key, col_key = key.sum(axis=1), key.sum(axis=0)
    row_order = np.argsort(-row_key, kind="stable")
    col_order = np.argsort(-col_key, kind="stable")
    view = pd.DataFrame(shown[np.ix_(row_order, col_order)], index=rows[row_order], columns=cols[col_order])
    view.attrs["order_from"] = order_from
    return view, row_key[row_order], col_key[col_order]


def reordered_table(frame: pd.DataFrame, matrix: str = "gate", readout: str = "nsm") -> pd.DataFrame:
    """The cross-validated view of every ``matrix`` (per probe and layer) as a long table:
    tile row/col, their ranks in the sorted view, the tile's balance, and what the order
    was learnt on."""
    parts = []
    sub = frame[frame["matrix"] == matrix]
    for (probe, layer), g in sub.groupby(["probe_id", "layer"], sort=False):
        if not {"max", "min"} <= set(g["kind"]):
            continue
        view = reordered_map(sub[sub["layer"] == layer], probe, layer, matrix, readout=readout)
        source = view.attrs.pop("order_from")
        long = view.stack().rename("balance").reset_index()
        long.columns = ["row", "col", "balance"]
        long["row_rank"] = long["row"].map({r: i for i, r in enumerate(view.index)})
        long["col_rank"] = long["col"].map({c: i for i, c in enumerate(view.columns)})
        long[["probe_id", "layer", "matrix", "order_from"]] = [probe, layer, matrix, source]
        parts.append(long)
    cols = ["probe_id", "layer", "matrix", "order_from", "row", "col", "row_rank", "col_rank", "balance"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.nan
    return float(pd.Series(x).rank().corr(pd.Series(y).rank()))


def reorder_holdout(frame: pd.DataFrame, matrix: str = "gate", readout: str = "nsm") -> pd.DataFrame:
    """Does the learnt order carry over? Per probe, layer and axis: Spearman between the
    order's key and the shown map's own balance along that axis (``rho``; positive =
    the order generalises)."""
    rows = []
    sub = frame[frame["matrix"] == matrix]
    for (probe, layer), g in sub.groupby(["probe_id", "layer"], sort=False):
        if not {"max", "min"} <= set(g["kind"]):
            continue
        view, row_key, col_key = _reordered(sub[sub["layer"] == layer], probe, layer, matrix, readout=readout)
        values = view.to_numpy()
        source = view.attrs["order_from"]
        rows.append((probe, layer, matrix, source, "row", _spearman(row_key, values.sum(axis=1))))
        rows.append((probe, layer, matrix, source, "col", _spearman(col_key, values.sum(axis=0))))
    return pd.DataFrame(rows, columns=["probe_id", "layer", "matrix", "order_from", "axis", "rho"])


def reorder_holdout_by_type(table: pd.DataFrame) -> pd.DataFrame:
    """Across layers: is the held-out correlation positive more often than chance?"""
    return sign_test_over_layers(table, "rho", ["probe_id", "matrix", "axis"])
