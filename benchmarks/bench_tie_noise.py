"""How far the batched engine's decision margins are from the reference's: the float noise the tie tolerance covers.

Usage:
    .venv/bin/python benchmarks/bench_tie_noise.py [--model ID] [--dtype bfloat16] [--mutations 48] \
        [--tokens 48] [--probe drosophila]

For random max/min mutations, the batched engine records the top-1/top-2
score margin at each NSM's divergence step. The reference engine's own scores
at that step (Hugging Face ``generate`` on the mutated weights) give the same
margin computed another way. Printed: the largest difference relative to the
largest |score|, next to the engine's near-tie tolerance for the model's
dtype. The tolerance must stay well above the difference: a decision whose
margin is below the tolerance is re-checked with the reference engine.
"""

from __future__ import annotations

import argparse
import dataclasses
import random

import torch
from transformers import GenerationConfig, LogitsProcessorList

from mutascope.engine import BatchedEngine, ReferenceEngine, prepare_probes
from mutascope.model.subject import load_model
from mutascope.plan import PlanSpec, applied, build_plan
from mutascope.probes import builtin_probe
from mutascope.probes.chooser import ChooserLogitsProcessor


def reference_scores(subject, probe, mutation, steps: int) -> tuple[torch.Tensor, ...]:
    """The decoder scores of the reference's first ``steps`` decisions for ``mutation``."""
    ids = torch.tensor([probe.prompt], device=subject.device)
    config = GenerationConfig(
        max_new_tokens=steps,
        do_sample=False,
        num_beams=1,
        pad_token_id=0,
        output_scores=True,
        return_dict_in_generate=True,
    )
    processors = LogitsProcessorList([ChooserLogitsProcessor(probe.chooser, len(probe.prompt))])
    with applied(subject.anatomy.weight(mutation.layer, mutation.matrix), mutation), torch.inference_mode():
        out = subject.model.generate(
            ids, attention_mask=torch.ones_like(ids), generation_config=config, logits_processor=processors
        )
    return out.scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument(
        "--dtype", default="float32", help="the model's dtype (bfloat16: the bound a bfloat16 screen needs)"
    )
    parser.add_argument("--mutations", type=int, default=48)
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--probe", default="drosophila")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    subject = load_model(args.model, dtype=args.dtype)
    probe = dataclasses.replace(builtin_probe(args.probe), max_new_tokens=args.tokens)
    (prepared,) = prepare_probes(subject, ReferenceEngine(subject), [probe])
    plan = build_plan(PlanSpec.parse(kinds="max,min"), subject.anatomy)
    mutations = sorted(random.Random(args.seed).sample(plan.mutations, args.mutations), key=lambda m: m.mutation_id)
    engine = BatchedEngine(subject)
    rows = [r for rs in engine.run(mutations, [prepared]) for r in rs]
    worst, compared = 0.0, 0
    for mutation, row in zip(mutations, rows):
        if row.divergence is None or row.margin is None:
            continue
        scores = reference_scores(subject, prepared, mutation, row.divergence + 1)[row.divergence][0].float()
        top = scores.topk(2).values
        difference = abs(float(top[0] - top[1]) - row.margin) / float(scores.abs().max())
        worst, compared = max(worst, difference), compared + 1
    print(f"{subject.model_id} ({subject.dtype}), probe {probe.id}: {compared} divergence-step margins compared")
    print(
        f"largest |batched - reference| / max|score|: {worst:.2e}; near-tie tolerance: {engine.tie_tolerance:.0e} "
        f"({engine.tie_tolerance / max(worst, 1e-30):.0f}x the largest difference)"
    )


if __name__ == "__main__":
    main()
