"""Activation maps at the resolution of a mutagenesis screen: mean A per tile.

Pooling to the screen's tiles (64 x 64 by default, ragged edge tiles smaller,
as in :class:`~mutascope.plan.TileGrid`) lets an activation map sit beside
a mutagenesis map, and lets the two be compared tile by tile: the Spearman
rank correlation between a tile's mean activation and its NSM rate (share of
its (probe, kind) outcomes that were non-silent), joined on
``(layer, matrix, row, col)``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from ..errors import InputError, ResultsFileError
from .inputs import ALL
from .stats import ActivationAccumulator

__all__ = ["pool_tiles", "screen_correlation", "screen_nsm_rates", "tile_frame"]


def pool_tiles(a: torch.Tensor, tile: tuple[int, int] = (64, 64)) -> torch.Tensor:
    """Mean of ``a`` over each aligned ``tile`` block; edge blocks average only what they hold."""
    h, w = tile
    if h < 1 or w < 1:
        raise InputError(f"tile must be at least 1x1, got {h}x{w}")
    rows, cols = a.shape
    nr, nc = -(-rows // h), -(-cols // w)
    padded = torch.zeros(nr * h, nc * w, dtype=torch.float64)
    padded[:rows, :cols] = a
    sums = padded.reshape(nr, h, nc, w).sum(dim=(1, 3))
    rh = torch.full((nr,), float(h), dtype=torch.float64)
    rh[-1] = rows - (nr - 1) * h
    cw = torch.full((nc,), float(w), dtype=torch.float64)
    cw[-1] = cols - (nc - 1) * w
    return sums / (rh[:, None] * cw[None, :])


def tile_frame(
    acc: ActivationAccumulator, tile: tuple[int, int] = (64, 64), domains: Sequence[str] | None = None
) -> pd.DataFrame:
    """Mean A per tile: ``domain, layer, matrix, row, col, activation`` (tile units, like a screen)."""
    if domains is None:
        domains = acc.domains + ([ALL] if len(acc.domains) > 1 else [])
    parts = []
    for domain in domains:
        for layer in range(acc.layers):
            for matrix in acc.matrices:
                pooled = pool_tiles(acc.mean_map(domain, layer, matrix), tile).numpy()
                r, c = np.indices(pooled.shape)
                parts.append(
                    pd.DataFrame(
                        {
                            "domain": domain,
                            "layer": layer,
                            "matrix": matrix,
                            "row": r.ravel(),
                            "col": c.ravel(),
                            "activation": pooled.ravel(),
                        }
                    )
                )
    return pd.concat(parts, ignore_index=True)


def screen_nsm_rates(
    results_path: str | os.PathLike, *, tile: tuple[int, int] | None = None, model_hash: str | None = None
) -> pd.DataFrame:
    """NSM rate per site (over probes, per kind and ``kind='all'``) of a screen's results file.

    Refuses a screen of another model (content hash) or another tile size,
    since a join on tile coordinates would then pair unrelated weights.
    """
    from ..analysis.frame import site_frame
    from ..store import open_results

    with open_results(results_path) as results:
        runs = results.runs
        if runs.empty:
            raise ResultsFileError(f"{results_path}: holds no screen run")
        run = runs.iloc[0]
        if model_hash is not None and run["model_hash"] != model_hash:
            raise ResultsFileError(
                f"{results_path}: is a screen of another model ({run['model_id']}, hash "
                f"{str(run['model_hash'])[:12]}); "
                "activation tiles can only be compared with a screen of the same weights"
            )
        if tile is not None and (int(run["tile_h"]), int(run["tile_w"])) != tuple(tile):
            raise ResultsFileError(
                f"{results_path}: was screened with {run['tile_h']}x{run['tile_w']} tiles, not {tile[0]}x{tile[1]}; "
                "pass the same --tile"
            )
        frame = site_frame(results)
    if frame.empty:
        raise ResultsFileError(f"{results_path}: holds no outcomes yet")
    keys = ["layer", "matrix", "row", "col"]
    per_kind = frame.groupby([*keys, "kind"])["nsm"].agg(nsm_rate="mean", n_outcomes="count").reset_index()
    pooled = frame.groupby(keys)["nsm"].agg(nsm_rate="mean", n_outcomes="count").reset_index().assign(kind="all")
    return pd.concat([pooled, per_kind], ignore_index=True)


def screen_correlation(tiles: pd.DataFrame, rates: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spearman rho of tile activation vs NSM rate per (domain, kind); and the joined tiles.

    Only screened tiles take part (an inner join); rho is NaN when either
    side is constant, where a rank correlation is undefined.
    """
    from scipy.stats import spearmanr

    keys = ["layer", "matrix", "row", "col"]
    joined = tiles.merge(rates, on=keys, how="inner")
    rows = []
    for (domain, kind), part in joined.groupby(["domain", "kind"], sort=True):
        n = len(part)
        if n >= 3 and part["activation"].nunique() > 1 and part["nsm_rate"].nunique() > 1:
            res = spearmanr(part["activation"], part["nsm_rate"])
            rho, p = float(res.statistic), float(res.pvalue)
        else:
            rho = p = float("nan")
        rows.append((domain, kind, n, rho, p))
    table = pd.DataFrame(rows, columns=["domain", "kind", "n_tiles", "spearman_rho", "p_value"])
    return table, joined
