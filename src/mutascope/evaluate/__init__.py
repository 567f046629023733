"""What a changed model still does: the measurements several methods share.

* :mod:`.likelihood`: perplexity on a corpus (pooled NLL sums), the shipped corpus;
* :mod:`.choices`: multiple-choice accuracy (letter logits), MMLU prompts.

Super-weight ablations, Wanda pruning and its calibration transfer, and the
specialization score all measure a model with these, so that their numbers
mean the same thing.
"""

from .choices import ChoiceSet, choice_accuracy, choice_prompts, choice_set, token_id
from .likelihood import corpus_ids, default_corpus, nll, perplexity, pooled_perplexity, read_corpus

__all__ = [
    "ChoiceSet",
    "choice_accuracy",
    "choice_prompts",
    "choice_set",
    "corpus_ids",
    "default_corpus",
    "nll",
    "perplexity",
    "pooled_perplexity",
    "read_corpus",
    "token_id",
]
