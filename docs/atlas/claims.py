"""Every number of docs/atlas.md's claims table, recomputed from the tables shipped beside it.

    python docs/atlas/claims.py [docs/atlas/tables]

Reads the Parquet files `mutascope export --compact` wrote (the per-tile table and every
analysis table) and prints, claim by claim, the figures the atlas quotes. Nothing here
recomputes a test: it reads the tables mutascope analyze produced (those of the tests issue 32
changed rewritten from the shipped tiles and per-layer tables by docs/atlas/restat.py, with the
library's current tests), so the doc's verdicts can be checked against them line by line. Two
figures are computed here: the overlap's odds ratio within layer x matrix (Mantel-Haenszel), which
analyze does not report, and the `gate` tests over layers with the layer-to-layer correlation
fixed at 0.84 (the maps' own, a worst case for the per-layer statistics).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from mutascope.analysis.layers import sign_test_over_layers
from mutascope.analysis.writers import writer_groups
from mutascope.phenotype.categories import CATEGORIES

ALPHA = 0.05


def load(directory: Path) -> dict[str, pd.DataFrame]:
    return {p.stem.removeprefix("analysis_"): pd.read_parquet(p) for p in sorted(directory.glob("*.parquet"))}


def q(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-4 else f"{x:.1e}"


def bias(t: dict[str, pd.DataFrame]) -> None:
    print("## max/min bias")
    for readout in ("bias", "effect_bias"):
        b = t[readout]
        for (probe, pair), g in b.groupby(["probe_id", "pair"], sort=False):
            called = g[g["bias"] != "none"]
            print(
                f"{readout} {probe} {pair}: {len(called)} of {len(g)} called; towards the larger value "
                f"{int((called['bias'] == called['larger']).sum())}; verdicts "
                f"{called['size_verdict'].value_counts().to_dict()}"
            )
    s = t["effect_bias_size"]
    for r in s.itertuples():
        print(
            f"effect_bias_size {r.probe_id} {r.pair}: {r.towards_larger} towards / {r.against_larger} against "
            f"(p = {q(r.p_direction)}); Spearman with log size ratio {r.spearman_size:.2f} (p = {q(r.p_spearman)}, "
            f"floor {q(r.p_floor_spearman)})"
        )
    bt = t["effect_bias_by_type"]
    print(
        f"effect_bias_by_type: layer-to-layer r {bt['layer_r'].min():.2f}-{bt['layer_r'].max():.2f} (AR(1) null "
        "of the sign count)"
    )
    for r in bt[(bt["q_value"] < ALPHA) | (bt["matrix"] == "gate")].itertuples():
        print(
            f"effect_bias_by_type {r.probe_id} {r.matrix} {r.pair}: {r.positive}+ / {r.negative}- of {r.layers} "
            "layers, "
            f"median r {r.median:.2f}, layer r {r.layer_r:.2f}, p = {q(r.p_value)} (floor {q(r.p_floor)}), "
            f"q = {q(r.q_value)}; called a/b "
            f"{r.called_a}/{r.called_b}, against size {r.called_against_size}"
        )
    eb = t["effect_bias"]
    top = eb[eb["pair"] == "max/min"].sort_values("p_value").head(3)
    for r in top.itertuples():
        print(
            f"  e.g. {r.probe_id} L{r.layer} {r.matrix}: median max-min {r.median_difference:.3g} "
            f"[{r.ci_low:.3g}, {r.ci_high:.3g}] over {r.tiles} tiles, r = {r.rank_biserial:.2f}, "
            f"|max|/|min| = {r.size_ratio:.2f}, q = {q(r.q_value)}, {r.size_verdict}"
        )
    for probe, g in eb.groupby("probe_id", sort=False):
        called = {
            pair: set(map(tuple, h.loc[h["bias"] != "none", ["layer", "matrix"]].values))
            for pair, h in g.groupby("pair")
        }
        both = called.get("max/min", set()) & called.get("sym:1/sym:-1", set())
        print(f"  {probe}: biased under the size-matched pair and called under max/min: {len(both)}")
    size_matched(t)
    pairs = eb[eb["pair"] == "max/min"]
    tiles = pairs.groupby("matrix")["tiles"].unique()
    shown = ", ".join(f"{m} {'/'.join(str(int(n)) for n in v)}" for m, v in tiles.items())
    print(f"  tiles per matrix (the unit of each paired test): {shown}")
    for probe, g in pairs[pairs["bias"] != "none"].groupby("probe_id", sort=False):
        r = g.loc[g["median_difference"].abs().idxmax()]
        print(
            f"  largest called bias, {probe}: L{r.layer} {r.matrix}, median max-min {r.median_difference:.3g} "
            f"[{r.ci_low:.3g}, {r.ci_high:.3g}] nats over {r.tiles} tiles, |max|/|min| = {r.size_ratio:.2f}, "
            f"{r.size_verdict or 'no verdict'}"
        )


def size_matched(t: dict[str, pd.DataFrame]) -> None:
    """The size-matched control's own tiles, and the direct paired test of each matrix's max - min
    difference against its sym:1 - sym:-1 one (what "explained by size" rests on)."""
    if "control_tiles" not in t:
        print("  (no control_tiles.parquet shipped: the control's tiles and the direct size-matched test are absent)")
        return
    for probe, g in t["control_tiles"].groupby("probe_id"):
        print(
            f"  control {probe}: {len(g)} mutants ({', '.join(sorted(g['kind'].unique()))}), NSM {int(g['nsm'].sum())} "
            f"({g['nsm'].mean():.1%}), effect median {g['logprob_drop'].median():.3g}"
        )
    for readout in ("size_matched", "effect_size_matched"):
        if readout not in t:
            print(f"  (no analysis_{readout}: run docs/atlas/restat.py)")
            continue
        sm = t[readout]
        called = t[readout.replace("size_matched", "bias")]
        called = called[(called["pair"] == "max/min") & (called["bias"] != "none")]
        for probe, g in sm.groupby("probe_id", sort=False):
            hits = g[g["excess"] != "none"]
            mine = g.merge(called[called["probe_id"] == probe][["layer", "matrix", "bias"]], on=["layer", "matrix"])
            print(
                f"{readout} {probe}: max - min differs from sym:1 - sym:-1 in {len(hits)} of {len(g)} matrices "
                f"(q < {ALPHA}), {int((hits['excess'] == hits['larger']).sum())} towards the larger |value|; of the "
                f"{len(mine)} called max/min biases, {int((mine['excess'] == mine['bias']).sum())} exceed the "
                f"size-matched difference in the bias's direction, median excess "
                f"{mine['median_excess'].median():.3g}"
            )


def enrichment(t: dict[str, pd.DataFrame]) -> None:
    print("## enrichment")
    for readout in ("enrichment", "effect_enrichment"):
        e = t[readout]
        for (probe, axis), g in e.groupby(["probe_id", "axis"], sort=False):
            print(f"{readout} {probe} {axis}: {int(g['enriched'].sum())} of {len(g)} (min q {q(g['q_value'].min())})")
        best = e[e["enriched"]].sort_values(["q_value", "score"], ascending=[True, False]).head(3)
        for r in best.itertuples():
            print(
                f"  e.g. {r.probe_id} L{r.layer} {r.matrix} {r.axis} {r.index}: score {r.score:.2f} "
                f"[{r.ci_low:.2f}, {r.ci_high:.2f}] over {r.tiles} tiles, q = {q(r.q_value)}"
            )
    for readout in ("recurrence", "effect_recurrence"):
        for r in t[readout].itertuples():
            print(f"{readout}: {r.shared} shared vs {r.expected:.1f} expected ({r.ratio:.2f}x), p = {q(r.p_value)}")


def copa(t: dict[str, pd.DataFrame]) -> None:
    print("## COPA and the re-ordered gate")
    for readout in ("copa", "effect_copa"):
        c = t[readout]
        for probe, g in c.groupby("probe_id", sort=False):
            print(
                f"{readout} {probe}: {int((g['q_value'] < ALPHA).sum())} of {len(g)} at q < {ALPHA}; median r "
                f"{g['copa'].median():.2f}; permutations {int(g['permutations'].max())}"
            )
            for (matrix, axis), h in g[g["matrix"].isin(["gate", "o"])].groupby(["matrix", "axis"]):
                print(
                    f"  {matrix} {axis}: r < 0 in {int((h['copa'] < 0).sum())} of {int(h['copa'].notna().sum())} "
                    f"layers, median r {h['copa'].median():.2f}, null median (whole tiles permuted) "
                    f"{h['null_median'].median():.2f}, median excess {h['excess'].median():.2f}; "
                    f"{int((h['q_value'] < ALPHA).sum())} of {int(h['q_value'].notna().sum())} layers at q < {ALPHA}"
                )
    for readout in ("copa", "effect_copa"):
        worst = sign_test_over_layers(t[readout], "excess", ["probe_id", "matrix", "axis"], layer_r=0.84)
        for r in worst[worst["matrix"] == "gate"].itertuples():
            print(
                f"{readout}_by_type if layers were as dependent as the maps (r 0.84) {r.probe_id} gate {r.axis}: "
                f"{r.negative}- / {r.positive}+, p = {q(r.p_value)}, q = {q(r.q_value)}"
            )
    for readout in ("copa_by_type", "effect_copa_by_type"):
        c = t[readout]
        print(
            f"{readout}: sign of the excess over layers; layer-to-layer r {c['layer_r'].min():.2f}-"
            f"{c['layer_r'].max():.2f}"
        )
        for r in c.sort_values("q_value").itertuples():
            if r.q_value < ALPHA or (r.matrix, r.axis) in (("gate", "col"), ("o", "row")):
                print(
                    f"{readout} {r.probe_id} {r.matrix} {r.axis}: {r.negative}- / {r.positive}+ of {r.layers}, "
                    f"median excess {r.median:.2f}, layer r {r.layer_r:.2f}, p = {q(r.p_value)} (floor "
                    f"{q(r.p_floor)}), q = {q(r.q_value)}"
                )
    for readout in ("reorder_holdout_by_type", "effect_reorder_holdout_by_type"):
        h = t[readout]
        print(f"{readout}: layer-to-layer r {h['layer_r'].min():.2f}-{h['layer_r'].max():.2f}")
        for r in h.itertuples():
            print(
                f"{readout} {r.probe_id} {r.axis}: {r.positive}+ / {r.negative}- of {r.layers}, median rho "
                f"{r.median:.2f}, layer r {r.layer_r:.2f}, p = {q(r.p_value)} (floor {q(r.p_floor)}), "
                f"q = {q(r.q_value)}"
            )


def stratified_odds_ratio(tiles: pd.DataFrame, pair) -> float:
    """The two probes' NSM association within each layer x matrix, pooled (Mantel-Haenszel): the
    pooled odds ratio also counts the matrices' different NSM rates, which this one removes."""
    calls = tiles.pivot_table(index=["layer", "matrix", "row", "col", "kind"], columns="probe_id", values="nsm")
    calls = calls.reset_index()
    num = den = 0.0
    for _, g in calls.groupby(["layer", "matrix"]):
        a, b = g[pair.probe_a].astype(bool), g[pair.probe_b].astype(bool)
        n = len(g)
        num += (a & b).sum() * (~a & ~b).sum() / n
        den += (a & ~b).sum() * (~a & b).sum() / n
    return num / den


