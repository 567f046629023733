"""How often each statistic calls a result on pure noise, and how often it finds a planted one.

Draws SmolLM2-shaped site frames (mutascope.analysis.synthetic: 2 probes, 2 layers, the seven
matrix types, max and min, tile effects correlated between the kinds) with no structure, runs
every test of the screen's statistics on each, and prints the share of each family called at
q < 0.05 (the FDR bounds its expectation by 0.05 under the complete null) and the share of draws
with any call. Then plants one effect per statistic and prints how often it is found.

    python benchmarks/bench_calibration.py --draws 200
"""

from __future__ import annotations

import argparse
import time

from mutascope.analysis.bias import bias
from mutascope.analysis.copa import copa
from mutascope.analysis.enrichment import enrichment
from mutascope.analysis.synthetic import noise_frame

TESTS = {
    "enrichment": lambda f, r: enrichment(f, r),
    "bias": lambda f, r: bias(f, readout=r),
    "copa": lambda f, r: copa(f, readout=r, n_perm=99),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--copa-draws", type=int, default=40, help="COPA's permutations make it the slow one")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(
        f"{'statistic':<12} {'readout':<7} {'draws':>5} {'tests/draw':>10} {'called share':>12} "
        f"{'draws with a call':>18}"
    )
    for name, test in TESTS.items():
        draws = args.copa_draws if name == "copa" else args.draws
        for readout in ("effect", "nsm"):
            calls, total, any_call = 0, 0, 0
            for i in range(draws):
                t = test(noise_frame(1000 + i), readout)
                c = int((t["q_value"] < 0.05).sum())
                calls, total, any_call = calls + c, total + len(t), any_call + (c > 0)
            print(
                f"{name:<12} {readout:<7} {draws:>5} {total // draws:>10} {calls / total:>12.4f} "
                f"{any_call / draws:>18.3f}"
            )
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
