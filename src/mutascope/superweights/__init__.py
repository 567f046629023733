"""Super weights (arXiv 2411.07191): find them, prove what they do, export them.

One idea per module:

* :mod:`.detect`    spikes at ``down`` inputs/outputs, the zero-and-repeat iteration;
* :mod:`.ablate`    zero / scale / top-weight / activation-restoring ablations,
                    each a context manager that restores the model exactly;
* :mod:`.stopwords` stopword probabilities (perplexity and accuracy: :mod:`mutascope.evaluate`);
* :mod:`.proof`     the ablation and quantization tables;
* :mod:`.quantize`  round-to-nearest weights (INT4, INT3, any block size), naive and super-weight aware;
* :mod:`.actquant`  per-tensor activation quantization, the super activation held or not;
* :mod:`.figures`   perplexity against block size;
* :mod:`.catalogue` the paper's known coordinates and ``--check``;
* :mod:`.export`    JSON for quantizers and screen maps;
* :mod:`.store`     DuckDB tables;
* :mod:`.run`       ``mutascope superweights`` as one library call.

Typical use::

    from mutascope import load_model
    from mutascope import superweights as sw
    subject = load_model()
    found = sw.detect(subject)
    work = sw.Workload(sw.corpus_ids(subject, sw.default_corpus(), 1024))
    table = sw.ablation_table(subject, found.coords, work)
"""

from ..evaluate import ChoiceSet, choice_accuracy, choice_set, corpus_ids, default_corpus, perplexity, read_corpus
from . import store
from .ablate import Coord, activation_restored, scaled, top_weights, top_zeroed, zeroed
from .actquant import activations_quantized, hold_channels, quantize_activation
from .catalogue import CATALOGUE, CheckResult, catalogue_key, check, known
from .detect import DEFAULT_PROBE_TEXTS, Detection, SuperActivation, SuperWeight, detect
from .export import export_dict, write_export
from .proof import SCALES, Measurement, Workload, ablation_table, activation_quant_table, quantization_table
from .quantize import PER_ROW, PER_TENSOR, clip_z, parse_bits, parse_blocks, quantized, rtn
from .stopwords import STOPWORD_PROMPTS, STOPWORDS, stopword_probs
from .store import frames, write_results

__all__ = [
    "CATALOGUE",
    "PER_ROW",
    "PER_TENSOR",
    "DEFAULT_PROBE_TEXTS",
    "SCALES",
    "STOPWORDS",
    "STOPWORD_PROMPTS",
    "CheckResult",
    "ChoiceSet",
    "Coord",
    "Detection",
    "Measurement",
    "SuperActivation",
    "SuperWeight",
    "Workload",
    "ablation_table",
    "activation_quant_table",
    "activations_quantized",
    "activation_restored",
    "catalogue_key",
    "check",
    "choice_accuracy",
    "choice_set",
    "clip_z",
    "corpus_ids",
    "default_corpus",
    "detect",
    "export_dict",
    "frames",
    "hold_channels",
    "known",
    "parse_bits",
    "parse_blocks",
    "perplexity",
    "quantization_table",
    "quantize_activation",
    "quantized",
    "read_corpus",
    "rtn",
    "scaled",
    "stopword_probs",
    "store",
    "top_weights",
    "top_zeroed",
    "write_export",
    "write_results",
    "zeroed",
]
