"""How long `mutascope specialization` takes with its defaults: seconds per question evaluation.

Times question evaluations (one cloze forward pass each, the shipped questions, unmasked
and under one random mask of k=100) on the default model, in wall-clock and CPU seconds,
and multiplies by the evaluations the defaults make. On a busy machine the CPU seconds
divided by the threads are the better guide (the command's first line quotes this figure
as ``SECONDS_PER_EVALUATION`` in mutascope/specialization/run.py).

    nice -n 10 python benchmarks/bench_specialization.py --threads 2 --questions 20
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--questions", type=int, default=20, help="distinct questions timed")
    args = parser.parse_args()

    import torch

    from mutascope.model.subject import load_model
    from mutascope.specialization import (
        DEFAULT_DRAWS,
        DEFAULT_KS,
        accuracy,
        load_concepts,
        masked,
        prepare,
        random_vectors,
        resolve_controls,
    )
    from mutascope.specialization.score import evaluations

    torch.set_num_threads(args.threads)
    subject = load_model(None)
    concepts = resolve_controls(load_concepts(None), 0)
    unique = list(dict.fromkeys(q for c in concepts for q in (*c.questions, *c.controls)))[: args.questions]
    singles = [prepare(subject, [q], "cloze") for q in unique]
    accuracy(subject, singles[0])  # warm-up
    wall, cpu = time.perf_counter(), time.process_time()
    with masked(subject, random_vectors(subject, 100, 0, 0)):
        for s in singles:
            accuracy(subject, s)
    wall, cpu = (time.perf_counter() - wall) / len(singles), (time.process_time() - cpu) / len(singles)
    n = evaluations(concepts, DEFAULT_KS, DEFAULT_DRAWS)
    print(
        f"{len(singles)} evaluations at {args.threads} threads: {wall:.3f} s wall, {cpu:.3f} s CPU each "
        f"({cpu / args.threads:.3f} s per evaluation if the threads had the cores to themselves)"
    )
    print(
        f"defaults (k={','.join(map(str, DEFAULT_KS))}, {DEFAULT_DRAWS} random draws): {n} evaluations: "
        f"{n * wall / 60:.1f} min at this wall-clock rate, {n * cpu / args.threads / 60:.1f} min on idle cores"
    )


if __name__ == "__main__":
    main()
