"""Time and peak memory of `mutascope predict` against an inference pass, on SmolLM2.

Each measurement runs in a fresh process so its peak resident memory is its own:

* ``inference``: load the model, prepare the probes (their WT outputs) and run one
  teacher-forced forward pass of each probe's WT output;
* ``predict``: load the model, prepare the probes and compute every score of every
  mutant of the plan (two backward passes and one forward pass per probe, the first recording what
  the local estimate needs, then its exact step per mutant);
* ``first-order``: the same without the local estimate (its recording and exact step left out, so
  ``local`` is the first-order term): the figure issue 30's cost bound is stated against, measured
  again beside the others on the same machine.

The CPU time is printed beside the wall time: on a machine shared with other work, it is the
figure that compares.

    python benchmarks/bench_predict.py                       # full genome, max/min, drosophila + python
    python benchmarks/bench_predict.py --layers 0-3 --tokens 48
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(mode: str, layers: str, tokens: int) -> dict:
    import torch

    import mutascope as ms
    from mutascope.engine import ReferenceEngine, prepare_probes
    from mutascope.plan import PlanSpec, build_plan
    from mutascope.predict import predictions
    from mutascope.predict.scores import wt_loglik
    from mutascope.probes import Decoding

    torch.set_num_threads(1)
    subject = ms.load_model()
    probes = ms.resolve_probes(["drosophila", "python"], subject, max_new_tokens=tokens, decoding=Decoding("greedy"))
    prepared = prepare_probes(subject, ReferenceEngine(subject), probes)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    plan = build_plan(PlanSpec.parse(layers=layers, kinds="max,min"), subject.anatomy)
    t0, c0 = time.perf_counter(), time.process_time()
    if mode == "inference":
        with torch.inference_mode():
            for p in prepared:
                wt_loglik(subject, p)()
        n = 0
    else:
        if mode == "first-order":
            import contextlib

            from mutascope.predict import scores

            scores.recording = lambda subject, keys: contextlib.nullcontext()  # type: ignore[assignment]
            scores.local_effects = lambda subject, record, by_key: {}  # type: ignore[assignment]
        n = len(predictions(subject, plan.mutations, prepared, plan.spec.tile))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "mode": mode,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": n,
        "mutants": len(plan),
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "after_load_mib": loaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", default="all")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.layers, args.tokens)))
        return
    for mode in ("inference", "first-order", "predict"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--layers", args.layers, "--tokens", str(args.tokens)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['mode']:>11}: {r['seconds']:7.1f} s ({r['cpu_seconds']:.1f} s of CPU) for 2 probes ({r['rows']} "
            "mutant-probe scores of "
            f"{r['mutants']} mutants), peak memory {r['peak_mib']:.0f} MiB (after loading and preparing: "
            f"{r['after_load_mib']:.0f} MiB)"
        )


if __name__ == "__main__":
    main()
