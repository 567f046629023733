"""How long a plan will take: a short calibration run of the batched engine, scaled up.

``mutascope plan`` prints it for both output modes before anything runs.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import torch

from ..probes.prepared import PreparedProbe, prepare_probes
from .batched import BatchedEngine, auto_batch_size

if TYPE_CHECKING:  # annotations only: the model module imports torch and transformers
    from ..model.subject import Subject


def estimate_seconds(
    subject: Subject,
    probes,
    plan,
    *,
    sample: int | None = None,
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
    each pay for a batch of one and overestimate. ``sample`` defaults to one
    full batch of the engine, as a screen's chunks fill them: a run of 32 in
    batches of 128 paid each pass's fixed costs (the weights streamed once per
    decoding step, the Python around each layer) for a quarter of the rows, and
    its NSMs were continued in pools a quarter of the size, so small blocks put
    a screen at several times its time. Evenly spaced, because a
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
    if sample is None:
        longest = max((len(p.prompt) + p.probe.max_new_tokens for p in probes), default=1)
        sample = batch_size or auto_batch_size(subject, longest)
    rng = random.Random(seed)
    stride, offset = len(mutations) / blocks, rng.random()
    runs = (
        [mutations]
        if len(mutations) <= sample * blocks
        else [
            mutations[start : start + sample]
            for start in (min(int((k + offset) * stride), len(mutations) - sample) for k in range(blocks))
        ]
    )
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
