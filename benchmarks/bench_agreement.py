"""How well the predicted map agrees with an exact screen, in figures for docs/predicted-maps.md.

For a results file that has both outcomes and predictions (``mutascope predict --out FILE``):
the agreement table of every score over all matrices, and per matrix type for the predicted
effect; then, per probe, the share of the exact top 1 % of effects found after screening
1 %, 5 %, 10 %, 25 % and 50 % of the plan in predicted order (each mutant, and chunks as a
screen runs them), plan order and random order.

    python benchmarks/bench_agreement.py runs/atlas/atlas.duckdb
"""

from __future__ import annotations

import argparse

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    args = parser.parse_args()

    from mutascope.analysis.frame import site_frame
    from mutascope.predict import agreement
    from mutascope.report.prediction_figures import recall_curves
    from mutascope.store import open_results

    with open_results(args.results) as results:
        frame = site_frame(results, "logprob_drop")
        predictions = results.predictions
    if predictions is None:
        raise SystemExit(f"{args.results} has no predictions: run `mutascope predict ... --out {args.results}`")
    table = agreement(frame, predictions)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 200)
    show = ["score", "probe_id", "matrix", "mutants", "spearman", "spearman_low", "spearman_high", "auc",
            "recall_1", "recall_1_low", "recall_1_high", "recall_10"]
    print("all matrices:")
    print(table[table["matrix"] == "all"][show].round(3).to_string(index=False))
    print("\npredicted |effect| by matrix type:")
    print(table[(table["score"].isin(["predicted", "predicted_abs"])) & (table["matrix"] != "all")][show]
          .round(3).to_string(index=False))
    curves = recall_curves(frame, predictions)
    at = [0.01, 0.05, 0.10, 0.25, 0.50]
    rows = []
    for (probe, order), g in curves.groupby(["probe_id", "order"], sort=False):
        rows.append([probe, order, *[float(g.loc[(g["screened"] - a).abs().idxmin(), "found"]) for a in at]])
    print("\nshare of the exact top 1 % found after screening a share of the plan:")
    print(pd.DataFrame(rows, columns=["probe", "order", *[f"{int(100 * a)} %" for a in at]]).round(3)
          .to_string(index=False))


if __name__ == "__main__":
    main()
