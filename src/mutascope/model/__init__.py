"""The model under study: loading it (the "subject") and the map of its mutable matrices.

* :mod:`.subject`: load a causal LM from a hub id, a directory, a ``.gguf``
  file or the bundled default; dtype and device; ``content_hash()`` proves
  weights are restored bit for bit; the tokenizer's end-of-sequence ids and
  text decoding;
* :mod:`.anatomy`: the catalogue of mutable matrices under canonical names
  ``q k v o gate up down``, with views of canonical shape that write through.

Every later stage gets model, tokenizer and anatomy from one :class:`Subject`.
"""

from .anatomy import MATRICES, Anatomy, MatrixRef, anatomy_of
from .subject import DEFAULT_MODEL, Subject, decode_text, eos_ids, load_model, model_key, vocab_size

__all__ = [
    "DEFAULT_MODEL",
    "MATRICES",
    "Anatomy",
    "MatrixRef",
    "Subject",
    "anatomy_of",
    "decode_text",
    "eos_ids",
    "load_model",
    "model_key",
    "vocab_size",
]
