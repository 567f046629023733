"""Probes: the inputs a screen runs, and how each one is decoded.

* :mod:`.probe`: :class:`Probe`, :class:`Decoding`, the paper's five built-in
  probes (``ID@chat``: the same probe with the chat template), prompt encoding;
* :mod:`.files`: probe files (YAML or JSONL), read strictly;
* :mod:`.mmlu`: MMLU-format CSVs, the 5-shot prompt, multiple-choice probes,
  the MMLU21 selection;
* :mod:`.resolve`: what ``--probe`` accepts, resolved to probes;
* :mod:`.chooser`: deterministic decoding (:class:`~.chooser.TokenChooser`);
* :mod:`.prepared`: probes ready to run on one model (prompt ids, chooser, WT
  output) and :func:`~.prepared.generate`, the model's output for a probe.

Importing this package does not import torch (``chooser`` and ``prepared`` do).
"""

from .files import load_probe_file
from .probe import (
    BUILTIN_PROBES,
    CHAT_SUFFIX,
    DECODING_METHODS,
    PROBE_KINDS,
    Decoding,
    Probe,
    builtin_probe,
    encode_probe,
)
from .resolve import count_probes, resolve_probes

__all__ = [
    "BUILTIN_PROBES",
    "CHAT_SUFFIX",
    "DECODING_METHODS",
    "PROBE_KINDS",
    "Decoding",
    "Probe",
    "builtin_probe",
    "count_probes",
    "encode_probe",
    "load_probe_file",
    "resolve_probes",
]
