"""Phenotypes of a screen: what each non-silent mutant's output looks like.

A screen records *whether* each mutant's output changed; this package says
*how*: how far its meaning moved from the wild type's (similarity, severity
band, token edit distance), what kind of text it became (category, first
word), how it scores on multiple-choice sets (``a|b``), and whether it is
malignant. :func:`phenotype_results` computes all of it for an existing
results file without rerunning the screen; :func:`show_mutant` and
:func:`render_show` look at one mutant.

Modules, one idea each: :mod:`.similarity` (embeddings, severity, edit
distance), :mod:`.categories` (the rule-based classifier), :mod:`.choice`
(multiple-choice scores, malignancy), :mod:`.store` (the phenotypes
computed and kept in the results file, through :mod:`mutascope.store.phenotypes`),
:mod:`.show` (one mutant), :mod:`.zoomed` (one region of the ``zoom`` table).
"""

from .categories import CATEGORIES, categorize, first_word
from .choice import (
    MALIGNANT_MAX_SCORE,
    MALIGNANT_MAX_SIMILARITY,
    ChoiceScore,
    is_malignant,
    is_mmlu21_group,
    score_choices,
)
from .show import DIFF_MARK, MutantView, ProbeView, parse_site, render_show, show_mutant
from .similarity import (
    EMBEDDING_MODEL,
    SEVERITY_BANDS,
    SEVERITY_LABELS,
    EmbeddingCache,
    SentenceEmbedder,
    TextEmbedder,
    load_embedder,
    severity_band,
    token_edit_distance,
)
from .store import PHENOTYPE_TABLES, PhenotypeSummary, has_phenotypes, phenotype_results
from .zoomed import RegionProbe, RegionView, render_region, show_region, with_outputs

__all__ = [
    "CATEGORIES",
    "DIFF_MARK",
    "EMBEDDING_MODEL",
    "MALIGNANT_MAX_SCORE",
    "MALIGNANT_MAX_SIMILARITY",
    "PHENOTYPE_TABLES",
    "SEVERITY_BANDS",
    "SEVERITY_LABELS",
    "ChoiceScore",
    "EmbeddingCache",
    "MutantView",
    "PhenotypeSummary",
    "ProbeView",
    "RegionProbe",
    "RegionView",
    "SentenceEmbedder",
    "TextEmbedder",
    "categorize",
    "first_word",
    "has_phenotypes",
    "is_malignant",
    "is_mmlu21_group",
    "load_embedder",
    "parse_site",
    "phenotype_results",
    "render_region",
    "render_show",
    "score_choices",
    "severity_band",
    "show_mutant",
    "show_region",
    "token_edit_distance",
    "with_outputs",
]
