"""Claims about a matrix *type* ("`gate` columns are complementary", "`gate` is
min-biased") tested across layers, not layer by layer.

A per-layer test of a weak but consistent effect fails in every layer, and a
count of per-layer hits is not a test. Here the unit is the layer: each
layer of a matrix type contributes the sign of its statistic (a COPA
correlation's excess over its null, a bias's rank-biserial correlation), and
a two-sided sign test asks whether one sign dominates over the layers.
**Family**: every matrix type x axis (or kind pair) x probe of the table, BH
over it.

**Neighbouring layers are not independent** (docs/methods.md, "Tests over
layers"). Adjacent layers' maps correlate (r 0.81-0.84 for SmolLM2's `gate`
column balance), so a binomial sign test, which counts 30 layers as 30
independent coins, overstates the evidence: on a Gaussian AR(1) with r =
0.84 it calls about half of all pure-noise series at p < 0.05. The count of
positive layers is therefore referred to its distribution under a Gaussian
AR(1) across layers (:func:`ar1_sign_null`, simulated with a fixed seed),
whose lag-1 correlation is estimated from the table (:func:`layer_correlation`:
each group demeaned so that a consistent effect is not mistaken for
dependence, and corrected for the small-sample bias of a lag-1 estimate).
Each group uses the larger of its own estimate and the one pooled over the
family: the pooled one is steadier, but groups differ (SmolLM2's bias
statistics: 0.27-0.85 by group), and a group more dependent than the family
must not borrow the family's lower figure. This is an effective sample size done exactly for a count
of signs. Contiguous-block sign flips were the alternative; they stay
anti-conservative at this correlation (blocks of 5 layers: 15 % of noise
series at p < 0.05), and thinning to every third layer leaves r^3 = 0.59
between the kept layers. ``p_floor`` is the p of the most extreme count
(every layer of one sign), which for strongly dependent layers is far above
the binomial 2 / 2^n.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from .exact import bh

COLUMNS = ["layers", "positive", "negative", "median", "layer_r", "p_value", "p_floor", "q_value"]
NULL_DRAWS = 100_000  # AR(1) series per (layers, r): p resolution 1e-5
NULL_SEED = 20261205
MAX_R = 0.99


@lru_cache(maxsize=256)
def ar1_sign_null(n: int, r: float, draws: int = NULL_DRAWS) -> np.ndarray:
    """|positive - negative| of ``draws`` Gaussian AR(1) series of ``n`` layers with lag-1
    correlation ``r`` (fixed seed: the same table always gets the same p)."""
    rng = np.random.default_rng(NULL_SEED)
    z = rng.standard_normal(draws)
    positive = (z > 0).astype(np.int64)
    innovation = np.sqrt(1 - r * r)
    for _ in range(1, n):
        z = r * z + innovation * rng.standard_normal(draws)
        positive += z > 0
    out = np.abs(2 * positive - n)
    out.flags.writeable = False
    return out


def layer_correlation(series: list[np.ndarray]) -> float:
    """Lag-1 correlation of a statistic between adjacent layers, pooled over ``series``
    (one array per group, in layer order), each demeaned; corrected for the downward bias
    of a lag-1 estimate from ``m`` points (r + (1 + 4 r) / m, m the mean length; Kendall's
    first-order bias) and clipped to [0, 0.99]. 0 when there are too few layers to estimate it."""
    num = den = 0.0
    points = []
    for v in series:
        v = v[np.isfinite(v)]
        if len(v) < 3:
            continue
        d = v - v.mean()
        num += float((d[1:] * d[:-1]).sum())
        den += float((d * d).sum())
        points.append(len(v))
    if not points or den <= 0:
        return 0.0
    m = float(np.mean(points))
    r = num / den
    r += (1 + 4 * r) / m
    return float(np.clip(r, 0.0, MAX_R))


def sign_p(positive: int, negative: int, r: float) -> tuple[float, float]:
    """Two-sided p of ``positive`` against ``negative`` layers under an AR(1) across layers with
    lag-1 correlation ``r``, and its floor (the p of all layers on one side)."""
    n = positive + negative
    if n == 0:
        return np.nan, np.nan
    null = ar1_sign_null(n, round(r, 2))
    k = abs(positive - negative)
    total = len(null) + 1
    return (1 + int((null >= k).sum())) / total, (1 + int((null >= n).sum())) / total


def sign_test_over_layers(table: pd.DataFrame, value: str, by: list[str], layer_r: float | None = None) -> pd.DataFrame:
    """One row per group of ``by`` (e.g. probe, matrix, axis): the signs of ``value`` over its
    layers, tested against an AR(1) across layers (``layer_r``: its lag-1 correlation; None:
    for each group the larger of its own and the family's pooled :func:`layer_correlation`,
    stated in the ``layer_r`` column)."""
    if table.empty:
        return pd.DataFrame(columns=by + COLUMNS)
    groups = []
    for key, g in table.groupby(by, sort=False):
        if "layer" in g:
            g = g.sort_values("layer")
        v = g[value].to_numpy(dtype=float)
        groups.append((key, v[np.isfinite(v)]))
    pooled = layer_correlation([v for _, v in groups]) if layer_r is None else float(layer_r)
    rows = []
    for key, v in groups:
        r = pooled if layer_r is not None else max(pooled, layer_correlation([v]))
        pos, neg = int((v > 0).sum()), int((v < 0).sum())
        p, floor = sign_p(pos, neg, r)
        median = float(np.median(v)) if len(v) else np.nan
        rows.append((*np.atleast_1d(key), len(v), pos, neg, median, r, p, floor))
    out = pd.DataFrame(rows, columns=by + COLUMNS[:-1])
    out["q_value"] = bh(out["p_value"].to_numpy())
    return out


def bias_by_type(bias_table: pd.DataFrame) -> pd.DataFrame:
    """Bias per matrix type over layers, with how often the larger value was the first kind."""
    if bias_table.empty:
        return pd.DataFrame(columns=["probe_id", "matrix", "pair"] + COLUMNS)
    stat = "rank_biserial" if "rank_biserial" in bias_table else "_balance"
    t = bias_table
    if stat == "_balance":
        t = t.assign(_balance=(t["a_only"] - t["b_only"]).astype(float))
    out = sign_test_over_layers(t, stat, ["probe_id", "matrix", "pair"])
    calls = t.assign(
        _larger=t["size_ratio"] > 1,
        _a=t["bias"] == t["kind_a"],
        _b=t["bias"] == t["kind_b"],
        _against=(t["bias"] != "none") & (t["larger"] != "equal") & (t["bias"] != t["larger"]),
    )
    counts = (
        calls.groupby(["probe_id", "matrix", "pair"], sort=False)
        .agg(
            a_larger=("_larger", "sum"),
            called_a=("_a", "sum"),
            called_b=("_b", "sum"),
            called_against_size=("_against", "sum"),
        )
        .reset_index()
    )
    return out.merge(counts, on=["probe_id", "matrix", "pair"], how="left")
