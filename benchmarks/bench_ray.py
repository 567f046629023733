"""The Ray backend against the local one on the same plan: throughput and per-chunk overhead.

Usage:
    .venv/bin/python benchmarks/bench_ray.py [--model PATH] [--layers 20-21] [--matrices q,v] [--tokens 32]
        [--chunk 32] [--workers 1,2]

Runs one calls-only screen of the same plan into a fresh results file per
backend: the local backend with one torch thread (what one worker gets on a
2-core machine), then the Ray backend with each worker count, one thread per
worker, on a local Ray instance started here. Printed per backend: start-up
time (Ray: starting the instance and loading a model replica per worker),
mutants per second, the compute time the chunks took inside the engine, and
the rest of the wall time per chunk (committing rows, and for Ray moving the
task and its rows between processes). The Ray overhead per chunk is that
rest minus the local backend's. The tables of every run are checked equal.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import torch

from mutascope.model.subject import load_model
from mutascope.plan import PlanSpec
from mutascope.probes import Decoding, builtin_probe
from mutascope.screen import Screen
from mutascope.store import open_results


def screen_once(subject, probes, spec, path, chunk, backend=None):
    """Wall seconds of the run, compute seconds inside the engine (per chunk), and the chunk count."""
    job = Screen(subject, probes, spec, path, chunk_size=chunk, outputs="calls", backend=backend)
    job.prepared()
    t0 = time.perf_counter()
    job.run()
    wall = time.perf_counter() - t0
    with open_results(path) as r:
        compute, chunks = r.con.execute("SELECT sum(seconds), count(*) FROM progress").fetchone()
        rows = r.con.execute("SELECT * FROM outcomes ORDER BY ALL").fetchall()
    return wall, compute, chunks, len(job.mutations), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="default: the bundled SmolLM2-135M-Instruct")
    parser.add_argument("--layers", default="20-21")
    parser.add_argument("--matrices", default="q,v")
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()

    from mutascope.backends.ray import RayBackend

    torch.set_num_threads(1)
    subject = load_model(args.model)
    probe = dataclasses.replace(builtin_probe("drosophila"), decoding=Decoding("greedy"), max_new_tokens=args.tokens)
    spec = PlanSpec.parse(layers=args.layers, matrices=args.matrices, kinds="max,min")
    source = str(Path(args.model).resolve()) if args.model and os.path.exists(args.model) else args.model
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    print(
        f"model {subject.model_id}; plan layers {args.layers}, matrices {args.matrices}, max/min; "
        f"probe drosophila greedy {args.tokens} tokens; calls only; chunks of {args.chunk}; {os.cpu_count()} CPUs"
    )

    wall, compute, chunks, n, expected = screen_once(subject, [probe], spec, tmp / "local.duckdb", args.chunk)
    local_rest = (wall - compute) / chunks
    print(
        f"local, 1 thread:   start-up 0.0 s; {n / wall:6.3f} mutants/s; {chunks} chunks of {compute / chunks:.2f} s "
        f"compute, {local_rest * 1000:.0f} ms per chunk besides"
    )
    for workers in (int(w) for w in args.workers.split(",")):
        t0 = time.perf_counter()
        backend = RayBackend(source, subject.content_hash(), workers=workers, threads_per_worker=1)
        startup = time.perf_counter() - t0
        try:
            wall, compute, chunks, n, rows = screen_once(
                subject, [probe], spec, tmp / f"ray{workers}.duckdb", args.chunk, backend
            )
        finally:
            backend.close()
        # with W workers in parallel the chunks' compute overlaps: the rest is per chunk, per worker slot
        rest = (wall * workers - compute) / chunks
        print(
            f"Ray, {workers} worker{'s' if workers > 1 else ' '}:    start-up {startup:.1f} s; {n / wall:6.3f} "
            "mutants/s; "
            f"{chunks} chunks of {compute / chunks:.2f} s compute, {rest * 1000:.0f} ms per chunk besides "
            f"(Ray overhead {(rest - local_rest) * 1000:+.0f} ms per chunk); tables "
            f"{'identical' if rows == expected else 'DIFFERENT'} to local"
        )


if __name__ == "__main__":
    main()
