"""The surrogate of an adaptive screen: every unscreened mutant's effect, estimated with an interval
from the mutants measured so far (docs/adaptive.md).

Protein engineers predict a mutational landscape from a few hundred measured
variants with a regressor on cheap features; a screen of a language model has
richer ones. For each probe, a gradient-boosted regressor (scikit-learn's
histogram GBM, chosen by measurement in docs/adaptive.md) learns the
measured effect (``logprob_drop``, on a signed log scale, since effects span
orders of magnitude) from:

* every numeric score column of the ``predictions`` table (so a new score is
  picked up without change), and the absolute value of each signed one;
* the layer's relative depth, the matrix type, the kind, the tile's row and column;
* the mean measured effect along the tile's row and along its column (same
  layer and matrix), counting only mutants of *other* chunks, so a training
  mutant sees what an unscreened one sees (its own chunk is never measured).

The 95 % interval is the prediction plus the 2.5 % and 97.5 % quantiles of
out-of-fold residuals on the audit sample: the audit is a uniform random
sample of chunks, so its residuals are those of a random unscreened chunk
(split conformal, with chunks as the exchangeable unit).

Fits are deterministic: a fixed ``random_state``, and one thread while fitting
(``threadpoolctl``), so the screen's thread count cannot change a bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

ID_COLUMNS = ("mutation_id", "probe_id")
FOLDS = 2  # out-of-fold residuals of the audit sample
LEVEL = 0.95
MIN_RESIDUALS = 20  # fewer audit residuals than this: an unbounded interval


def signed_log(y: Any) -> np.ndarray:
    """sign(y) * log1p(|y|): effects from -3 to several hundred nats on one scale."""
    y = np.asarray(y, dtype=float)
    return np.sign(y) * np.log1p(np.abs(y))


def signed_exp(z: Any) -> np.ndarray:
    """The inverse of :func:`signed_log`."""
    z = np.asarray(z, dtype=float)
    return np.sign(z) * np.expm1(np.abs(z))


def score_columns(predictions: pd.DataFrame | None) -> list[str]:
    """Every numeric score column of a predictions table (all but the keys)."""
    if predictions is None:
        return []
    return [c for c in predictions.columns if c not in ID_COLUMNS and pd.api.types.is_numeric_dtype(predictions[c])]


@dataclass(kw_only=True)
class Sites:
    """The mutants of a plan as arrays (one entry per mutation, in plan order) and their chunks."""

    mutation_id: np.ndarray
    layer: np.ndarray
    matrix: np.ndarray  # codes
    row: np.ndarray
    col: np.ndarray
    kind: np.ndarray  # codes
    chunk: np.ndarray
    n_layers: int

    @classmethod
    def of(cls, mutations: pd.DataFrame, chunk_size: int) -> Sites:
        """From a frame with ``mutation_id, layer, matrix, row, col, kind`` (one row per mutation)."""
        m = mutations.sort_values("mutation_id")
        ids = m["mutation_id"].to_numpy(dtype=np.int64)

        def codes(column: str) -> np.ndarray:
            values = m[column].astype(str)
            return np.asarray(pd.Categorical(values, categories=sorted(set(values))).codes, dtype=np.int64)

        return cls(
            mutation_id=ids,
            layer=m["layer"].to_numpy(dtype=np.int64),
            matrix=codes("matrix"),
            row=m["row"].to_numpy(dtype=np.int64),
            col=m["col"].to_numpy(dtype=np.int64),
            kind=codes("kind"),
            chunk=ids // chunk_size,
            n_layers=int(m["layer"].max()) + 1 if len(m) else 1,
        )

    def __len__(self) -> int:
        return len(self.mutation_id)


def _groups(*keys: np.ndarray) -> np.ndarray:
    """Dense group numbers of rows with equal integer ``keys``."""
    code = np.zeros(len(keys[0]), dtype=np.int64)
    for k in keys:
        code = code * (int(k.max()) + 1 if len(k) else 1) + k
    return np.unique(code, return_inverse=True)[1].reshape(-1)


def _neighbour_means(sites: Sites, z: np.ndarray, measured: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Mean of ``z`` over measured mutants on the same (layer, matrix, ``axis``), other chunks only."""
    group = _groups(sites.layer, sites.matrix, axis)
    gc = _groups(group, sites.chunk)
    zm = np.where(measured, z, 0.0)
    n = measured.astype(float)
    total = np.bincount(group, zm)[group]
    count = np.bincount(group, n)[group]
    own_total = np.bincount(gc, zm)[gc]
    own_count = np.bincount(gc, n)[gc]
    rest = count - own_count
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(rest > 0, (total - own_total) / rest, np.nan)


def features(sites: Sites, scores: np.ndarray | None, z: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """The design matrix of one probe: scores (and |score| of signed ones), depth, matrix, kind,
    row, col, and the row's and column's measured means."""
    cols: list[np.ndarray] = []
    if scores is not None:
        for j in range(scores.shape[1]):
            cols.append(scores[:, j])
            if np.nanmin(scores[:, j], initial=0.0) < 0:
                cols.append(np.abs(scores[:, j]))
    cols += [
        sites.layer / max(1, sites.n_layers - 1),
        sites.matrix,
        sites.kind,
        sites.row,
        sites.col,
        _neighbour_means(sites, z, measured, sites.row),
        _neighbour_means(sites, z, measured, sites.col),
    ]
    return np.column_stack(cols).astype(float)


def _regressor() -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        max_iter=80, learning_rate=0.15, max_leaf_nodes=15, min_samples_leaf=10, early_stopping=False, random_state=0
    )