def rest(t: dict[str, pd.DataFrame]) -> None:
    print("## overlap, writers, super weights")
    for r in t["overlap"].itertuples():
        print(
            f"overlap {r.probe_a}/{r.probe_b}: Jaccard {r.jaccard:.3f}, independent {r.expected_jaccard:.3f}, max "
            f"{r.max_jaccard:.3f}, phi {r.phi:.3f}, OR {r.odds_ratio:.2f} [{r.odds_ratio_low:.2f}, "
            f"{r.odds_ratio_high:.2f}]"
        )
        print(f"  odds ratio within layer x matrix (Mantel-Haenszel): {stratified_odds_ratio(t['tiles'], r):.2f}")
    if "writers" in t:
        writers(t)
    if "superweight_summary" in t:
        s = t["superweight_summary"]
        print(
            f"superweight_summary: {len(s)} tests, families per probe {s['probe_id'].value_counts().to_dict()}, "
            f"q < {ALPHA}: {int((s['q_value'] < ALPHA).sum())}"
        )
        for r in s.itertuples():
            if r.matrix == "v" or r.role in ("super weight", "canceller") or r.channel == 507:
                print(
                    f"superweights {r.probe_id} {r.matrix} {r.axis} {r.role} ch {r.channel}: top in {r.top_layers} of "
                    f"{r.layers} (expected {r.expected_top:.2f}), layer r {getattr(r, 'layer_r', 0.0):.2f}, "
                    f"p = {q(r.p_value)}, q = {q(r.q_value)}, median pct {r.median_percentile:.0f}"
                )
        tiles = t["superweight_tiles"]
        gone = tiles[tiles["role"] == "cancelled"]
        for channel, g in gone.groupby("channel"):
            print(f"  channel {channel}: not carried (after a canceller) in layers {sorted(g['layer'].unique())}")


