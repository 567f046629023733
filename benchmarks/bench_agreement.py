"""How well the predicted map agrees with an exact screen, in figures for docs/predicted-maps.md.

For a results file that has both outcomes and predictions (``mutascope predict --out FILE``), or
a file with predictions only plus the exact effects of the same plan as a Parquet export
(``--exact``, e.g. the atlas's ``docs/atlas/tables/tiles.parquet``, whose mutation ids and sites
must match the file's): the agreement table of every score over all matrices, and per matrix type
for both estimates (first order ``predicted`` and ``local``); then, per probe, the share of the
exact top 1 % of effects found after screening 1 %, 5 %, 10 %, 25 % and 50 % of the plan in
predicted order (each mutant, and chunks as a screen runs them, ranked by each estimate), plan
order and random order; and the issue-30 goals per probe and estimate. Both modes go through the
same functions (``agreement``, ``recall_curves``); only the source of the exact effects differs.

    python benchmarks/bench_agreement.py runs/atlas/atlas.duckdb
    python benchmarks/bench_agreement.py /tmp/atlas-predict.duckdb --exact docs/atlas/tables/tiles.parquet
"""

from __future__ import annotations

import argparse

import pandas as pd

SITE = ["mutation_id", "layer", "matrix", "row", "col", "kind"]
AT = [0.01, 0.05, 0.10, 0.25, 0.50]


def exact_frame(path: str, results) -> pd.DataFrame:
    """The site frame's columns the agreement needs, from an exported tiles table, checked against
    the file's own mutations (same ids, same sites)."""
    tiles = pd.read_parquet(path)
    mutations = results.mutations[SITE]
    sites = tiles[SITE].drop_duplicates("mutation_id")
    check = mutations.merge(sites, on="mutation_id", how="outer", suffixes=("", "_exact"), indicator=True)
    same = (
        (check["_merge"] == "both")
        & (check["layer"] == check["layer_exact"])
        & (check["matrix"] == check["matrix_exact"])
        & (check["row"] == check["row_exact"])
        & (check["col"] == check["col_exact"])
        & (check["kind"].astype(str) == check["kind_exact"].astype(str))
    )
    if not same.all():
        raise SystemExit(f"{path}: its mutations are not this file's plan ({int((~same).sum())} differ)")
    return tiles.rename(columns={"logprob_drop": "effect"})[
        ["mutation_id", "probe_id", "layer", "matrix", "row", "col", "kind", "nsm", "effect"]
    ]


def found_at(curves: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (probe, order), g in curves.groupby(["probe_id", "order"], sort=False):
        rows.append([probe, order, *[float(g.loc[(g["screened"] - a).abs().idxmin(), "found"]) for a in AT]])
    return pd.DataFrame(rows, columns=["probe", "order", *[f"{int(100 * a)} %" for a in AT]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--exact", default=None, help="a Parquet tiles table with the exact effects of the same plan")
    args = parser.parse_args()

    from mutascope.analysis.frame import site_frame
    from mutascope.predict import agreement
    from mutascope.report.prediction_figures import recall_curves
    from mutascope.store import open_results

    with open_results(args.results) as results:
        frame = exact_frame(args.exact, results) if args.exact else site_frame(results, "logprob_drop")
        predictions = results.predictions
    if predictions is None:
        raise SystemExit(f"{args.results} has no predictions: run `mutascope predict ... --out {args.results}`")
    table = agreement(frame, predictions)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_rows", 400)
    show = [
        "score",
        "probe_id",
        "matrix",
        "mutants",
        "spearman",
        "spearman_low",
        "spearman_high",
        "auc",
        "recall_1",
        "recall_1_low",
        "recall_1_high",
        "recall_10",
    ]
    print("all matrices:")
    print(table[table["matrix"] == "all"][show].round(3).to_string(index=False))
    print("\n|estimate| by matrix type:")
    print(
        table[(table["score"].isin(["predicted_abs", "local_abs"])) & (table["matrix"] != "all")][show]
        .round(3)
        .to_string(index=False)
    )
    curves = recall_curves(frame, predictions)
    if "local" in predictions.columns:  # the chunk order the first-order estimate alone would give
        first = recall_curves(frame, predictions.drop(columns=["local"]))
        first = first[first["order"] == "predicted (chunks, as screened)"].assign(
            order="first order (chunks, as screened)"
        )
        curves = pd.concat([curves, first], ignore_index=True)
    at = found_at(curves)
    print("\nshare of the exact top 1 % found after screening a share of the plan:")
    print(at.round(3).to_string(index=False))

    print(
        "\nissue-30 goals (Spearman >= 0.6, top-1 % recall >= 0.6, q/k recall >= 0.4, gate Spearman >= 0.5, "
        "chunk order >= 0.8 at 10 %):"
    )
    rows = []
    for score, chunks in (
        ("predicted_abs", "first order (chunks, as screened)"),
        ("local_abs", "predicted (chunks, as screened)"),
    ):
        t = table[table["score"] == score].set_index(["probe_id", "matrix"])
        if t.empty:
            continue
        for probe in t.index.get_level_values(0).unique():

            def get(m, c, t=t, probe=probe):
                return float(t.loc[(probe, m), c]) if (probe, m) in t.index else float("nan")

            chunk = at[(at["probe"] == probe) & (at["order"] == chunks)]["10 %"]
            rows.append(
                [
                    score,
                    probe,
                    get("all", "spearman"),
                    get("all", "recall_1"),
                    get("q", "recall_1"),
                    get("k", "recall_1"),
                    get("gate", "spearman"),
                    float(chunk.iloc[0]) if len(chunk) else None,
                ]
            )
    print(
        pd.DataFrame(
            rows,
            columns=[
                "estimate",
                "probe",
                "spearman",
                "recall_1",
                "q_recall_1",
                "k_recall_1",
                "gate_spearman",
                "chunks_at_10%",
            ],
        )
        .round(3)
        .to_string(index=False)
    )


if __name__ == "__main__":
    main()
