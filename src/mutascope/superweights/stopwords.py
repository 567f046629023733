"""Next-token probability of stopwords after a set of prompts (the paper saw "the", "." and ","
become 2-10x more likely without the super weight). A pure read of the model."""

from __future__ import annotations

import torch

from ..errors import InputError, MutascopeError
from ..evaluate.choices import token_id
from ..model.subject import Subject

STOPWORDS = (" the", ".", ",")

# Prompts after which a stopword is a plausible next token, so its probability
# is well above the floor and its change can be read.
STOPWORD_PROMPTS = (
    "She opened the door and walked into",
    "The results of the experiment were clear",
    "After dinner we went for a walk along",
    "He bought apples, pears",
    "The capital of France is Paris",
    "In the middle of",
    "They waited for a long time",
    "The meeting was moved to the end of",
)


def stopword_probs(
    subject: Subject, prompts: tuple[str, ...] | list[str] = STOPWORD_PROMPTS, words: tuple[str, ...] = STOPWORDS
) -> dict[str, float]:
    """Mean next-token probability of each stopword over ``prompts``.

    A word the tokenizer splits into several tokens has no single next-token
    probability; it is left out of the result rather than approximated.
    """
    if not prompts:
        raise InputError("stopword probabilities need at least one prompt")
    ids = {}
    for w in words:
        try:
            ids[w] = token_id(subject, w)
        except MutascopeError:
            continue  # not one token here (e.g. a byte-level test tokenizer): not measurable
    totals = dict.fromkeys(ids, 0.0)
    with torch.no_grad():
        for prompt in prompts:
            inp = subject.tokenizer(prompt, return_tensors="pt").input_ids.to(subject.device)
            probs = subject.model(inp).logits[0, -1].float().softmax(-1)
            for w, i in ids.items():
                totals[w] += float(probs[i])
    return {w: v / len(prompts) for w, v in totals.items()}
