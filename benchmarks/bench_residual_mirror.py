"""What the residual readout leaves of a baseline the map does not follow (docs/methods.md,
"The residual readout").

Draws noise site frames (mutascope.analysis.synthetic, layers 0-2) and, for each, a baseline
unrelated to the effects but with structure of its own (column tile 2 high, max above min),
and prints, per draw, the residual's max/min bias (matrices called of all, how many favour max,
the median rank-biserial) and its enriched axes. A monotone fit follows noise upwards, so the
bias leans against the baseline's favoured kind; the axes should stay clean.

    python benchmarks/bench_residual_mirror.py --draws 6
"""

from __future__ import annotations

import argparse

import numpy as np

from mutascope.analysis.bias import bias
from mutascope.analysis.enrichment import enrichment
from mutascope.analysis.readouts import with_residual
from mutascope.analysis.synthetic import noise_frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=6)
    args = parser.parse_args()
    for seed in range(args.draws):
        frame = noise_frame(seed, layers=(0, 1, 2))
        rng = np.random.default_rng(100 + seed)
        structure = np.where(frame["col"] == 2, 3.0, 0.0) + np.where(frame["kind"] == "max", 1.5, 0.0)
        base = frame[["mutation_id", "probe_id"]].assign(local=rng.normal(size=len(frame)) + structure)
        r = with_residual(frame, base)
        b, e = bias(r, readout="residual"), enrichment(r, "residual")
        print(
            f"draw {seed}: bias {int((b['bias'] != 'none').sum())} of {len(b)} called, "
            f"{int((b['bias'] == 'max').sum())} favouring max, median rank-biserial {b['rank_biserial'].median():.3f}; "
            f"enriched axes {int(e['enriched'].sum())} of {len(e)}"
        )


if __name__ == "__main__":
    main()
