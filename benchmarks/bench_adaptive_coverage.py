"""Coverage of the adaptive screen's audited 95 % interval on synthetic maps with a known answer
(docs/adaptive.md): per plan size and budget, the share of replicate screens whose interval for
the share of the top 1 % found (and of NSMs found) covers the truth. The maps and the screen's
choice are tests/screen/test_adaptive.py's (clustered, heavy-tailed effects; an oracle blurred by noise).

Usage (from the repository root): PYTHONPATH=src:tests python benchmarks/bench_adaptive_coverage.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from screen.test_adaptive import coverage_rates  # noqa: E402

if __name__ == "__main__":
    for n_chunks in (600, 1620):
        for budget in (0.05, 0.1, 0.2):
            rates = coverage_rates(replicates=200, n_chunks=n_chunks, budget_share=budget)
            print(
                f"{n_chunks} chunks of 32, budget {budget:.0%}: " + ", ".join(f"{k} {v:.1%}" for k, v in rates.items())
            )
