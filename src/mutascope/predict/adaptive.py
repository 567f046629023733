"""The rounds of an adaptive screen, and what a stopped one has missed (docs/adaptive.md).

An adaptive screen keeps the plan's fixed chunk grid (so every measured
mutant's outcome is the plan-order screen's, bit for bit) and chooses which
chunks to run, round by round:

1. **the audit**: a seeded uniform random sample of chunks (``AUDIT_SHARE`` of
   the plan, at least ``AUDIT_MINIMUM`` mutants), screened first and used to
   calibrate intervals and to estimate what the screen misses;
2. **rounds** of ``ROUND_SHARE`` of the plan's chunks: the surrogate
   (:mod:`.surrogate`) estimates every unscreened mutant with an interval, and
   the next round is the chunks expected to hold the most mutants of the
   genome's top 1 % (per probe, above the audit's 99th percentile), until the
   budget is spent.

Each round is a function of the configuration and of the outcomes of the
rounds before it only, so the sequence is the same after a kill and resume,
at any thread count, and however a round's chunks were spread over workers.

**What was missed** (:func:`found_share`): the genome's top 1 % is the mutants
above its 99th percentile T. Every screened mutant is known, so the count
found above any threshold t, S(t), is exact; only T is unknown. The audit is
a uniform sample of chunks, so the share of it above T estimates 1 %, with a
standard error from the spread between audit chunks (mutants of one chunk
are correlated; a cluster estimate, never below the binomial one). The 95 %
interval for T runs between the audit quantiles at 1 % -/+ 1.96 standard
errors (Student's t over audit chunks), and since S falls as t rises, the share found lies between
S(T_high) and S(T_low) over 1 % of the plan; since one audit chunk can hold
most of the sample's top (effects cluster by tile), the interval also spans
the estimate with any one audit chunk left out (a jackknife over chunks). The NSM call is the same with
the total estimated as the plan's size times the audit's NSM rate (interval
from the same cluster standard error).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from .surrogate import ProbeMap

AUDIT_SHARE = 0.02
AUDIT_MINIMUM = 300
ROUND_SHARE = 0.01
TOP = 0.01
Z95 = 1.959964


# What the SmolLM2-135M atlas replay measured (docs/adaptive.md, "Measured": 51,840 mutants x 2
# probes, 24 greedy tokens, chunks of 32, audit seed 0), per budget (a share of the plan) and probe:
# the share of the exact top 1 % found by the adaptive screen, by predicted order and by random
# order at the same budget, and the Spearman of the estimated map over the unscreened mutants.
# `plan --budget` quotes it as an expectation from one model's replay, not a promise for another.
SMOLLM2_REPLAY: dict[float, dict[str, tuple[float, float, float, float]]] = {
    0.02: {"drosophila": (0.008, 0.539, 0.022, 0.576), "python": (0.013, 0.439, 0.021, 0.524)},
    0.05: {"drosophila": (0.528, 0.657, 0.049, 0.607), "python": (0.455, 0.638, 0.050, 0.564)},
    0.10: {"drosophila": (0.852, 0.802, 0.093, 0.617), "python": (0.792, 0.782, 0.093, 0.579)},
    0.20: {"drosophila": (0.967, 0.898, 0.213, 0.607), "python": (0.958, 0.881, 0.213, 0.566)},
}


def replay_budgets(share: float) -> list[float]:
    """The budgets of :data:`SMOLLM2_REPLAY` nearest to ``share`` of a plan: the one equal to it,
    else the two around it (one at either end of the measured range)."""
    measured = sorted(SMOLLM2_REPLAY)
    exact = [b for b in measured if math.isclose(b, share, rel_tol=1e-3)]
    if exact:
        return exact
    below = [b for b in measured if b < share]
    above = [b for b in measured if b > share]
    return ([below[-1]] if below else []) + ([above[0]] if above else [])


def parse_budget(text: str | int | None, n_mutations: int) -> int:
    """``--budget``: a count of mutants (``5000``) or a share of the plan (``10%``), as mutants."""
    if text is None:
        raise InputError("--order adaptive needs --budget (a count of mutants, or a share such as 10%)")
    raw = str(text).strip()
    try:
        if raw.endswith("%"):
            share = float(raw[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError
            return max(1, math.ceil(share * n_mutations))
        count = int(raw)
        if count < 1:
            raise ValueError
        return min(count, n_mutations)
    except ValueError:
        raise InputError(f"--budget {text!r} is not a count of mutants or a share in (0, 100]% (e.g. 10%)") from None


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """The fixed shape of an adaptive screen: its audit chunks and the size of each round."""

    audit: tuple[int, ...]
    round_chunks: int
    budget: int

    @classmethod
    def of(
        cls,
        chunks: Sequence[int],
        chunk_size: int,
        budget: int,
        seed: int = 0,
        audit_minimum: int | None = None,
        audit_share: float = AUDIT_SHARE,
    ) -> Schedule:
        """``chunks``: the plan's chunk numbers. The audit is ``audit_share`` of them (at least
        ``audit_minimum`` mutants, :data:`AUDIT_MINIMUM` unless given, at most the budget), drawn
        with ``seed``. A smaller minimum is for small plans (a tiny model's, in tests), where
        300 mutants would be the whole budget and leave no rounds."""
        ordered = np.asarray(sorted(chunks), dtype=np.int64)
        n = len(ordered)
        minimum = AUDIT_MINIMUM if audit_minimum is None else audit_minimum
        want = max(math.ceil(audit_share * n), math.ceil(minimum / chunk_size))
        want = min(n, want, max(1, math.ceil(budget / chunk_size)))
        audit = np.sort(np.random.default_rng(seed).choice(ordered, size=want, replace=False)) if n else ordered
        return cls(audit=tuple(int(c) for c in audit), round_chunks=max(1, math.ceil(ROUND_SHARE * n)), budget=budget)


def top_threshold(maps: dict[str, ProbeMap], audit: np.ndarray) -> dict[str, float]:
    """Per probe, the estimate of the genome's top-1 % threshold (signed log scale): the audit's
    99th percentile, raised to the 1 %-of-the-plan-th largest measured effect once the screen has
    measured that many (the genome's threshold can be no lower: that many lie above it already)."""
    out = {}
    for pid, m in maps.items():
        values = m.mean[audit & m.measured]
        tau = float(np.quantile(values, 1 - TOP)) if len(values) else float(np.quantile(m.mean, 1 - TOP))
        k = int(np.ceil(TOP * len(m.mean)))
        measured = np.sort(m.mean[m.measured])
        if len(measured) >= k:
            tau = max(tau, float(measured[-k]))
        out[pid] = tau
    return out


def chunk_scores(maps: dict[str, ProbeMap], chunk: np.ndarray, audit: np.ndarray) -> pd.Series:
    """Each chunk's score: the expected number of its (mutant, probe) rows above that probe's
    top-1 % threshold (:meth:`ProbeMap.exceedance`), indexed by chunk number."""
    tau = top_threshold(maps, audit)
    total = np.zeros(len(chunk))
    for pid, m in maps.items():
        total += m.exceedance(tau[pid])
    return pd.Series(total).groupby(chunk).sum()


def next_round(
    maps: dict[str, ProbeMap],
    chunk: np.ndarray,
    audit: np.ndarray,
    candidates: Sequence[int],
    sizes: dict[int, int],
    n_chunks: int,
    room: int,
) -> list[int]:
    """The next round: up to ``n_chunks`` candidate chunks with the largest scores (ties: plan
    order), fewer where ``room`` mutants of budget are left. Scores are rounded to 9 significant
    digits first, so a last-bit difference can never reorder chunks."""
    score = chunk_scores(maps, chunk, audit).reindex(sorted(candidates)).fillna(0.0)
    rounded = [float(f"{v:.9g}") for v in score.to_numpy()]
    order = sorted(range(len(score)), key=lambda i: (-rounded[i], int(score.index[i])))
    chosen: list[int] = []
    used = 0
    for i in order:
        if len(chosen) >= n_chunks or used >= room:
            break
        chosen.append(int(score.index[i]))
        used += sizes[int(score.index[i])]
    return sorted(chosen)


@dataclass(frozen=True, kw_only=True)
class Found:
    """The audited share of something found so far, with its 95 % interval."""

    what: str
    probe_id: str
    share: float
    low: float
    high: float

    def describe(self) -> str:
        return f"{self.probe_id}: {self.what} found {self.share:.0%} (95% CI {self.low:.0%}-{self.high:.0%})"


def _critical(k: int) -> float:
    """The two-sided 95 % critical value for a standard error from ``k`` audit chunks (Student's
    t with k - 1 degrees of freedom: a few dozen chunks make the normal's 1.96 too narrow)."""
    from scipy.stats import t

    return float(t.ppf(0.975, max(1, k - 1))) if k > 1 else Z95


def _cluster_se(hits: np.ndarray, sizes: np.ndarray, rate: float) -> float:
    """Standard error of a share estimated from ``hits`` of ``sizes`` mutants per audit chunk
    (a ratio estimator over chunks), never below the binomial one."""
    n, k = sizes.sum(), len(sizes)
    binomial = math.sqrt(max(rate * (1 - rate), 0.0) / max(n, 1))
    if k < 2:
        return binomial
    cluster = math.sqrt(float(((hits - rate * sizes) ** 2).sum()) / (k - 1) * k) / n
    return max(binomial, cluster)


def found_share(outcomes: pd.DataFrame, chunk_of: pd.Series, audit: Sequence[int], n_mutations: int) -> list[Found]:
    """The audit's estimate of the share of the genome's top 1 % (by ``logprob_drop``) and of
    its NSMs that the screened ``outcomes`` (``mutation_id, probe_id, nsm, logprob_drop``)
    found, per probe, with 95 % intervals (module docstring)."""
    out = []
    chunks = np.asarray(sorted(audit), dtype=np.int64)
    k_top = TOP * n_mutations
    for pid, part in outcomes.groupby("probe_id", sort=False):
        chunk = chunk_of.reindex(part["mutation_id"]).to_numpy()
        effect = part["logprob_drop"].to_numpy(dtype=float)
        nsm = part["nsm"].to_numpy(dtype=bool)
        in_audit = np.isin(chunk, chunks) & np.isfinite(effect)
        if not in_audit.any():
            continue
        sample = effect[in_audit]
        ordered = np.sort(effect[np.isfinite(effect)])

        def found_above(t: float, ordered: np.ndarray = ordered) -> float:
            return min(1.0, (len(ordered) - np.searchsorted(ordered, t, side="right")) / k_top)

        t_hat = float(np.quantile(sample, 1 - TOP))
        by_chunk = pd.DataFrame({"c": chunk[in_audit], "hit": sample > t_hat, "nsm": nsm[in_audit]})
        per = by_chunk.groupby("c").agg(n=("hit", "size"), hit=("hit", "sum"), nsm=("nsm", "sum"))
        sizes = per["n"].to_numpy(dtype=float)
        se = _cluster_se(per["hit"].to_numpy(dtype=float), sizes, TOP)
        z = _critical(len(sizes))
        upper_q, lower_q = 1 - TOP + z * se, 1 - TOP - z * se  # T between these audit quantiles
        low_share = found_above(float(np.quantile(sample, upper_q))) if upper_q < 1 else 0.0
        high_share = found_above(float(np.quantile(sample, lower_q))) if lower_q > 0 else 1.0
        # One audit chunk can hold most of the sample's top (effects cluster by tile): the interval
        # also spans the share with any one audit chunk left out of the threshold's estimate.
        sample_chunk = chunk[in_audit]
        for c in per.index if len(per) > 1 else ():
            t_c = float(np.quantile(sample[sample_chunk != c], 1 - TOP))
            share_c = found_above(t_c)
            low_share, high_share = min(low_share, share_c), max(high_share, share_c)
        out.append(Found(what="top 1%", probe_id=str(pid), share=found_above(t_hat), low=low_share, high=high_share))

        rate = float(per["nsm"].sum() / sizes.sum())
        se_n = _cluster_se(per["nsm"].to_numpy(dtype=float), sizes, rate)
        found = float(nsm.sum())

        def nsm_share(r: float, found: float = found) -> float:
            return 1.0 if r <= 0 else min(1.0, found / (r * n_mutations))

        out.append(
            Found(
                what="NSM",
                probe_id=str(pid),
                share=nsm_share(rate),
                low=nsm_share(rate + z * se_n),
                high=nsm_share(max(0.0, rate - z * se_n)),
            )
        )
    return out
