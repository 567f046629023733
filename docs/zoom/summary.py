"""Every number of docs/zoom.md's "Measured" section, from the zoom table shipped beside it.

    PYTHONPATH=src python docs/zoom/summary.py

Reads ``docs/zoom/zoom.parquet`` (the ``zoom`` table of the run, as ``read_zoom`` returns it),
``docs/zoom/settings.csv`` (the rule and the model), ``docs/zoom/times.csv`` (the count and
seconds each zoom command printed), ``docs/zoom/reference_check.csv`` (``reference_check.py``) and,
for the sites and the atlas's own tile effects, ``docs/atlas/tables/tiles.parquet`` through
``sites.py``. What carries each tile's effect is computed by mutascope's own rule
(``mutascope.analysis.carriers``, docs/methods.md "Zoom").
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from sites import SUPER_ACTIVATION_CHANNEL, SUPER_WEIGHTS, TILES, jobs  # noqa: E402

from mutascope.analysis.carriers import carriers  # noqa: E402

LIMIT = 60  # the limit for one tile to single weights, per probe
BOUND = 47  # docs/methods.md: 1 + 11 x 4 + 2 for one weight of a 64 x 64 tile, one region per level


def bounds(carrier: str) -> tuple[int, int, int, int]:
    (r0, r1), (c0, c1) = (p.split(":") for p in carrier.strip("[]").split(","))
    return int(r0), int(r1), int(c0), int(c1)


def shape(carrier: str) -> str:
    r0, r1, c0, c1 = bounds(carrier)
    if r1 - r0 == 1 and c1 - c0 == 1:
        return "one weight"
    if c1 - c0 == 1:
        return f"one column ({r1 - r0} weights)"
    if r1 - r0 == 1:
        return f"one row ({c1 - c0} weights)"
    return f"block {r1 - r0}x{c1 - c0}"


def table() -> pd.DataFrame:
    zoom = pd.read_parquet(HERE / "zoom.parquet")
    found = carriers(zoom)
    chosen = jobs()
    out = chosen.merge(found, on=["site", "kind", "probe_id"], how="left")
    out["shape"] = out["carrier"].map(lambda c: shape(c) if isinstance(c, str) else "not zoomed")
    out["carrier_cols"] = out["carrier"].map(lambda c: "{}:{}".format(*bounds(c)[2:]) if isinstance(c, str) else "")
    return out


def line(r) -> str:
    atlas = "" if pd.isna(r.atlas_drop) else f"atlas {r.atlas_drop:.1f}, "
    rank = "" if pd.isna(r.rank) else f"#{int(r.rank):>2} "
    return (
        f"  {rank}{r.site:<13} {r.kind:<4} {r.probe_id:<10} {atlas}tile {r.parent:.4g}, halves max "
        f"{r.largest_child:.4g} sum {r.children_sum:.4g}; carrier {r.carrier} {r.shape} "
        f"({r.carrier_drop:.4g}, {r.carrier_drop / r.parent:.0%}); {r.verdict}; {r.mutants} mutants, "
        f"{r.depth} levels"
    )


def main() -> None:
    settings = pd.read_csv(HERE / "settings.csv")
    zoom = pd.read_parquet(HERE / "zoom.parquet")
    rule = settings[["share", "beam", "floor"]].drop_duplicates()
    print(
        f"rule: {rule.to_dict('records')}; model {settings['model_id'].iloc[0]} "
        f"{settings['model_hash'].iloc[0][:12]}..., {settings['dtype'].iloc[0]}, {settings['decoding'].iloc[0]}"
    )
    t = table()
    print(
        f"zoom rows (exact mutant x probe): {len(zoom)}; zoomed (site, kind, probe): "
        f"{zoom.groupby(['site', 'kind', 'probe_id']).ngroups}; sites: {zoom['site'].nunique()}"
    )
    times = pd.read_csv(HERE / "times.csv")  # what each zoom command printed at its end
    print(
        f"zoom commands: {len(times)}, {int(times['exact_mutants'].sum())} exact mutants in "
        f"{times['seconds'].sum():.0f} s (one thread)"
    )

    # the level-0 rows re-measure the atlas's tiles
    tiles = pd.read_parquet(TILES)
    roots = zoom[zoom["level"] == 0].merge(
        tiles.assign(
            site=tiles["layer"].astype(str)
            + "."
            + tiles["matrix"]
            + "."
            + tiles["row"].astype(str)
            + "."
            + tiles["col"].astype(str)
        )[["site", "kind", "probe_id", "logprob_drop", "nsm"]],
        on=["site", "kind", "probe_id"],
        suffixes=("", "_atlas"),
    )
    diff = (roots["logprob_drop"] - roots["logprob_drop_atlas"]).abs()
    rel = diff / roots["logprob_drop_atlas"].abs()
    print(
        f"tiles also in the atlas: {len(roots)}; |zoom level 0 - atlas| max {diff.max():.2g} "
        f"(relative {rel.max():.1e}); NSM calls equal: {int((roots['nsm'] == roots['nsm_atlas']).sum())} of "
        f"{len(roots)}"
    )

    print("\n## the 20 strongest tiles of each probe")
    top = t[t["group"] == "top20"]
    for probe, g in top.groupby("probe_id"):
        print(f"{probe}:")
        for r in g.itertuples():
            print(line(r))
    for probe, g in [*top.groupby("probe_id"), ("both probes", top)]:
        m = g["mutants"]
        print(
            f"{probe}: mutants per tile median {m.median():g}, min {m.min()}, max {m.max()}; "
            f"at most {LIMIT}: {int((m <= LIMIT).sum())} of {len(g)}; at most {BOUND}: {int((m <= BOUND).sum())}; "
            f"verdicts {g['verdict'].value_counts().to_dict()}; carriers "
            f"{g['shape'].map(lambda s: s.split(' (')[0]).value_counts().to_dict()}"
        )
    print("carrier input columns of the 20 strongest (both probes), by matrix:")
    for (matrix, cols), g in top.assign(matrix=top["site"].str.split(".").str[1]).groupby(["matrix", "carrier_cols"]):
        sites = sorted(set(g["site"]))
        print(f"  {matrix} columns {cols}: {len(g)} tile x probe ({', '.join(sites)})")
    sw_cols = {(layer, c) for layer, _, _, c in SUPER_WEIGHTS}
    for r in top.itertuples():
        layer = int(r.site.split(".")[0])
        c0, c1 = bounds(r.carrier)[2:]
        hit = [c for (lay, c) in sw_cols if lay == layer and c0 <= c < c1]
        if hit:
            print(
                f"  {r.site} {r.kind} {r.probe_id}: carrier {r.carrier} holds the column of layer {layer}'s "
                f"super weight (input channel {hit[0]})"
            )

    print(f"\n## v column tile 7 (input channel {SUPER_ACTIVATION_CHANNEL}), layers after the super weight")
    v7 = t[t["group"] == "v7"]
    for r in v7.itertuples():
        c0, c1 = bounds(r.carrier)[2:]
        print(line(r) + f"; one column {SUPER_ACTIVATION_CHANNEL}: {c1 - c0 == 1 and c0 == SUPER_ACTIVATION_CHANNEL}")
    exact = sum(bounds(c)[2:] == (SUPER_ACTIVATION_CHANNEL, SUPER_ACTIVATION_CHANNEL + 1) for c in v7["carrier"])
    print(f"carriers that are exactly column {SUPER_ACTIVATION_CHANNEL}: {exact} of {len(v7)}")

    print("\n## the super weights' tiles, zero")
    sw = t[t["group"] == "superweight"]
    found = 0
    for layer, matrix, row, col in SUPER_WEIGHTS:
        site = f"{layer}.{matrix}.{row // 64}.{col // 64}"
        for r in sw[sw["site"] == site].itertuples():
            is_it = bounds(r.carrier) == (row, row + 1, col, col + 1)
            found += is_it
            print(line(r) + f"; the super weight [{row}, {col}] itself: {is_it}")
    print(f"super weights found exactly: {found} of {len(sw)} (super weight x probe)")

    check = (
        HERE / "reference_check.csv"
    )  # reference_check.py: the reference engine on every region of the checked sites
    if check.exists():
        ref = pd.read_csv(check)
        agree = ref["nsm"] == ref["reference_divergence"].notna()
        checked, zoomed = (
            ref[["site", "kind"]].drop_duplicates().shape[0],
            zoom[["site", "kind"]].drop_duplicates().shape[0],
        )
        print(
            f"\n## the reference engine on every region of {checked} of the {zoomed} zoomed sites: "
            f"NSM call agrees on {int(agree.sum())} of {len(ref)} region x probe"
        )


if __name__ == "__main__":
    main()
