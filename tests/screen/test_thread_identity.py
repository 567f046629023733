"""A screen's stored numbers do not depend on the thread count or on workers (MKL strict mode).

The plan is the one where, before mutascope set ``MKL_CBWR=AUTO,STRICT``, effect sizes
at two threads differed from one thread in hundreds of mutants (up to 2.6e-4 nats):
layer 29's attention matrices of SmolLM2, max, min and zero, 4 new tokens (648 mutants).
Each screen runs as the command line in a fresh process with ``MKL_CBWR`` removed from
its environment, so the guarantee under test is the package's own setting.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from helpers import tables

pytestmark = [pytest.mark.real_model, pytest.mark.xdist_group("ray")]

PLAN = [
    "--probe",
    "drosophila",
    "--layers",
    "29",
    "--matrices",
    "q,k,v,o",
    "--kinds",
    "max,min,zero",
    "--max-new-tokens",
    "4",
]


def _screen(out, *options):
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    done = subprocess.run(
        [sys.executable, "-m", "mutascope", "screen", *PLAN, *options, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return tables(out)


def test_one_thread_two_threads_and_two_ray_workers_store_the_same_numbers(tmp_path):
    pytest.importorskip("ray")
    two = _screen(tmp_path / "two.duckdb", "--threads", "2")
    one = _screen(tmp_path / "one.duckdb", "--threads", "1")
    workers = _screen(tmp_path / "ray.duckdb", "--workers", "2")
    assert len(one["outcomes"]) == 648
    assert two == one  # every column of every table but wall-clock ones, bit for bit
    assert workers["outcomes"] == one["outcomes"] and workers["probes"] == one["probes"]
