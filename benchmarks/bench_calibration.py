"""How often each statistic calls a result on pure noise: the share of its family and the family-wise rate.

Draws SmolLM2-shaped site frames (mutascope.analysis.synthetic: 2 probes, the seven matrix types,
max and min, tile effects correlated between the kinds) with no structure, runs the screen's
tests on each, and prints two figures per family:

* the share of the family called at q < 0.05: BH bounds its expectation by 0.05 whatever the test,
  so this figure cannot fail;
* the family-wise rate, the share of noise families with any call: the figure that can fail (under
  the complete null BH's family-wise rate is its level, 0.05, for a valid test), with its exact
  (Clopper-Pearson) 95 % interval. It is counted per **family** as the test declares it (each
  probe of a draw is a family of enrichment, bias and COPA): a draw of two probes is two BH
  families, and counting a call in either as one draw's call doubled the rate (enrichment on
  the effect size read 0.090 so, although its per-test p-values are uniform on noise).

Besides independent noise it runs the two cases the first calibration missed (issue 32):

* COPA on tiles whose max and min are anticorrelated, with no row or column structure;
* the sign tests over layers (bias, COPA and the held-out order by type) on noise whose layers are
  an AR(1) with the atlas's layer-to-layer correlation (0.81-0.84): the per-layer statistics drawn
  directly as AR(1) series (28 groups x 30 layers, the atlas's families), and whole noise maps
  whose tiles are an AR(1) across 30 layers (r 0, 0.81 and 0.84) run through the per-layer
  tests: bias, the held-out order and COPA by type (the tables over layers are one family each).
  COPA per layer is run one layer at a time on the maps: its by-type test reads only each
  layer's excess over its null's median, which needs no family-sized permutation count.

    python benchmarks/bench_calibration.py --draws 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy.stats import beta

from mutascope.analysis.bias import bias
from mutascope.analysis.copa import copa, copa_by_type
from mutascope.analysis.enrichment import enrichment
from mutascope.analysis.layers import bias_by_type, sign_test_over_layers
from mutascope.analysis.reorder import reorder_holdout, reorder_holdout_by_type
from mutascope.analysis.synthetic import noise_frame

ALPHA = 0.05
TESTS = {
    "enrichment": lambda f, r: enrichment(f, r),
    "bias": lambda f, r: bias(f, readout=r),
    "copa": lambda f, r: copa(f, readout=r, n_perm=99),
}


FAMILY = {"enrichment": ["probe_id"], "bias": ["probe_id", "pair"], "copa": ["probe_id"]}


def line(name: str, readout: str, tables: list[pd.DataFrame], family: list[str] | None = None) -> None:
    """One row: draws, tests per draw, the called share, and the family-wise rate per family
    (``family``: the columns that split a table into its BH families; None: one family)."""
    calls = sum(int((t["q_value"] < ALPHA).sum()) for t in tables)
    total = sum(int(t["q_value"].notna().sum()) for t in tables)
    flags = []
    for t in tables:
        if family:
            flags += [bool((g["q_value"] < ALPHA).any()) for _, g in t.groupby(family, sort=False)]
        else:
            flags.append(bool((t["q_value"] < ALPHA).any()))
    draws, families, hits = len(tables), len(flags), int(sum(flags))
    low = beta.ppf(0.025, hits, families - hits + 1) if hits else 0.0
    high = beta.ppf(0.975, hits + 1, families - hits) if hits < families else 1.0
    print(
        f"{name:<34} {readout:<7} {draws:>5} {families:>8} {total // max(1, draws):>10} "
        f"{calls / max(1, total):>12.4f} {hits / max(1, families):>11.3f} [{low:.3f}, {high:.3f}]",
        flush=True,
    )


def copa_per_layer(frame: pd.DataFrame, readout: str) -> pd.DataFrame:
    """COPA one layer at a time (999 permutations each): the excess the test over layers reads."""
    return pd.concat([copa(g, readout=readout, n_perm=999) for _, g in frame.groupby("layer")], ignore_index=True)


def ar1(rng: np.random.Generator, groups: int, layers: int, r: float) -> np.ndarray:
    z = np.empty((groups, layers))
    z[:, 0] = rng.normal(size=groups)
    for i in range(1, layers):
        z[:, i] = r * z[:, i - 1] + np.sqrt(1 - r * r) * rng.normal(size=groups)
    return z


def series_table(z: np.ndarray) -> pd.DataFrame:
    groups, layers = z.shape
    return pd.DataFrame(
        {
            "group": np.repeat(np.arange(groups), layers),
            "layer": np.tile(np.arange(layers), groups),
            "value": z.ravel(),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--copa-draws", type=int, default=40, help="COPA's permutations make it the slow one")
    parser.add_argument("--map-draws", type=int, default=20, help="noise maps of 30 AR(1) layers per r")
    parser.add_argument(
        "--part", choices=("all", "tiles", "layers"), default="all", help="tiles: per-tile families only"
    )
    parser.add_argument("--copa-map-draws", type=int, default=5, help="of those, how many COPA by type runs on")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(
        f"{'family':<34} {'readout':<7} {'draws':>5} {'families':>8} {'tests/draw':>10} {'called share':>12} "
        f"{'family-wise':>11} [95 % interval]"
    )
    for name, test in TESTS.items() if args.part in ("all", "tiles") else ():
        draws = args.copa_draws if name == "copa" else args.draws
        frames = [noise_frame(1000 + i) for i in range(draws)]
        for readout in ("effect", "nsm"):
            line(name, readout, [test(f, readout) for f in frames], FAMILY[name])
    for readout in ("effect", "nsm") if args.part in ("all", "tiles") else ():
        anti = [copa(noise_frame(2000 + i, tile_corr=-0.7), readout=readout, n_perm=99) for i in range(args.copa_draws)]
        line("copa, tile-level anticorrelation", readout, anti, FAMILY["copa"])
    rng = np.random.default_rng(0)
    for r in (0.0, 0.81, 0.84):
        tables = [
            sign_test_over_layers(series_table(ar1(rng, 28, 30, r)), "value", ["group"]) for _ in range(args.draws)
        ]
        line(f"sign test over layers, AR(1) r {r}", "-", tables)
    layers = tuple(range(30))
    for r in (0.0, 0.81, 0.84):
        maps = [
            noise_frame(3000 + i, layers=layers, matrices=("gate", "v", "o"), layer_corr=r)
            for i in range(args.map_draws)
        ]
        for readout in ("effect", "nsm"):
            line(f"bias_by_type, maps r {r}", readout, [bias_by_type(bias(f, readout=readout)) for f in maps])
            held = [reorder_holdout_by_type(reorder_holdout(f, "gate", readout)) for f in maps]
            line(f"reorder_holdout_by_type, maps r {r}", readout, held)
        few = [m[m["matrix"].isin(["gate", "v"])] for m in maps[: args.copa_map_draws]]
        for readout in ("effect", "nsm"):
            line(f"copa_by_type, maps r {r}", readout, [copa_by_type(copa_per_layer(f, readout)) for f in few])
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
