"""Power of the fine-tuning experiment's paired comparisons, by simulation.

``mutascope specialization --finetune`` compares two arms (specific - random,
specific - general) over concepts by the exact Wilcoxon signed-rank test of
the per-concept differences, and computes Benjamini-Hochberg q-values over
one family per model: every (k, measure, comparison), ``2 * 3 * len(ks)``
tests (:mod:`mutascope.specialization.causal`; 12 with the default
``--k 10 --k 100``). This script asks how often one real effect in that
family is found (q <= 0.05) when the other tests are null, with the
project's own test (:func:`mutascope.analysis.exact.signed_rank`) and BH
(:func:`mutascope.analysis.exact.bh`), the null p-values drawn uniform. Two
models of the per-concept differences:

* **normal**: differences ~ N(d_z, 1), so ``d_z`` is the standardized
  effect (mean difference over its standard deviation across concepts);
* **held-out accuracy**: each concept has ``--heldout-questions`` held-out
  questions; on each, the two arms give different answers (one right, one
  wrong) with probability ``discord``, and when they do the specific arm is
  the right one with probability ``(1 + gain / discord) / 2``, so the mean
  difference in accuracy is ``gain``. Differences move in steps of one
  question, and concepts with a zero difference drop out of the test, as in
  the real tables.

    python benchmarks/power_finetune.py --concepts 10 --concepts 30 --family 12 --draws 2000

The numbers are in docs/specialization.md ("Power").
"""

from __future__ import annotations

import argparse

import numpy as np


def power(
    sample, n_concepts: int, family: int, draws: int, rng: np.random.Generator, alpha: float = 0.05
) -> tuple[float, float]:
    """``(alone, in_family)``: the share of ``draws`` with p <= alpha as a single test, and with
    q <= alpha among ``family - 1`` null tests (BH)."""
    from mutascope.analysis.exact import bh, signed_rank

    alone = found = 0
    for _ in range(draws):
        p = signed_rank(sample(n_concepts, rng))["p_value"]
        p = 1.0 if np.isnan(p) else p  # every concept tied at zero: nothing to find
        alone += p <= alpha
        q = bh(np.concatenate([[p], rng.uniform(size=family - 1)]))[0]
        found += q <= alpha
    return alone / draws, found / draws


def normal(dz: float):
    return lambda n, rng: rng.normal(dz, 1.0, size=n)


def heldout(gain: float, discord: float, questions: int):
    right = (1 + gain / discord) / 2
    if not 0 <= right <= 1:
        raise SystemExit(f"gain {gain} is impossible with discord {discord}")

    def sample(n, rng):
        differ = rng.random((n, questions)) < discord
        sign = np.where(rng.random((n, questions)) < right, 1, -1)
        return (differ * sign).sum(1) / questions

    return sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", type=int, action="append", help="numbers of concepts (repeatable)")
    parser.add_argument("--family", type=int, default=12, help="tests in the BH family (2 x 3 x number of k)")
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--heldout-questions", type=int, default=10)
    parser.add_argument(
        "--discord",
        type=float,
        action="append",
        help="share of held-out questions the two arms answer differently (repeatable)",
    )
    parser.add_argument("--dz", type=float, action="append", help="standardized effects (repeatable)")
    parser.add_argument("--gain", type=float, action="append", help="accuracy gains (repeatable)")
    args = parser.parse_args()
    concepts = args.concepts or [10, 30]
    dzs = args.dz or [0.5, 0.75, 1.0]
    gains = args.gain or [0.05, 0.1, 0.15]
    discords = args.discord or [0.2, 0.4]
    print(
        f"power: share of {args.draws} draws found; 'alone' p <= 0.05, 'family' q <= 0.05 among "
        f"{args.family} tests (BH, the others null)"
    )
    print("model | effect | " + " | ".join(f"{n} concepts: alone, family" for n in concepts))
    for dz in dzs:
        cells = [power(normal(dz), n, args.family, args.draws, np.random.default_rng([args.seed, n])) for n in concepts]
        print(f"normal | d_z {dz} | " + " | ".join(f"{a:.2f}, {f:.2f}" for a, f in cells))
    for discord in discords:
        for gain in gains:
            model = heldout(gain, discord, args.heldout_questions)
            cells = [power(model, n, args.family, args.draws, np.random.default_rng([args.seed, n])) for n in concepts]
            print(
                f"held-out ({args.heldout_questions} questions, discord {discord}) | gain {gain} | "
                + " | ".join(f"{a:.2f}, {f:.2f}" for a, f in cells)
            )


if __name__ == "__main__":
    main()
