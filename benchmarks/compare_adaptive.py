"""A real adaptive screen against the complete screen of the same plan (docs/adaptive.md).

Usage:
    PYTHONPATH=src python benchmarks/compare_adaptive.py ADAPTIVE.duckdb --exact docs/atlas-gemma/tables

``--exact`` is a complete screen's compact export (its ``tiles.parquet``: every max/min mutant's
outcome per probe). Mutants are matched by site (layer, matrix, row, col, kind), never by id.
Per probe it prints: how many mutants the adaptive screen measured, whether their outcomes are the
complete screen's (the NSM call and ``logprob_drop``, bit for bit), the share of the complete
screen's top 1 % (by ``logprob_drop``) and of its NSMs that the adaptive screen measured, and the
Spearman of the estimated map with the exact effect over the mutants it did not measure. The
audit's own estimates of those shares are what the screen printed at its end.
"""

from __future__ import annotations

import argparse

import duckdb
import numpy as np
import pandas as pd
from scipy.stats import spearmanr

SITE = ["layer", "matrix", "row", "col", "kind"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("adaptive")
    ap.add_argument("--exact", required=True)
    args = ap.parse_args()
    with duckdb.connect(args.adaptive, read_only=True) as con:
        mutations = con.execute('SELECT mutation_id, layer, matrix, "row", col, kind FROM mutations').df()
        outcomes = con.execute("SELECT mutation_id, probe_id, divergence, logprob_drop FROM outcomes").df()
        estimates = con.execute("SELECT mutation_id, probe_id, effect, source FROM estimates").df()
    exact = pd.read_parquet(f"{args.exact}/tiles.parquet")
    n = len(mutations)
    print(f"{args.adaptive}: {n} mutants in the plan; exact screen {args.exact}")
    for probe, truth in exact.groupby("probe_id"):
        truth = mutations.merge(truth[[*SITE, "nsm", "logprob_drop"]], on=SITE, how="left")
        if truth.logprob_drop.isna().any():
            raise SystemExit(f"{truth.logprob_drop.isna().sum()} mutants of the plan are not in {args.exact}")
        measured = truth.merge(outcomes[outcomes.probe_id == probe], on="mutation_id", suffixes=("", "_a"))
        same = (measured.divergence.notna() == measured.nsm) & (measured.logprob_drop_a == measured.logprob_drop)
        top = set(truth.nlargest(int(np.ceil(0.01 * n)), "logprob_drop").mutation_id)
        nsms = set(truth[truth.nsm].mutation_id)
        seen = set(measured.mutation_id)
        rest = truth[~truth.mutation_id.isin(seen)].merge(
            estimates[(estimates.probe_id == probe) & (estimates.source == "estimated")], on="mutation_id"
        )
        rho = spearmanr(rest.effect, rest.logprob_drop).statistic if len(rest) > 2 else float("nan")
        print(
            f"{probe}: measured {len(seen)} ({len(seen) / n:.1%}); outcomes equal to the exact screen's: "
            f"{int(same.sum())} of {len(measured)}; top 1 % found {len(top & seen)} of {len(top)} "
            f"({len(top & seen) / len(top):.1%}); NSMs found {len(nsms & seen)} of {len(nsms)} "
            f"({len(nsms & seen) / max(1, len(nsms)):.1%}); Spearman of the estimate with the exact "
            f"effect over {len(rest)} unmeasured: {rho:.3f}"
        )


if __name__ == "__main__":
    main()
