"""How often each statistic calls a result on pure noise: the share of its family and the family-wise rate.

Draws SmolLM2-shaped site frames (mutascope.analysis.synthetic: 2 probes, the seven matrix types,
max and min, tile effects correlated between the kinds) with no structure, runs the screen's
tests on each, and prints two figures per family:

* the share of the family called at q < 0.05: BH bounds its expectation by 0.05 whatever the test,
  so this figure cannot fail;
* the family-wise rate, the share of noise draws with any call: the figure that can fail (under
  the complete null BH's family-wise rate is its level, 0.05, for a valid test).

Besides independent noise it runs the two cases the first calibration missed (issue 32):

* COPA on tiles whose max and min are anticorrelated, with no row or column structure;
* the sign tests over layers (bias, COPA and the held-out order by type) on noise whose layers are
  an AR(1) with the atlas's layer-to-layer correlation (0.81-0.84): the per-layer statistics drawn
  directly as AR(1) series (28 groups x 30 layers, the atlas's families), and, for the bias and the
  held-out order, whole noise maps with AR(1) layers run through the per-layer tests.

    python benchmarks/bench_calibration.py --draws 200
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

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


def line(name: str, readout: str, tables: list[pd.DataFrame]) -> None:
    calls = sum(int((t["q_value"] < ALPHA).sum()) for t in tables)
    total = sum(int(t["q_value"].notna().sum()) for t in tables)
    with_call = sum(bool((t["q_value"] < ALPHA).any()) for t in tables)
    draws = len(tables)
    print(
        f"{name:<34} {readout:<7} {draws:>5} {total // max(1, draws):>10} {calls / max(1, total):>12.4f} "
        f"{with_call / draws:>11.3f}",
        flush=True,
    )


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
    parser.add_argument("--map-draws", type=int, default=20, help="noise maps of 30 AR(1) layers per test")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(f"{'family':<34} {'readout':<7} {'draws':>5} {'tests/draw':>10} {'called share':>12} {'family-wise':>11}")
    for name, test in TESTS.items():
        draws = args.copa_draws if name == "copa" else args.draws
        for readout in ("effect", "nsm"):
            line(name, readout, [test(noise_frame(1000 + i), readout) for i in range(draws)])
    for readout in ("effect", "nsm"):
        anti = [copa(noise_frame(2000 + i, tile_corr=-0.7), readout=readout, n_perm=99) for i in range(args.copa_draws)]
        line("copa, tile-level anticorrelation", readout, anti)
    rng = np.random.default_rng(0)
    for r in (0.0, 0.81, 0.84):
        tables = [
            sign_test_over_layers(series_table(ar1(rng, 28, 30, r)), "value", ["group"]) for _ in range(args.draws)
        ]
        line(f"sign test over layers, AR(1) r {r}", "-", tables)
    layers = tuple(range(30))
    maps = [
        noise_frame(3000 + i, layers=layers, matrices=("gate", "v", "o"), layer_corr=0.84)
        for i in range(args.map_draws)
    ]
    for readout in ("effect", "nsm"):
        line("bias_by_type, maps AR(1) r 0.84", readout, [bias_by_type(bias(f, readout=readout)) for f in maps])
        held = [reorder_holdout_by_type(reorder_holdout(f, "gate", readout)) for f in maps]
        line("reorder_holdout_by_type, r 0.84", readout, held)
    few = [m[m["matrix"].isin(["gate", "v"])] for m in maps[: max(2, args.map_draws // 4)]]
    line("copa_by_type, maps AR(1) r 0.84", "effect", [copa_by_type(copa(f, readout="effect")) for f in few])
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
