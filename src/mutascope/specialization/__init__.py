"""Parameter specialization for knowledge (arXiv 2505.17260; docs/methods.md, "4. Parameter specialization").

How concentrated a model's knowledge of a concept is in a few value vectors
(columns of ``down``): rank them by how much more active they are on the
concept's questions than on unrelated ones, mask the top k, and compare the
accuracy drop on the concept with that on the controls (PSS), against random
masks of the same size.

One idea per module:

* :mod:`.concepts`     question-set files (YAML / JSONL), controls;
* :mod:`.answers`      prompts and accuracy (cloze or letter);
* :mod:`.coefficients` activations entering ``down`` and the ranking;
* :mod:`.masking`      zeroing value vectors, always undone; random masks;
* :mod:`.score`        PSS per concept and k, summaries;
* :mod:`.finetune`     the fine-tuning experiment's arms, data order and the tuning itself;
* :mod:`.hallucination` confidence, abstention and hallucination of an answer;
* :mod:`.causal`       the fine-tuning experiment per concept, repeat, k and arm, and its tests;
* :mod:`.figures`      PSS against k (PNG);
* :mod:`.store`        DuckDB tables;
* :mod:`.run`          ``mutascope specialization`` as one library call.

Typical use::

    from mutascope import load_model
    from mutascope import specialization as sp
    subject = load_model()
    concepts = sp.resolve_controls(sp.load_concepts())
    result = sp.specialization(subject, concepts, ks=[10, 100])
    table = sp.summary([result])
"""

from .answers import METHODS, accuracy, letter_ids, prepare, prompt
from .causal import FinetuneResult, arm_table, comparisons, finetune_experiment
from .coefficients import Ranking, answer_coefficients, rank_vectors
from .concepts import Concept, default_concepts_path, finetune_concepts_path, load_concepts, resolve_controls, select
from .figures import finetune_figure, pss_figure, write_figure, write_finetune_figure
from .finetune import ARMS, tuned
from .masking import masked, n_vectors, random_vectors
from .score import DEFAULT_DRAWS, DEFAULT_KS, ModelResult, Score, concept_table, pss, specialization, summary
from .store import FINETUNE_TABLES, TABLES, finetune_frames, frames, write_finetune, write_results

__all__ = [
    "ARMS",
    "FINETUNE_TABLES",
    "FinetuneResult",
    "arm_table",
    "comparisons",
    "finetune_experiment",
    "finetune_figure",
    "finetune_frames",
    "tuned",
    "write_finetune",
    "write_finetune_figure",
    "DEFAULT_DRAWS",
    "DEFAULT_KS",
    "METHODS",
    "TABLES",
    "Concept",
    "ModelResult",
    "Ranking",
    "Score",
    "accuracy",
    "answer_coefficients",
    "concept_table",
    "default_concepts_path",
    "finetune_concepts_path",
    "frames",
    "letter_ids",
    "load_concepts",
    "masked",
    "n_vectors",
    "prepare",
    "prompt",
    "pss",
    "pss_figure",
    "random_vectors",
    "rank_vectors",
    "resolve_controls",
    "select",
    "specialization",
    "summary",
    "write_figure",
    "write_results",
]
