"""The sites docs/zoom.md zooms, chosen from the atlas's shipped tables, and the commands that zoom them.

    python docs/zoom/sites.py            # prints the zoom commands (one per probe and kind)

* the 20 strongest tiles of each probe by ``logprob_drop`` (docs/atlas/tables/tiles.parquet),
  across matrix types, each zoomed with the kind that made it strongest (a tile counted once per
  probe, with its stronger kind);
* ``v`` column tile 7 (input channels 448-511, the super activation's channel 507) in the three layers
  after the first super weight (layer 2 ``down``): layers 3, 4, 5, each probe's strongest row tile of
  that column there, with its kind;
* the tile holding each super weight the detector found (docs/atlas.md), with ``zero``, on both probes.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
TILES = HERE.parent / "atlas" / "tables" / "tiles.parquet"
TILE = 64
TOP = 20
V_LAYERS = (3, 4, 5)  # the three layers after layer 2's super weight
SUPER_WEIGHTS = [  # (layer, matrix, row, col): docs/atlas.md, "sensitive axes and super-activation channels"
    (2, "down", 507, 90),
    (11, "down", 507, 1229),
    (11, "down", 507, 1487),
    (27, "down", 199, 903),
    (29, "down", 17, 1128),
]
SUPER_ACTIVATION_CHANNEL = 507


def label(layer, matrix, row, col) -> str:
    return f"{layer}.{matrix}.{row}.{col}"


def strongest(tiles: pd.DataFrame) -> pd.DataFrame:
    """Each probe's tiles ranked by their stronger kind's effect (one row per probe x tile)."""
    best = tiles.sort_values(
        ["probe_id", "logprob_drop", "layer", "matrix", "row", "col", "kind"],
        ascending=[True, False, True, True, True, True, True],
    )
    return best.drop_duplicates(["probe_id", "layer", "matrix", "row", "col"])


def jobs(tiles: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per (group, site, kind, probe) to zoom; ``group`` is top20, v7 or superweight."""
    tiles = pd.read_parquet(TILES) if tiles is None else tiles
    ranked = strongest(tiles)
    rows = []
    for probe, g in ranked.groupby("probe_id", sort=True):
        for rank, r in enumerate(g.head(TOP).itertuples(index=False), 1):
            rows.append(("top20", label(r.layer, r.matrix, r.row, r.col), r.kind, probe, rank, r.logprob_drop))
        v7 = g[(g["matrix"] == "v") & (g["col"] == SUPER_ACTIVATION_CHANNEL // TILE) & g["layer"].isin(V_LAYERS)]
        for r in v7.drop_duplicates("layer").sort_values("layer").itertuples(index=False):
            rows.append(("v7", label(r.layer, r.matrix, r.row, r.col), r.kind, probe, None, r.logprob_drop))
        for layer, matrix, row, col in SUPER_WEIGHTS:
            rows.append(("superweight", label(layer, matrix, row // TILE, col // TILE), "zero", probe, None, None))
    return pd.DataFrame(rows, columns=["group", "site", "kind", "probe_id", "rank", "atlas_drop"])


def commands(file: str = "runs/zoom/zoom.duckdb") -> list[str]:
    """The zoom commands: one per (probe, kind), every site of it (a site zoomed twice is resumed)."""
    out = []
    table = jobs()
    for (probe, kind), g in table.groupby(["probe_id", "kind"], sort=True):
        sites = " ".join(f"--site {s}" for s in dict.fromkeys(g["site"]))
        out.append(f"mutascope zoom {file} --probe {probe} --kind {kind} --threads 1 {sites}")
    return out


if __name__ == "__main__":
    print(jobs().to_string())
    print()
    print("\n".join(commands()))