NARRATIVE = ("poem", "dialogue", "first-person narrative")  # the paper's hand labels, as categorize names them
assert set(NARRATIVE) <= set(CATEGORIES)


def writers(t: dict[str, pd.DataFrame]) -> None:
    """The writers table, and, where the filled outputs are shipped (`outputs`: each filled NSM's
    text, first word and category), the same statistic recomputed from them and `tiles`."""
    w = t["writers"]
    hits = w[(w["q_row"] < ALPHA) | (w["q_col"] < ALPHA)]
    rows = w[w["q_row"] < ALPHA]
    print(
        f"writers: {len(hits)} of {len(w)} groups with q < {ALPHA} (draws {int(w['draws'].max())}); by category "
        f"{hits['category'].value_counts().to_dict()}; sharing a row: {len(rows)}, all in `down` "
        f"{int((rows['matrices'] == 'down').sum())}, with `down` {int(rows['matrices'].str.contains('down').sum())}"
    )
    for r in hits.sort_values("q_row").head(4).itertuples():
        print(
            f"  e.g. {r.probe_id} {r.first_word[:20]!r} ({r.category}, {r.nsm} in {r.matrices}): row {r.top_row} "
            f"x{r.top_row_count} q {q(r.q_row)}; col {r.top_col} x{r.top_col_count} q {q(r.q_col)}"
        )
    for r in w[w["category"].isin(NARRATIVE)].itertuples():
        print(
            f"  {r.category} group {r.probe_id} {r.first_word[:20]!r}: {r.nsm} NSMs in {r.matrices}; row {r.top_row} "
            f"x{r.top_row_count} q {q(r.q_row)}, col {r.top_col} x{r.top_col_count} q {q(r.q_col)}"
        )
    if "outputs" not in t:
        print("  (no outputs.parquet shipped: the writers statistic cannot be recomputed here)")
        return
    frame = t["tiles"].merge(
        t["outputs"][["mutation_id", "probe_id", "first_word", "category"]], on=["mutation_id", "probe_id"], how="left"
    )
    frame = frame.assign(nsm=frame["nsm"].astype(bool)).sort_values(["mutation_id", "probe_id"], ignore_index=True)
    again = writer_groups(frame, n_draws=999, alpha=ALPHA)
    keys = ["probe_id", "first_word", "category"]
    same = again[keys + ["nsm", "q_row", "q_col"]].merge(w[keys + ["nsm", "q_row", "q_col"]], on=keys, how="outer")
    agree = bool(
        len(same) == len(w) == len(again)
        and (same["nsm_x"] == same["nsm_y"]).all()
        and ((same["q_row_x"] - same["q_row_y"]).abs() < 1e-12).all()
        and ((same["q_col_x"] - same["q_col_y"]).abs() < 1e-12).all()
    )
    print(
        f"  recomputed from tiles + outputs ({len(t['outputs'])} filled NSMs): {len(again)} groups, "
        f"{int(((again['q_row'] < ALPHA) | (again['q_col'] < ALPHA)).sum())} with q < {ALPHA}; identical to "
        f"analysis_writers: {agree}"
    )


