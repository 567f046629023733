"""Activation patterns of parameters (arXiv 2405.17799) and layer-wise pruning from them.

One idea per module:

* :mod:`.inputs`    domains of input texts (text files, MMLU subjects);
* :mod:`.gradients` A = |w * dD/dw| for every matrix element, one backward per input;
* :mod:`.stats`     streamed per-domain means, activated fractions over a gamma grid,
                    per-layer cosine similarities, the paper's findings as numbers;
* :mod:`.tiles`     maps pooled to a screen's tiles, Spearman vs a screen's NSM rate;
* :mod:`.pruning`   layer-wise ratios from activated counts, Wanda, perplexity;
* :mod:`.transfer`  calibration-specific pruning: calibrate on each domain, evaluate on every one;
* :mod:`.pairs`     semantic pairs (STS-B layout): per-layer pattern cosine vs similarity score;
* :mod:`.figures`   PNG figures;
* :mod:`.store`     DuckDB tables;
* :mod:`.run`       ``mutascope activation`` as one library call.

Typical use::

    from mutascope import load_model
    from mutascope import activation as act
    subject = load_model()
    domains = act.default_domains(8)    # or, from MMLU subjects:
    domains = [act.parse_domain("law=mmlu:data/mmlu:international_law", 8),
               act.parse_domain("cs=mmlu:data/mmlu:college_computer_science", 8)]
    acc, inputs = act.collect(subject, domains)
    fractions = acc.fractions()          # the curve over DEFAULT_GAMMAS
    similarity = acc.similarity()
    print(act.findings(fractions, similarity))
"""

from . import store
from .gradients import InputMaps, activation_maps, encode, gradients_on, matrix_params
from .inputs import ALL, SHIPPED, Domain, default_domains, mmlu_texts, parse_domain, read_texts, shipped_texts
from .pairs import Pair, pair_cosines, read_pairs, semantic_correlation, shipped_pairs
from .pruning import LayerSparsity, PruneResult, compare_pruning, layerwise_sparsities, pruned, wanda_prune
from .stats import DEFAULT_GAMMAS, PAPER_GAMMAS, ActivationAccumulator, collect, findings, parse_gammas
from .tiles import pool_tiles, screen_correlation, screen_nsm_rates, tile_frame
from .transfer import TransferResult, calibration_transfer, check_heldout

__all__ = [
    "ALL",
    "SHIPPED",
    "store",
    "DEFAULT_GAMMAS",
    "PAPER_GAMMAS",
    "ActivationAccumulator",
    "Domain",
    "InputMaps",
    "LayerSparsity",
    "Pair",
    "PruneResult",
    "TransferResult",
    "activation_maps",
    "calibration_transfer",
    "check_heldout",
    "collect",
    "compare_pruning",
    "default_domains",
    "encode",
    "findings",
    "gradients_on",
    "layerwise_sparsities",
    "matrix_params",
    "pair_cosines",
    "mmlu_texts",
    "parse_domain",
    "parse_gammas",
    "pool_tiles",
    "pruned",
    "read_pairs",
    "read_texts",
    "screen_correlation",
    "screen_nsm_rates",
    "semantic_correlation",
    "shipped_pairs",
    "shipped_texts",
    "tile_frame",
    "wanda_prune",
]
