"""An adaptive screen simulated on a complete screen's compact export (the SmolLM2 atlas,
docs/atlas/tables), beside predicted and random order at the same budgets (docs/adaptive.md).

The simulation calls the same functions the screen does (:mod:`mutascope.predict.adaptive`,
:mod:`mutascope.predict.surrogate`) on the export's rows instead of a results file, so a
run of the whole sequence of rounds takes minutes, not a screen's hours. At each budget it
prints: the share of the exact top 1 % (per probe, by ``logprob_drop``) found, the audit's
estimate of that share with its 95 % interval and whether the interval covers the truth, the
same for the NSM call, the Spearman of the estimated map with the exact effect over the
unscreened mutants, and the surrogate fit + chunk choice time per round; then predicted order
(chunks by |local| or |predicted|, what ``--order predicted`` runs) and random order (the mean
over 20 seeded chunk orders) at the same budgets.

Usage (one thread, from the repository root):
    PYTHONPATH=src python benchmarks/bench_adaptive.py --probes drosophila --budgets 2,5,10,20 \
        --chunk-size 32 [--tables docs/atlas/tables] [--seed 0]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import mutascope  # noqa: F401  (MKL's strict mode before torch or numpy products)
from mutascope.predict.adaptive import Schedule, found_share, next_round
from mutascope.predict.order import predicted_order
from mutascope.predict.surrogate import Sites, estimate_frame, fit_maps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", default="docs/atlas/tables")
    ap.add_argument("--probes", default="drosophila")
    ap.add_argument("--budgets", default="2,5,10,20")
    ap.add_argument("--chunk-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    probes = args.probes.split(",")
    budgets = sorted(float(b) for b in args.budgets.split(","))
    tiles = pd.read_parquet(f"{args.tables}/tiles.parquet")
    pred = pd.read_parquet(f"{args.tables}/predictions.parquet")
    tiles = tiles[tiles.probe_id.isin(probes)].reset_index(drop=True)
    pred = pred[pred.probe_id.isin(probes)].reset_index(drop=True)
    muts = tiles.drop_duplicates("mutation_id")[["mutation_id", "layer", "matrix", "row", "col", "kind"]]
    size = args.chunk_size
    sites = Sites.of(muts, size)
    n = len(sites)
    chunk_of = pd.Series(sites.chunk, index=sites.mutation_id)
    sizes = {int(c): int(k) for c, k in chunk_of.value_counts().items()}
    exact = {
        p: tiles[tiles.probe_id == p].set_index("mutation_id")["logprob_drop"].reindex(sites.mutation_id)
        for p in probes
    }
    top = {p: set(e.nlargest(int(np.ceil(0.01 * n))).index) for p, e in exact.items()}
    nsm_all = {p: int(tiles[(tiles.probe_id == p) & tiles.nsm].shape[0]) for p in probes}
    print(f"{n} mutants, {len(sizes)} chunks of {size}; probes {probes}; top 1 % = {len(top[probes[0]])} mutants")

    def truth(screened: set[int], p: str) -> float:
        return len(top[p] & screened) / len(top[p])

    def evaluate(label: str, chosen: list[int], audit: tuple[int, ...], fit_s: list[float]) -> None:
        ids = set(chunk_of.index[chunk_of.isin(chosen)])
        got = tiles[tiles.mutation_id.isin(ids)]
        maps = fit_maps(sites, probes, pred, got, audit)
        est = estimate_frame(sites, maps)
        found = {(f.what, f.probe_id): f for f in found_share(got, chunk_of, audit, n)}
        for p in probes:
            e = est[est.probe_id == p].set_index("mutation_id")["effect"]
            un = ~np.isin(sites.mutation_id, list(ids))
            rho = spearmanr(e.to_numpy()[un], exact[p].to_numpy()[un]).statistic
            f, g = found[("top 1%", p)], found[("NSM", p)]
            t = truth(ids, p)
            nt = int(got[(got.probe_id == p) & got.nsm].shape[0]) / nsm_all[p]
            print(
                f"{label} {p}: screened {len(ids) / n:.1%}; top 1% found {t:.1%}; audit {f.share:.1%} "
                f"({f.low:.1%}-{f.high:.1%}) covers={f.low <= t <= f.high}; NSM found {nt:.1%}, audit "
                f"{g.share:.1%} ({g.low:.1%}-{g.high:.1%}) covers={g.low <= nt <= g.high}; "
                f"Spearman unscreened {rho:.3f}; fit+choice {np.mean(fit_s) if fit_s else 0:.1f} s/round",
                flush=True,
            )

    for budget in budgets:  # each budget its own run, as `screen --budget` would do it
        b = int(np.ceil(budget / 100 * n))
        schedule = Schedule.of(sorted(sizes), size, b, args.seed)
        audit_mask = np.isin(sites.chunk, schedule.audit)
        sequence = list(schedule.audit)
        fit_s: list[float] = []
        while True:
            used = sum(sizes[c] for c in sequence)
            if used >= b:
                break
            got = tiles[tiles.mutation_id.isin(chunk_of.index[chunk_of.isin(sequence)])]
            t0 = time.perf_counter()
            maps = fit_maps(sites, probes, pred, got, schedule.audit)
            taken = set(sequence)
            candidates = [c for c in sizes if c not in taken]
            sequence += next_round(maps, sites.chunk, audit_mask, candidates, sizes, schedule.round_chunks, b - used)
            fit_s.append(time.perf_counter() - t0)
        evaluate(f"adaptive {budget:g}%", sequence, schedule.audit, fit_s)

    for p in probes:
        pp = pred[pred.probe_id == p]
        chunks = [list(chunk_of.index[chunk_of == c]) for c in sorted(sizes)]
        order = predicted_order(chunks, pp)
        rng = np.random.default_rng(args.seed)
        randoms = [rng.permutation(len(chunks)) for _ in range(20)]
        for budget in budgets:
            b = budget / 100 * n

            def first(order_: list[int] | np.ndarray, b: float = b, chunks: list = chunks) -> set[int]:
                ids: set[int] = set()
                for i in order_:
                    if len(ids) >= b:
                        break
                    ids |= set(chunks[i])
                return ids

            r = np.mean([truth(first(o), p) for o in randoms])
            print(f"predicted {budget:g}% {p}: top 1% found {truth(first(order), p):.1%}; random order {r:.1%}")


if __name__ == "__main__":
    main()
