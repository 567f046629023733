"""Reference vs batched engine on SmolLM2-135M: speed, agreement, memory, efficiency.

Usage:
    .venv/bin/python benchmarks/bench_engines.py [--mutations 64] [--tokens 48] [--probe drosophila]
        [--chunk 256] [--device cuda] [--dtype bfloat16]

Both engines run the same random plan (mutations drawn across all layers and
matrices). Printed: mutants per second for each engine and their ratio, how
many outcomes agree (tokens, text and divergence step), peak memory above the
loaded model during each engine's run, where the batched engine's time goes,
and the fraction of this machine's measured matrix-multiply throughput (in the
model's dtype) that the batched engine achieves (matmul FLOPs counted by
``torch.utils.flop_counter`` in a separate, untimed run).

The batched engine also runs the same plan calls only (``--outputs calls``:
detection and call re-checks, no continuation of NSMs): its rate beside the
full one, and whether every call, divergence step and effect size equals the
full run's.

``--chunk N`` also times the batched engine alone on N consecutive mutations
of the plan (what a screen feeds it: one layer and matrix at a time), full
and calls only, and compares those rates with the reference's rate above.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import threading
import time

import psutil
import torch
from torch.utils.flop_counter import FlopCounterMode

from mutascope.engine import BatchedEngine, ReferenceEngine, prepare_probes
from mutascope.model.subject import load_model
from mutascope.plan import PlanSpec, build_plan
from mutascope.probes import builtin_probe


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def matmul_gflops(device, dtype, n: int = 2048, repeats: int = 10) -> float:
    """This machine's matmul throughput in ``dtype`` (best of a few timed runs)."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    best = 0.0
    for _ in range(3):
        synchronize(device)
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        synchronize(device)
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9)
    return best


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed_run(engine, mutations, probes, outputs="full"):
    device = next(engine.subject.model.parameters()).device
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        run = engine.run(mutations, probes) if outputs == "full" else engine.run(mutations, probes, outputs=outputs)
        rows = [r for rs in run for r in rs]
        synchronize(device)
        seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else mem.peak - mem.base
    return rows, seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=64)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--probe", default="drosophila")
    parser.add_argument("--kinds", default="max,min")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--chunk", type=int, default=0, help="also time N consecutive plan mutations")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args()

    subject = load_model(device=args.device, dtype=args.dtype)
    probe = dataclasses.replace(builtin_probe(args.probe), max_new_tokens=args.tokens)
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, [probe])
    plan = build_plan(PlanSpec.parse(kinds=args.kinds), subject.anatomy)
    mutations = sorted(random.Random(args.seed).sample(plan.mutations, args.mutations), key=lambda m: m.mutation_id)
    print(
        f"model {subject.model_id} ({subject.dtype}, {torch.get_num_threads()} threads); probe {probe.id} "
        f"({probe.decoding.describe()}), {len(probes[0].prompt)} prompt + {len(probes[0].wt_tokens)} WT tokens; "
        f"{len(mutations)} mutations in {len({m.layer for m in mutations})} layers, "
        f"{len({m.matrix for m in mutations})} matrices, kinds {args.kinds}"
    )

    batched = BatchedEngine(subject, batch_size=args.batch_size)
    fast_rows, fast_s, fast_mem = timed_run(batched, mutations, probes)
    calls_rows, calls_s, calls_mem = timed_run(
        BatchedEngine(subject, batch_size=args.batch_size), mutations, probes, "calls"
    )
    ref_rows, ref_s, ref_mem = timed_run(reference, mutations, probes)

    key = lambda r: (r.mutation_id, r.probe_id, r.tokens, r.text, r.divergence)  # noqa: E731
    agree = sum(key(a) == key(b) for a, b in zip(fast_rows, ref_rows))
    nsm = sum(r.nsm for r in ref_rows)
    with FlopCounterMode(display=False) as counter:
        list(BatchedEngine(subject, batch_size=args.batch_size).run(mutations, probes))
    flops = counter.get_total_flops()
    peak = matmul_gflops(args.device, subject.dtype)
    achieved = flops / fast_s / 1e9

    n = len(mutations)
    print(f"NSMs: {nsm}/{len(ref_rows)}; divergence steps: {sorted(r.divergence for r in ref_rows if r.nsm)}")
    print(
        f"rechecked near ties: {sum(r.rechecked for r in fast_rows)} of {len(fast_rows)} rows "
        f"({sum(r.rechecked for r in fast_rows) / len(fast_rows):.0%}); smallest margins: "
        f"{sorted(round(r.min_margin, 5) for r in fast_rows)[:5]}"
    )
    st = batched.stats
    print(
        f"batched time: wild type {st['wild_type_s']:.2f} s, detection {st['detect_s']:.2f} s, "
        f"continuation {st['continue_s']:.2f} s ({st['continued']:.0f} NSMs), "
        f"re-checks {st['recheck_s']:.2f} s ({st['rechecked']:.0f} outcomes); "
        f"fast head: {batched.head.fast}"
    )
    print(f"reference: {n / ref_s:8.3f} mutants/s ({ref_s / n:.3f} s/mutant), peak memory +{ref_mem / 2**20:.0f} MiB")
    print(
        f"batched:   {n / fast_s:8.3f} mutants/s ({fast_s / n:.3f} s/mutant), peak memory +{fast_mem / 2**20:.0f} MiB"
    )
    print(f"ratio:     {ref_s / fast_s:8.1f}x")
    print(
        f"calls only:{n / calls_s:8.3f} mutants/s ({calls_s / n:.3f} s/mutant), peak memory +{calls_mem / 2**20:.0f} "
        f"MiB; {fast_s / calls_s:.1f}x the full batched rate, {ref_s / calls_s:.1f}x the reference"
    )
    print(f"agreement: {agree}/{len(ref_rows)} outcomes identical")
    call = lambda r: (r.mutation_id, r.probe_id, r.divergence, r.margin, r.min_margin, r.logprob_drop, r.rechecked)  # noqa: E731
    same = sum(call(a) == call(b) for a, b in zip(calls_rows, fast_rows))
    print(
        f"calls only vs full: {same}/{len(fast_rows)} calls, divergence steps and effect sizes identical; "
        f"{sum(r.tokens is None for r in calls_rows)} NSM outputs left to `mutascope fill`"
    )
    print(
        f"batched matmul throughput: {achieved:.1f} GFLOP/s = {achieved / peak:.0%} of measured "
        f"{peak:.1f} GFLOP/s ({flops / n / 1e9:.2f} GFLOP per mutant)"
    )
    if args.chunk:
        start = random.Random(args.seed + 1).randrange(len(plan.mutations) - args.chunk)
        chunk = plan.mutations[start : start + args.chunk]
        _, chunk_s, chunk_mem = timed_run(BatchedEngine(subject, batch_size=args.batch_size), chunk, probes)
        _, chunk_calls_s, _ = timed_run(BatchedEngine(subject, batch_size=args.batch_size), chunk, probes, "calls")
        where = sorted({(m.layer, m.matrix) for m in chunk})
        print(
            f"chunk of {len(chunk)} consecutive mutations {where}: batched {len(chunk) / chunk_s:.3f} mutants/s, "
            f"{ref_s / n / (chunk_s / len(chunk)):.1f}x the reference's rate above, "
            f"peak memory +{chunk_mem / 2**20:.0f} MiB; calls only {len(chunk) / chunk_calls_s:.3f} mutants/s "
            f"({chunk_s / chunk_calls_s:.1f}x full)"
        )


if __name__ == "__main__":
    main()