def predictions(t: dict[str, pd.DataFrame]) -> None:
    """The predicted maps' agreement with the screen (every estimate the table has)."""
    if "prediction_agreement" not in t:
        return
    print("## predicted maps")
    a = t["prediction_agreement"]
    for r in a[a["score"].str.endswith("_abs") & a["matrix"].isin(["all", "q", "k", "gate"])].itertuples():
        print(
            f"agreement {r.score} {r.probe_id} {r.matrix}: Spearman {r.spearman:.2f} [{r.spearman_low:.2f}, "
            f"{r.spearman_high:.2f}], recall of the top 1 % {r.recall_1:.2f} over {r.mutants} mutants"
        )


def strongest(tiles: pd.DataFrame) -> None:
    """Each probe's strongest mutant, and where the exact top 1 % sits."""
    for probe, g in tiles.groupby("probe_id"):
        r = g.loc[g["logprob_drop"].idxmax()]
        top = g.nlargest(max(1, len(g) // 100), "logprob_drop")
        print(
            f"{probe}: strongest L{r['layer']} {r['matrix']} row {r['row']} col {r['col']} {r['kind']} "
            f"{r['logprob_drop']:.3g}; top 1 % in layers 0-5: {(top['layer'] <= 5).mean():.0%}, by matrix "
            f"{top['matrix'].value_counts().to_dict()}"
        )


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "tables")
    tables = load(directory)
    tiles = tables["tiles"]
    print(
        f"{tiles['mutation_id'].nunique()} mutants x {tiles['probe_id'].nunique()} probes; kinds "
        f"{sorted(tiles['kind'].unique())}"
    )
    for probe, g in tiles.groupby("probe_id"):
        mm = g[g["kind"].isin(["max", "min"])]
        print(
            f"{probe}: NSM {int(mm['nsm'].sum())} of {len(mm)} ({mm['nsm'].mean():.1%}); effect median "
            f"{mm['logprob_drop'].median():.3g} ({mm['logprob_drop'].min():.3g}, {mm['logprob_drop'].max():.3g}); "
            f"per token {mm['logprob_drop_per_token'].median():.3g}"
        )
    strongest(tiles)
    bias(tables)
    enrichment(tables)
    copa(tables)
    rest(tables)
    predictions(tables)


if __name__ == "__main__":
    main()
