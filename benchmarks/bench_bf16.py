"""bfloat16 screens: the batched engine's near-tie re-checks and speed against the reference, before and after.

Usage:
    .venv/bin/python benchmarks/bench_bf16.py [--mutations 96] [--tokens 24] [--probe drosophila]
        [--dtype bfloat16] [--device cpu] [--modes forced,incremental] [--outputs calls,full]

One random plan of max/min tile mutants of SmolLM2-135M-Instruct in the given
dtype. The reference engine runs it once (every outcome). Then the batched
engine runs it with each detection mode:

* ``forced``: one teacher-forced pass per batch, with the dtype's near-tie
  bound (the design before incremental detection);
* ``incremental``: one token at a time with the reference's arithmetic,
  checked against ``generate`` on each probe's wild type (bit for bit), then
  re-checking only exact ties (docs/engines.md).

For each mode and outputs (``calls``: NSM calls, divergence steps and effect
sizes; ``full``: NSM outputs too) it prints the seconds, the speed-up over the
reference, how many rows were re-checked by the reference engine, and how many
outcomes differ from the reference's (calls: divergence step; full: tokens,
text and divergence step). Every figure of docs/engines.md's bfloat16 table
comes from this script.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time

import torch

from mutascope.engine import BatchedEngine, ReferenceEngine, prepare_probes
from mutascope.model.subject import load_model
from mutascope.plan import PlanSpec, build_plan
from mutascope.probes import builtin_probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutations", type=int, default=96)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--probe", default="drosophila")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--modes", default="forced,incremental")
    parser.add_argument("--outputs", default="calls,full")
    args = parser.parse_args()

    subject = load_model(device=args.device, dtype=args.dtype)
    probe = dataclasses.replace(builtin_probe(args.probe), max_new_tokens=args.tokens)
    reference = ReferenceEngine(subject)
    probes = prepare_probes(subject, reference, [probe])
    plan = build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy)
    mutations = sorted(random.Random(args.seed).sample(plan.mutations, args.mutations), key=lambda m: m.mutation_id)
    print(
        f"{subject.model_id} ({subject.dtype}, {args.device}, {torch.get_num_threads()} threads); probe {probe.id} "
        f"({probe.decoding.describe()}), {len(probes[0].prompt)} prompt + {len(probes[0].wt_tokens)} WT tokens; "
        f"{len(mutations)} max/min mutants in {len({m.layer for m in mutations})} layers",
        flush=True,
    )

    t0 = time.perf_counter()
    expected = [r for rows in reference.run(mutations, probes) for r in rows]
    ref_s = time.perf_counter() - t0
    nsm = sum(r.divergence is not None for r in expected)
    print(
        f"reference: {ref_s:.1f} s ({ref_s / len(mutations):.3f} s/mutant); {nsm} of {len(expected)} rows are NSMs",
        flush=True,
    )
    print(
        f"{'detection':<12} {'outputs':<7} {'seconds':>8} {'speed-up':>9} {'re-checked':>14} {'differ':>7} "
        f"{'exact probes':>13}"
    )
    for mode in args.modes.split(","):
        for outputs in args.outputs.split(","):
            engine = BatchedEngine(subject, detection=mode)
            t0 = time.perf_counter()
            rows = [r for rs in engine.run(mutations, probes, outputs=outputs) for r in rs]
            seconds = time.perf_counter() - t0
            if outputs == "full":
                differ = sum(
                    (a.tokens, a.text, a.divergence) != (b.tokens, b.text, b.divergence) for a, b in zip(rows, expected)
                )
            else:
                differ = sum(a.divergence != b.divergence for a, b in zip(rows, expected))
            rechecked = int(engine.stats["rechecked"])
            print(
                f"{mode:<12} {outputs:<7} {seconds:8.1f} {ref_s / seconds:8.1f}x {rechecked:>5} "
                f"({rechecked / len(rows):4.0%})"
                f" {differ:>7} {int(engine.stats['probes_exact']):>7} of {len(probes)}",
                flush=True,
            )


if __name__ == "__main__":
    main()
