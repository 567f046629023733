"""Every number of docs/atlas-gemma.md, printed from the tables shipped in docs/atlas-gemma/tables.

    python docs/atlas-gemma/claims.py [docs/atlas-gemma/tables]

Three parts, each reading only what `mutascope analyze` stored and `mutascope export --compact`
shipped (docs/atlas-gemma/refresh.sh reruns both):

1. the SmolLM2 atlas's claims script, docs/atlas/claims.py, run on Gemma's tables (imported from
   its path, not copied: the same figures for both atlases);
2. what that script leaves out and the Gemma page quotes: saturated matrices, the channel of
   Gemma's super activation (540, not SmolLM2's 507) over every matrix that reads it, and which
   `v` column tile is most often first;
3. the claims beyond the activation baseline, from the `residual_*` tables (analyze's third
   readout: the rank residual of the effect on the file's `local` estimate).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd

ALPHA = 0.05
ROOT = Path(__file__).resolve().parent.parent


def smollm2_claims():
    """docs/atlas/claims.py as a module (the one script for both atlases' claims)."""
    spec = importlib.util.spec_from_file_location("atlas_claims", ROOT / "atlas" / "claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def q(x: float) -> str:
    return f"{x:.2g}" if x >= 1e-4 else f"{x:.1e}"


def extras(t: dict[str, pd.DataFrame]) -> None:
    print("## Gemma extras")
    s = t["saturation"]
    for probe, g in s.groupby("probe_id", sort=False):
        print(f"saturation {probe}: {int(g['saturated'].sum())} of {len(g)} matrices saturated")
    summary = t["superweight_summary"]
    weights = summary[summary["role"] == "super weight"]
    channels = sorted(set(int(c) for c in weights["channel"])) or sorted(set(int(c) for c in summary["channel"]))
    print(f"superweight_summary family: every matrix x axis x role x channel of a probe, BH; {len(summary)} tests")
    for r in summary[summary["channel"].isin(channels)].itertuples():
        print(
            f"superweights {r.probe_id} {r.matrix} {r.axis} {r.role} ch {r.channel}: top in {r.top_layers} of "
            f"{r.layers} (expected {r.expected_top:.2f}), p = {q(r.p_value)}, q = {q(r.q_value)}, median pct "
            f"{r.median_percentile:.0f}"
        )
    tiles = t["superweight_tiles"]
    carried = tiles[(tiles["matrix"] == "v") & (tiles["axis"] == "col") & (tiles["role"] == "super activation")]
    enr = t["effect_enrichment"]
    for probe, marks in carried.groupby("probe_id", sort=False):
        layers = sorted(set(marks["layer"]))
        cols = enr[(enr["probe_id"] == probe) & (enr["matrix"] == "v") & (enr["axis"] == "col")]
        cols = cols[cols["layer"].isin(layers)]
        first = cols.sort_values(["layer", "median_effect", "index"], ascending=[True, False, True]).groupby("layer")
        counts = first.head(1)["index"].value_counts()
        own = sorted(set(int(i) for i in marks["index"]))
        print(
            f"v column first by median effect, {probe}, over the {len(layers)} layers carrying the super activation: "
            f"{counts.head(3).to_dict()}; the channel's tile {own}: {int(counts.reindex(own).fillna(0).sum())}"
        )
    w = t["writers"]
    for category, g in w.groupby("category"):
        if category in ("poem", "dialogue", "first-person narrative"):  # the paper's writer categories
            print(
                f"writers, {category}: {len(g)} groups ({int(g['nsm'].min())}-{int(g['nsm'].max())} NSMs), least q "
                f"{q(float(g[['q_row', 'q_col']].min().min()))}"
            )
    gone = tiles[tiles["role"] == "cancelled"]
    print(f"layers marked cancelled (after a canceller): {sorted(set(gone['layer'])) or 'none'}")


def beyond(t: dict[str, pd.DataFrame]) -> None:
    """The claims table's last column: each claim on the residual readout (analyze's residual_* tables)."""
    if "residual_bias" not in t:
        print("## beyond the activation baseline: no residual_* tables (a screen without predictions)")
        return
    print("## beyond the activation baseline (residual_* tables: rank residual of the effect on `local`)")
    b = t["residual_bias"]
    for probe, g in b[b["pair"] == "max/min"].groupby("probe_id", sort=False):
        called = g[g["bias"] != "none"]
        print(
            f"residual_bias {probe}: {len(called)} of {len(g)} called; towards the larger value "
            f"{int((called['bias'] == called['larger']).sum())}"
        )
    for r in t["residual_bias_size"].itertuples():
        print(
            f"residual_bias_size {r.probe_id} {r.pair}: {r.towards_larger} towards / {r.against_larger} against "
            f"(p = {q(r.p_direction)}); Spearman {r.spearman_size:.2f}"
        )
    bt = t["residual_bias_by_type"]
    for r in bt[(bt["q_value"] < ALPHA) | (bt["matrix"] == "gate")].itertuples():
        print(
            f"residual_bias_by_type {r.probe_id} {r.matrix} {r.pair}: {r.positive}+ / {r.negative}- of {r.layers}, "
            f"layer r {r.layer_r:.2f}, q = {q(r.q_value)}"
        )
    e = t["residual_enrichment"]
    for (probe, axis), g in e.groupby(["probe_id", "axis"], sort=False):
        print(f"residual_enrichment {probe} {axis}: {int(g['enriched'].sum())} of {len(g)}")
    effect = t["effect_enrichment"]
    keys = ["probe_id", "layer", "matrix", "axis", "index"]
    kept = effect[effect["enriched"]].merge(e[e["enriched"]][keys], on=keys)
    print(f"  effect-enriched axes still enriched beyond the baseline: {len(kept)} of {int(effect['enriched'].sum())}")
    for r in t["residual_recurrence"].itertuples():
        print(
            f"residual_recurrence: {r.shared} shared vs {r.expected:.1f} expected ({r.ratio:.2f}x), p = {q(r.p_value)}"
        )
    c = t["residual_copa"]
    for probe, g in c.groupby("probe_id", sort=False):
        print(f"residual_copa {probe}: {int((g['q_value'] < ALPHA).sum())} of {len(g)} at q < {ALPHA}")
    ct = t["residual_copa_by_type"]
    for r in ct.sort_values(["matrix", "axis", "probe_id"]).itertuples():
        if r.q_value < ALPHA or r.matrix == "gate":
            h = c[(c["probe_id"] == r.probe_id) & (c["matrix"] == r.matrix) & (c["axis"] == r.axis)]
            print(
                f"residual_copa_by_type {r.probe_id} {r.matrix} {r.axis}: excess {r.negative}- / {r.positive}+ of "
                f"{r.layers}, median excess {r.median:.2f}, layer r {r.layer_r:.2f}, q = {q(r.q_value)}; r < 0 in "
                f"{int((h['copa'] < 0).sum())}, median r {h['copa'].median():.2f}"
            )
    for r in t["residual_reorder_holdout_by_type"].itertuples():
        print(
            f"residual_reorder_holdout_by_type {r.probe_id} {r.axis}: {r.positive}+ / {r.negative}- of {r.layers}, "
            f"median rho {r.median:.2f}, layer r {r.layer_r:.2f}, q = {q(r.q_value)}"
        )


def main() -> None:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "tables")
    claims = smollm2_claims()
    sys.argv = [sys.argv[0], str(directory)]
    claims.main()
    tables = claims.load(directory)
    extras(tables)
    beyond(tables)


if __name__ == "__main__":
    main()
