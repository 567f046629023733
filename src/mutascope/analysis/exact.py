"""Exact null distributions for the screen's tests, and the floors they can reach.

A p-value in a genome-wide table must mean what it says far into the tail:
a normal approximation of a rank statistic is not evidence at 1e-30, and a
test whose smallest attainable p is above its family's threshold cannot find
anything however strong the effect. So every test here comes with its exact
null distribution (or, beyond the sizes where that is cheap, a saddlepoint
tail, which keeps its relative accuracy far into the tail) and reports its
*floor*, the smallest p it could have given.

* :func:`signed_rank`: Wilcoxon's signed-rank test of paired differences,
  exact for any ties (mid-ranks), by dynamic programming over the doubled
  ranks; with the median difference and its distribution-free confidence
  interval (order statistics, the sign test's binomial quantiles).
* :func:`mcnemar`: the exact McNemar test of a paired binary call.
* :func:`rank_sum_tail`: the tail of a sum of independent discrete
  variables, each uniform over a multiset of (doubled) mid-ranks: the exact
  null of a rank-sum statistic whose labels are permuted within strata.
* :func:`hypergeom_sum_tail`: the tail of a sum of independent
  hypergeometric counts (overlaps stratified by matrix).
* :func:`permutations_for`: how many Monte Carlo permutations a family of
  ``m`` tests needs for its smallest p to survive BH on its own.
* :func:`bh`: Benjamini-Hochberg q-values (scipy's), NaN-aware.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import brentq
from scipy.special import expit, log_expit
from scipy.stats import binom, binomtest, false_discovery_control, hypergeom, norm, rankdata

# Above this many nonzero pairs the exact signed-rank distribution (O(n^3)) gives way to
# the Lugannani-Rice saddlepoint tail; SmolLM2's largest matrices have 216 tiles.
EXACT_SIGNED_RANK_MAX = 400


def bh(p) -> np.ndarray:
    """Benjamini-Hochberg q-values of ``p``; NaNs (tests that could not run) stay NaN
    and do not count in the family."""
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return q


def permutations_for(family: int, alpha: float = 0.05, minimum: int = 999) -> int:
    """Monte Carlo draws for a family of ``family`` tests: enough that a test at the
    floor, 1 / (n + 1), has a BH q of at most alpha / 4 even if it is the family's only
    hit (n + 1 >= 4 m / alpha), and never fewer than ``minimum``."""
    need = math.ceil(4 * max(1, family) / alpha) - 1
    return max(int(minimum), need)


# -- paired tests --------------------------------------------------------------


def _doubled_ranks(x: np.ndarray) -> np.ndarray:
    """Mid-ranks of ``x`` times two, as integers (mid-ranks are multiples of 1/2)."""
    return np.rint(2 * rankdata(x)).astype(np.int64)


def _signed_rank_pmf(a: np.ndarray) -> np.ndarray:
    """Null distribution of sum(a_i B_i) with B_i fair coins, a_i positive integers."""
    pmf = np.zeros(int(a.sum()) + 1)
    pmf[0] = 1.0
    top = 0
    for ai in a:
        pmf[ai : top + ai + 1] += pmf[: top + 1].copy()  # add before halving keeps one pass
        pmf[: top + ai + 1] *= 0.5
        top += ai
    return pmf


def _saddlepoint_upper(a: np.ndarray, s: int) -> float:
    """P(sum a_i B_i >= s) for s above the mean: Daniels' saddlepoint tail for a
    lattice variable (first continuity correction), on the lattice of span gcd(a)."""
    g = int(np.gcd.reduce(a))
    a, s = a.astype(float) / g, math.ceil(s / g)
    if s <= a.sum() / 2:
        return 1.0

    def k1(t):  # K'(t), K(t) = sum log((1 + e^(t a)) / 2)
        return float(np.sum(a * expit(t * a)))

    if s >= a.sum():
        return 0.5 ** len(a)  # only the all-positive outcome reaches the maximum
    hi = 1.0
    while k1(hi) < s:
        hi *= 2
    t = brentq(lambda u: k1(u) - s, 1e-12, hi, xtol=1e-14)
    k = float(np.sum(-log_expit(-t * a))) - len(a) * math.log(2)
    k2 = float(np.sum(a * a * expit(t * a) * expit(-t * a)))
    w = math.sqrt(max(0.0, 2 * (t * s - k)))
    u = -math.expm1(-t) * math.sqrt(k2)
    return float(min(1.0, max(0.0, norm.sf(w) + norm.pdf(w) * (1 / u - 1 / w))))


def signed_rank(d) -> dict:
    """Wilcoxon's signed-rank test of paired differences ``d`` (two-sided), exact.

    Zero differences are dropped (Wilcoxon's convention); ties share mid-ranks
    and the null is exact for them. Returns ``pairs`` (all), ``nonzero``,
    ``median_difference`` with a 95 % distribution-free interval
    (``ci_low, ci_high``: order statistics of d at the sign test's binomial
    quantiles), ``rank_biserial`` ((T+ - T-) / (T+ + T-), in [-1, 1], > 0:
    the first of the pair larger), ``p_value`` and ``p_floor`` (2 / 2^n, the
    smallest p these pairs allow). ``method`` says exact or saddlepoint.
    """
    d = np.asarray(d, dtype=float)
    d = d[~np.isnan(d)]
    out = {
        "pairs": len(d),
        "nonzero": 0,
        "median_difference": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "rank_biserial": np.nan,
        "p_value": np.nan,
        "p_floor": np.nan,
        "method": "exact",
    }
    if len(d) == 0:
        return out
    out["median_difference"] = float(np.median(d))
    out["ci_low"], out["ci_high"] = median_interval(d)
    nz = d[d != 0]
    n = len(nz)
    out["nonzero"] = n
    if n == 0:
        return out
    a = _doubled_ranks(np.abs(nz))
    total = int(a.sum())
    t_plus = int(a[nz > 0].sum())
    out["rank_biserial"] = (2 * t_plus - total) / total
    low_side = min(t_plus, total - t_plus)  # the distribution is symmetric about total / 2
    if n <= EXACT_SIGNED_RANK_MAX:
        pmf = _signed_rank_pmf(a)
        p = 2 * float(pmf[: low_side + 1].sum())
    else:
        out["method"] = "saddlepoint"
        p = 2 * _saddlepoint_upper(a, total - low_side)
    out["p_value"] = min(1.0, p)
    out["p_floor"] = min(1.0, 2 * 0.5**n)
    return out


def median_interval(d: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median of ``d``: order statistics at the
    binomial(n, 1/2) quantiles (coverage at least ``level``); NaN when n is too small."""
    d = np.sort(np.asarray(d, dtype=float))
    n = len(d)
    k = int(binom.ppf((1 - level) / 2, n, 0.5))  # P(X <= k - 1) <= (1 - level) / 2
    while k > 0 and binom.cdf(k - 1, n, 0.5) > (1 - level) / 2:
        k -= 1
    if k < 1:
        return np.nan, np.nan
    return float(d[k - 1]), float(d[n - k])


def mcnemar(first_only: int, second_only: int) -> tuple[float, float]:
    """Exact McNemar test: two-sided p of the discordant pairs' split, and its floor."""
    n = first_only + second_only
    if n == 0:
        return np.nan, np.nan
    return float(binomtest(first_only, n, 0.5).pvalue), min(1.0, 2 * 0.5**n)


# -- sums over strata ------------------------------------------------------------


def convolve_all(pmfs: list[np.ndarray]) -> np.ndarray:
    """The distribution of a sum of independent integer variables (pmfs from 0)."""
    out = np.ones(1)
    for p in sorted(pmfs, key=len):
        out = np.convolve(out, p)
    return out


def uniform_pmf(values: np.ndarray) -> np.ndarray:
    """The pmf (from 0) of one draw from the multiset of non-negative integers ``values``."""
    return np.bincount(values) / len(values)


def rank_sum_tail(strata_ranks: list[np.ndarray]) -> np.ndarray:
    """Upper-tail probabilities P(S >= s), s = 0, 1, ..., for S = sum over strata of one
    uniform draw from each stratum's doubled ranks (the null of a label permuted within
    strata)."""
    pmf = convolve_all([uniform_pmf(r) for r in strata_ranks])
    return np.minimum(1.0, np.cumsum(pmf[::-1])[::-1])


def hypergeom_sum_tail(strata: list[tuple[int, int, int]]) -> tuple[float, np.ndarray]:
    """Expected value and upper tail P(X >= x) of X = sum of independent hypergeometric
    overlaps, one per stratum ``(population, hits_a, hits_b)``."""
    pmfs, expected = [], 0.0
    for n, a, b in strata:
        if n == 0:
            continue
        k = np.arange(0, min(a, b) + 1)
        pmfs.append(hypergeom.pmf(k, n, a, b))
        expected += a * b / n
    pmf = convolve_all(pmfs)
    return expected, np.minimum(1.0, np.cumsum(pmf[::-1])[::-1])


def poisson_binomial_tail(probabilities) -> np.ndarray:
    """Upper tail P(X >= x) of a sum of independent Bernoulli variables."""
    pmfs = [np.array([1 - p, p]) for p in probabilities]
    pmf = convolve_all(pmfs)
    return np.minimum(1.0, np.cumsum(pmf[::-1])[::-1])
