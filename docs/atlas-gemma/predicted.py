"""docs/predicted-maps.md's Gemma 3 section, printed from the tables shipped in docs/atlas-gemma/tables.

    python docs/atlas-gemma/predicted.py [docs/atlas-gemma/tables]

Three parts, each from shipped Parquet files only:

* the full genome: `analysis_prediction_agreement` (what `mutascope analyze` stored from the
  file's `predictions` table; every score, both probes, all matrices and each type) as the page's
  table, and where the exact top 1 % sits (`tiles.parquet`);
* the earlier partial screen (layers 0, 5, 11 and 17, tile rows 0-3, every matrix, max/min: 3,136
  mutants) recomputed as the subset of the full genome's mutants: the same model, probes, decoding
  and sites, and a screen's outcomes and a mutant's predictions do not depend on which other
  mutants the plan holds (docs/architecture.md, "Invariants"; one backward pass per probe), so the
  subset of `tiles.parquet` and `predictions.parquet` is that screen. Its agreement is
  `mutascope.predict.agreement` on the subset (the bootstrap intervals resample the subset's tiles,
  seeded, so they can differ in the last digit from the partial file's), and its order figures are
  `recall_curves` on the subset numbered in plan order (the partial plan's chunks of 256), with the
  first-order estimate alone, which ordered that screen (the `local` estimate came later).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from mutascope.predict.agreement import agreement
from mutascope.report.prediction_figures import recall_curves

PARTIAL_LAYERS = (0, 5, 11, 17)
PARTIAL_ROWS = range(4)
SCORES = {  # the page's names, in its order
    "predicted_abs": "|predicted|",
    "local_abs": "|local|",
    "predicted": "predicted (signed)",
    "local": "local (signed)",
    "change": "change",
    "activation": "activation pattern",
    "wanda": "Wanda",
    "magnitude": "magnitude",
    "superweight": "super-weight mark",
}


def top_count(n: int) -> int:
    """The exact top 1 % of ``n`` mutants, counted as the agreement's recall counts it (rounded up)."""
    return max(1, math.ceil(0.01 * n))


def interval(r, name: str) -> str:
    return f"{r[name]:.2f} [{r[name + '_low']:.2f}, {r[name + '_high']:.2f}]"


def table(a: pd.DataFrame) -> None:
    """The agreement of every score over all matrices, as a Markdown table."""
    print("| score | probe | Spearman | AUC for the NSM call | recall of the top 1 % | recall of the top 10 % |")
    print("| --- | --- | --- | --- | --- | --- |")
    a = a[a["matrix"] == "all"].set_index(["score", "probe_id"])
    for score, name in SCORES.items():
        for probe in ("drosophila", "python"):
            if (score, probe) not in a.index:
                continue
            r = a.loc[(score, probe)]
            print(
                f"| {name} | {probe} | {interval(r, 'spearman')} | {r['auc']:.2f} | {interval(r, 'recall_1')} | "
                f"{r['recall_10']:.2f} |"
            )


def by_type(a: pd.DataFrame) -> None:
    t = a[a["score"].isin(["predicted_abs", "local_abs"]) & (a["matrix"] != "all")]
    for (score, matrix), g in t.groupby(["score", "matrix"], sort=False):
        g = g.set_index("probe_id")
        print(
            f"{SCORES[score]} {matrix}: Spearman {g.loc['drosophila', 'spearman']:.2f} / "
            f"{g.loc['python', 'spearman']:.2f}, top-1 % recall {g.loc['drosophila', 'recall_1']:.2f} / "
            f"{g.loc['python', 'recall_1']:.2f} (drosophila / python; {int(g['mutants'].iloc[0])} mutants)"
        )


def top_share(tiles: pd.DataFrame) -> None:
    for probe, g in tiles.groupby("probe_id"):
        top = g.nlargest(top_count(len(g)), "logprob_drop")
        print(
            f"{probe}: exact top 1 % ({len(top)} mutants) in layers 0-5: {(top['layer'] <= 5).mean():.0%}; by matrix "
            f"{top['matrix'].value_counts().to_dict()}"
        )


def partial(tiles: pd.DataFrame, predictions: pd.DataFrame) -> None:
    sub = tiles[tiles["layer"].isin(PARTIAL_LAYERS) & tiles["row"].isin(PARTIAL_ROWS)]
    sub = sub[sub["kind"].isin(["max", "min"])]
    # the partial plan's own mutation ids: plan order is the full plan's order restricted to its sites
    ids = {old: new for new, old in enumerate(np.unique(sub["mutation_id"]))}
    frame = sub.rename(columns={"logprob_drop": "effect"}).assign(mutation_id=lambda f: f["mutation_id"].map(ids))
    frame = frame[["mutation_id", "probe_id", "layer", "matrix", "row", "col", "kind", "nsm", "effect"]]
    pred = predictions[predictions["mutation_id"].isin(ids)].assign(mutation_id=lambda f: f["mutation_id"].map(ids))
    print(f"## the partial screen as the subset: {len(ids)} mutants x {frame['probe_id'].nunique()} probes")
    table(agreement(frame, pred))
    first = pred.drop(columns=["local"], errors="ignore")
    curves = recall_curves(frame, first)
    for (probe, order), g in curves.groupby(["probe_id", "order"], sort=False):
        at = float(g.loc[(g["screened"] - 0.10).abs().idxmin(), "found"])
        print(f"{probe}, {order}: {at:.0%} of the exact top 1 % found after 10 % of the plan")
    for probe, g in frame.groupby("probe_id"):
        top = g.nlargest(top_count(len(g)), "effect")
        layers = top["layer"].value_counts().sort_index().to_dict()
        print(
            f"{probe}: exact top 1 % {len(top)} mutants, by layer {layers}, by matrix "
            f"{top['matrix'].value_counts().to_dict()}"
        )


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "tables")
    a = pd.read_parquet(directory / "analysis_prediction_agreement.parquet")
    tiles = pd.read_parquet(directory / "tiles.parquet")
    predictions = pd.read_parquet(directory / "predictions.parquet")
    n = a.loc[a["matrix"] == "all", "mutants"].max()
    print(f"## the full genome: analysis_prediction_agreement ({int(n)} mutants per probe)")
    table(a)
    by_type(a)
    top_share(tiles[tiles["kind"].isin(["max", "min"])])
    partial(tiles, predictions)


if __name__ == "__main__":
    main()
