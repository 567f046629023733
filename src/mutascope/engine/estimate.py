"""How long a plan will take: a short calibration run of the batched engine, scaled up.

``mutascope plan`` prints it for both output modes before anything runs.
"""

from __future__ import annotations

import random
import time

import torch

from ..probes.prepared import PreparedProbe, prepare_probes
from .batched import BatchedEngine


def estimate_seconds(
    subject,
    probes,
    plan,
    *,
    sample: int = 32,
    blocks: int = 4,
    batch_size: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Estimated wall-clock seconds for the batched engine to run ``plan`` on ``probes``,
    per outputs mode: ``{"full": ..., "calls": ...}``.

    Runs a short calibration: prepares the probes (the WT outputs, a one-off
    cost counted once), then times ``blocks`` runs of ``sample`` consecutive
    mutations evenly spaced over the plan (one random offset), and scales to
    the plan's size. Consecutive runs are what a screen feeds the engine (a
    chunk shares a layer and fills batches); scattered single mutations would
    each pay for a batch of one and overestimate. Evenly spaced, because a
    mutant's cost grows with the number of layers above it: two blocks at
    random places once both fell in late layers (14 and 28 of 30) and put a
    full-genome screen at about half its time. The calls-only figure is the same run less
    the time spent continuing NSMs and re-checking their continuations (the
    engine times each part). ``probes`` are :class:`Probe` objects or already
    prepared probes; ``plan`` is a :class:`Plan` or a sequence of mutations.
    """
    engine = BatchedEngine(subject, batch_size=batch_size)
    mutations = list(plan)
    t0 = time.perf_counter()
    if probes and not isinstance(probes[0], PreparedProbe):
        probes = prepare_probes(subject, engine, probes)
    for probe in probes:
        with torch.inference_mode():
            engine._state(probe)
    setup = time.perf_counter() - t0
    rng = random.Random(seed)
    stride, offset = len(mutations) / blocks, rng.random()
    runs = [mutations] if len(mutations) <= sample * blocks else [
        mutations[start : start + sample]
        for start in (min(int((k + offset) * stride), len(mutations) - sample) for k in range(blocks))
    ]
    before = dict(engine.stats)
    t0 = time.perf_counter()
    for run in runs:
        for _ in engine.run(run, probes):
            pass
    elapsed = time.perf_counter() - t0
    spent = {k: engine.stats[k] - before[k] for k in ("continue_s", "recheck_s", "recheck_call_s")}
    calls = max(0.0, elapsed - spent["continue_s"] - (spent["recheck_s"] - spent["recheck_call_s"]))
    n = max(1, sum(len(r) for r in runs))
    return {"full": setup + elapsed / n * len(mutations), "calls": setup + calls / n * len(mutations)}