@dataclass(kw_only=True)
class ProbeMap:
    """One probe's estimated map on the signed log scale: ``mean`` for every mutant (its own
    value where measured), and the out-of-fold audit ``residuals`` its interval comes from."""

    mean: np.ndarray
    measured: np.ndarray
    residuals: np.ndarray
    effect: np.ndarray  # the measured effects in nats (NaN where unmeasured), stored as measured

    def bounds(self, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
        """``(low, high)`` of every mutant (zero width where measured; unbounded with too few residuals)."""
        if len(self.residuals) >= MIN_RESIDUALS:
            lo_q, hi_q = np.quantile(self.residuals, [(1 - level) / 2, (1 + level) / 2])
        else:
            lo_q, hi_q = -np.inf, np.inf
        low = np.where(self.measured, self.mean, self.mean + lo_q)
        high = np.where(self.measured, self.mean, self.mean + hi_q)
        return low, high

    def exceedance(self, threshold: float) -> np.ndarray:
        """Each mutant's chance to lie above ``threshold`` (signed log scale): 0 or 1 where measured,
        else the share of audit residuals that would carry its estimate above it."""
        if len(self.residuals) < MIN_RESIDUALS:
            p = (self.mean > threshold).astype(float)
        else:
            ordered = np.sort(self.residuals)
            need = threshold - self.mean  # residual needed to cross
            p = 1.0 - np.searchsorted(ordered, need, side="right") / len(ordered)
        return np.where(self.measured, (self.mean > threshold).astype(float), p)


def fit_probe(
    sites: Sites, scores: np.ndarray | None, effect: np.ndarray, measured: np.ndarray, audit: np.ndarray
) -> ProbeMap:
    """One probe's estimated map (:class:`ProbeMap`).

    ``effect`` is the measured effect (NaN where unmeasured), ``measured`` which mutants
    are measured, ``audit`` which mutants belong to the uniform audit sample.
    """
    from threadpoolctl import threadpool_limits

    known = measured & np.isfinite(effect)
    z = signed_log(np.where(known, effect, 0.0))
    X = features(sites, scores, z, known)
    empty = ~np.isfinite(X[known]).any(axis=0)  # a column without a value to split on (no neighbours yet)
    X[:, empty] = 0.0
    with threadpool_limits(1):
        model = _regressor().fit(X[known], z[known])
        mean = model.predict(X)
        residuals = _audit_residuals(sites, X, z, known, audit & known)
    return ProbeMap(
        mean=np.where(known, z, mean), measured=known, residuals=residuals, effect=np.where(known, effect, np.nan)
    )


def _audit_residuals(sites: Sites, X: np.ndarray, z: np.ndarray, known: np.ndarray, audit: np.ndarray) -> np.ndarray:
    """Out-of-fold residuals of the audit mutants: audit chunks in ``FOLDS`` folds (by chunk
    number), each predicted by a model fit on every other measured mutant."""
    chunks = np.unique(sites.chunk[audit])
    if len(chunks) < 2:
        return np.empty(0)
    out = []
    for k in range(min(FOLDS, len(chunks))):
        held = np.isin(sites.chunk, chunks[k::FOLDS]) & audit
        train = known & ~held
        model = _regressor().fit(X[train], z[train])
        out.append(z[held] - model.predict(X[held]))
    return np.concatenate(out)


def probe_scores(predictions: pd.DataFrame | None, probe_id: str, mutation_ids: np.ndarray) -> np.ndarray | None:
    """The score columns of ``predictions`` for one probe, one row per mutation id (NaN where none)."""
    columns = score_columns(predictions)
    if predictions is None or not columns:
        return None
    p = predictions[predictions["probe_id"] == probe_id].set_index("mutation_id")[columns]
    return np.asarray(p.reindex(mutation_ids).to_numpy(dtype=float))


def fit_maps(
    sites: Sites,
    probe_ids: Sequence[str],
    predictions: pd.DataFrame | None,
    measured: pd.DataFrame,
    audit_chunks: Sequence[int],
) -> dict[str, ProbeMap]:
    """Every probe's :class:`ProbeMap` from ``measured`` (``mutation_id, probe_id, logprob_drop``
    of the mutants screened so far) and the audit's chunk numbers."""
    audit = np.isin(sites.chunk, np.asarray(sorted(audit_chunks), dtype=np.int64))
    maps = {}
    for pid in probe_ids:
        got = measured[measured["probe_id"] == pid].set_index("mutation_id")["logprob_drop"]
        effect = got.reindex(sites.mutation_id).to_numpy(dtype=float)
        is_measured = np.isin(sites.mutation_id, got.index.to_numpy())
        maps[pid] = fit_probe(sites, probe_scores(predictions, pid, sites.mutation_id), effect, is_measured, audit)
    return maps


def estimate_frame(sites: Sites, maps: dict[str, ProbeMap]) -> pd.DataFrame:
    """The ``estimates`` table: ``mutation_id, probe_id, effect, low, high, source`` (effects
    in nats; ``source`` ``measured`` or ``estimated``), plan order then probe order."""
    parts: list[pd.DataFrame] = []
    for pid, m in maps.items():
        low, high = m.bounds()
        parts.append(
            pd.DataFrame(
                {
                    "mutation_id": sites.mutation_id,
                    "probe_id": pid,
                    # measured rows keep their value bit for bit (no round trip through the log scale)
                    "effect": np.where(m.measured, m.effect, signed_exp(m.mean)),
                    "low": np.where(m.measured, m.effect, signed_exp(low)),
                    "high": np.where(m.measured, m.effect, signed_exp(high)),
                    "source": np.where(m.measured, "measured", "estimated"),
                    "_order": np.arange(len(sites)) * len(maps) + len(parts),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True).sort_values("_order", ignore_index=True)
    return frame.drop(columns="_order")
