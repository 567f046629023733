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
AR(1) across layers (:func:`ar1_sign_null`, simulated with a fixed seed).
Its lag-1 correlation is each group's own (:func:`layer_correlation`) or the
family's (:func:`family_layer_correlation`), whichever is larger.

The family's figure is an upper bound, not a point estimate, for two reasons
measured on noise maps whose tiles are an AR(1) across 30 layers at r 0.84
(issue 32): a lag-1 correlation from 30 layers is biased low and scattered
(a few groups give a family little to pool), and a per-layer statistic that
is a sum of thresholded or multiplied tiles (an NSM count, a correlation) is
not an AR(1) itself: its correlation decays more slowly than its lag-1 value
implies (lag 1, 2, 3: 0.46, 0.34, 0.26 for the NSM bias count), and an AR(1)
null fitted at lag 1 understated its sign count's spread (family-wise rate
0.17 against 0.05). So the family's figure is the largest AR(1) correlation
implied by lags 1 to 3 (r_k^(1/k), each bias-corrected), raised by its
one-sided 99 % sampling margin (2.326 sqrt((1 - r^2) / points)). This is an
effective sample size done exactly for a count of signs. Contiguous-block
sign flips were the alternative; they stay anti-conservative at this
correlation (blocks of 5 layers: 15 % of noise series at p < 0.05), and
thinning to every third layer leaves r^3 = 0.59 between the kept layers.
``p_floor`` is the p of the most extreme count (every layer of one sign),
which for strongly dependent layers is far above the binomial 2 / 2^n.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from .exact import bh, poisson_binomial_tail

COLUMNS = ["layers", "positive", "negative", "median", "layer_r", "p_value", "p_floor", "q_value"]
NULL_DRAWS = 100_000  # AR(1) series per (layers, r): p resolution 1e-5
NULL_SEED = 20261205
MAX_R = 0.99
FAMILY_LAGS = 3  # lags whose implied AR(1) correlation bounds the family's
MARGIN_Z = 2.326  # one-sided 99 % sampling margin on the family's correlation


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


def threshold_count_p(top: int, chance: np.ndarray, r: float, draws: int = NULL_DRAWS) -> tuple[float, float]:
    """One-sided p of ``top`` or more hits among layers whose hit probabilities are ``chance``
    (in layer order) when hits are a latent Gaussian AR(1) across layers with lag-1 correlation
    ``r`` crossing each layer's threshold (``z > Phi^-1(1 - chance)``), and its floor (the p of
    every layer a hit). With ``r`` 0 this is the exact Poisson-binomial tail; with ``r`` above 0
    neighbouring layers' hits come together, as a count of layers in which one axis ranks first
    does when the layers' maps are alike, and the tail is simulated (``draws`` series, fixed seed:
    a p of ``1 / draws`` is the simulation's resolution)."""
    from scipy.stats import norm

    chance = np.asarray(chance, dtype=float)
    n = len(chance)
    if n == 0:
        return 1.0, 1.0
    if r <= 0:
        tail = poisson_binomial_tail(chance)
        return float(tail[min(top, n)]), float(tail[n])
    rng = np.random.default_rng(NULL_SEED)
    thresholds = norm.isf(chance)
    z = rng.standard_normal(draws)
    hits = (z > thresholds[0]).astype(np.int64)
    innovation = np.sqrt(1 - r * r)
    for t in thresholds[1:]:
        z = r * z + innovation * rng.standard_normal(draws)
        hits += z > t
    resolution = 1 / draws
    p = max(float((hits >= top).mean()), resolution)
    floor = max(float((hits >= n).mean()), resolution)
    return p, floor


def _autocovariances(series: list[np.ndarray], lags: int) -> tuple[np.ndarray, float, list[int]]:
    """Pooled over ``series`` (one array per group, in layer order, each demeaned, at least 3
    finite layers): the lag-k cross products (index k, 1..``lags``), the sum of squares, and each
    used series' length."""
    num = np.zeros(lags + 1)
    den = 0.0
    points = []
    for v in series:
        v = v[np.isfinite(v)]
        if len(v) < 3:
            continue
        d = v - v.mean()
        for k in range(1, min(lags, len(v) - 2) + 1):
            num[k] += float((d[k:] * d[:-k]).sum())
        den += float((d * d).sum())
        points.append(len(v))
    return num, den, points


def layer_correlation(series: list[np.ndarray]) -> float:
    """Lag-1 correlation of a statistic between adjacent layers, pooled over ``series``
    (one array per group, in layer order), each demeaned; corrected for the downward bias
    of a lag-1 estimate from ``m`` points (r + (1 + 4 r) / m, m the mean length; Kendall's
    first-order bias) and clipped to [0, 0.99]. 0 when there are too few layers to estimate it."""
    num, den, points = _autocovariances(series, 1)
    if not points or den <= 0:
        return 0.0
    m = float(np.mean(points))
    r = num[1] / den
    r += (1 + 4 * r) / m
    return float(np.clip(r, 0.0, MAX_R))


def family_layer_correlation(series: list[np.ndarray], lags: int = FAMILY_LAGS, z: float = MARGIN_Z) -> float:
    """An upper bound on the layer-to-layer correlation shared by ``series`` (one array per
    group of a family, in layer order): the largest AR(1) correlation implied by lags 1 to
    ``lags`` of the pooled, demeaned autocorrelation (r_k^(1/k), each raised by the lag-1
    estimate's bias correction (1 + 4 r_1) / m), plus ``z`` standard errors
    (sqrt((1 - r^2) / points)); clipped to [0, 0.99]. A statistic whose correlation decays
    more slowly than an AR(1)'s (a sum of thresholded tiles) is then not read as less
    dependent than it is (module docstring)."""
    num, den, points = _autocovariances(series, lags)
    if not points or den <= 0:
        return 0.0
    m = float(np.mean(points))
    r1 = num[1] / den
    correction = (1 + 4 * max(r1, 0.0)) / m
    best = 0.0
    for k in range(1, lags + 1):
        rk = num[k] / den + correction
        if num[k] != 0 and rk > 0:
            best = max(best, rk ** (1 / k))
    best = min(best, MAX_R)
    best += z * np.sqrt((1 - best * best) / sum(points))
    return float(np.clip(best, 0.0, MAX_R))


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
    for each group the larger of its own :func:`layer_correlation` and the family's
    :func:`family_layer_correlation`, stated in the ``layer_r`` column)."""
    if table.empty:
        return pd.DataFrame(columns=by + COLUMNS)
    groups = []
    for key, g in table.groupby(by, sort=False):
        if "layer" in g:
            g = g.sort_values("layer")
        v = g[value].to_numpy(dtype=float)
        groups.append((key, v[np.isfinite(v)]))
    pooled = family_layer_correlation([v for _, v in groups]) if layer_r is None else float(layer_r)
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
