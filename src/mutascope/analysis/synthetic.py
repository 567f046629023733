"""Synthetic site frames for checking the statistics: pure noise, or noise with one planted effect.

A statistic is trusted when it finds an effect planted in a map and, on maps
of pure noise, calls no more than its false discovery rate allows. The
tests and ``benchmarks/bench_calibration.py`` draw their maps here, with the
shapes of SmolLM2's matrices (tile grids 9 x 9 for ``q`` and ``o``, 3 x 9
for ``k`` and ``v``, 24 x 9 for ``gate`` and ``up``, 9 x 24 for ``down``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GRIDS = {"q": (9, 9), "k": (3, 9), "v": (3, 9), "o": (9, 9), "gate": (24, 9), "up": (24, 9), "down": (9, 24)}
COLUMNS = [
    "probe_id",
    "layer",
    "matrix",
    "row",
    "col",
    "kind",
    "value",
    "mutation_id",
    "nsm",
    "effect",
    "effect_per_token",
    "filled",
]


def noise_frame(
    seed: int,
    *,
    probes=("a", "b"),
    layers=(0, 1),
    matrices=tuple(GRIDS),
    kinds=("max", "min"),
    nsm_rate: float = 0.5,
    tile_corr: float = 0.7,
    layer_corr: float = 0.0,
    plant=None,
) -> pd.DataFrame:
    """A site frame of log-normal effects with no structure: each tile has a sensitivity
    shared by its kinds (correlation ``tile_corr`` on the log scale, as max and min of one tile
    correlate in real screens) and NSM calls thresholded from the same numbers.

    A negative ``tile_corr`` makes the kinds of a tile anticorrelated (every second kind
    gets the shared part with the opposite sign): structure inside tiles, none along axes.
    ``layer_corr`` makes each tile's numbers an AR(1) across ``layers`` (in the order given)
    with that lag-1 correlation, as neighbouring layers of a real model resemble each other
    (SmolLM2: about 0.8); 0 draws every layer afresh.

    ``plant(layer, matrix, row, col, kind, probe) -> float`` adds to an effect's log (a
    planted effect); it is applied before the NSM call, which follows the effect.
    """
    rng = np.random.default_rng(seed)
    threshold = float(np.quantile(rng.normal(size=100_000), 1 - nsm_rate))
    loading, own = np.sqrt(abs(tile_corr)), np.sqrt(1 - abs(tile_corr))
    innovation = np.sqrt(1 - layer_corr**2)
    state: dict[tuple, float] = {}

    def draw(key: tuple) -> float:  # the AR(1) across layers (a fresh normal for the first layer)
        x = rng.normal()
        state[key] = x if key not in state else layer_corr * state[key] + innovation * x
        return state[key]

    rows = []
    for probe in probes:
        mid = 0
        for layer in layers:
            for matrix in matrices:
                n_rows, n_cols = GRIDS[matrix]
                values = {kind: (1.0 + 0.1 * layer) * _sign(kind) for kind in kinds}
                for col in range(n_cols):
                    for row in range(n_rows):
                        shared = draw((probe, matrix, row, col))
                        for i, kind in enumerate(kinds):
                            sign = -1.0 if tile_corr < 0 and i % 2 else 1.0
                            z = sign * loading * shared + own * draw((probe, matrix, row, col, kind))
                            if plant is not None:
                                z += plant(layer, matrix, row, col, kind, probe)
                            effect = float(np.exp(z))
                            rows.append(
                                (
                                    probe,
                                    layer,
                                    matrix,
                                    row,
                                    col,
                                    kind,
                                    values[kind],
                                    mid,
                                    bool(z > threshold),
                                    effect,
                                    effect / 24,
                                    True,
                                )
                            )
                            mid += 1
    return pd.DataFrame(rows, columns=COLUMNS)


def _sign(kind: str) -> int:
    """The sign of the value a kind writes (min and sym:-x negative)."""
    return -1 if kind == "min" or kind.startswith("sym:-") else 1
