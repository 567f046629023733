"""The model under study: loading it (the "subject") and the map of its mutable matrices.

* :mod:`.subject`: load a causal LM from a hub id, a directory, a ``.gguf``
  file or the bundled default; dtype and device; ``content_hash()`` proves
  weights are restored bit for bit; the tokenizer's end-of-sequence ids and
  text decoding;
* :mod:`.anatomy`: the catalogue of mutable matrices under canonical names
  ``q k v o gate up down``, with views of canonical shape that write through;
* :mod:`.source`: what is known before the model loads (the canonical names,
  ``--model`` resolved, the layer count its config states), without torch.

Every later stage gets model, tokenizer and anatomy from one :class:`Subject`.
Names are imported on first use (PEP 562), so importing :mod:`.source` (the
commands' argument checks) does not import torch.
"""

from __future__ import annotations

TYPE_CHECKING = False

# public name -> the submodule that defines it
_EXPORTS = {
    "MATRICES": "source",
    "DEFAULT_MODEL": "source",
    "model_key": "source",
    "Anatomy": "anatomy",
    "MatrixRef": "anatomy",
    "anatomy_of": "anatomy",
    "Subject": "subject",
    "decode_text": "subject",
    "eos_ids": "subject",
    "load_model": "subject",
    "vocab_size": "subject",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


if TYPE_CHECKING:  # for type checkers and editors: the eager imports
    from .anatomy import Anatomy, MatrixRef, anatomy_of  # noqa: F401
    from .source import DEFAULT_MODEL, MATRICES, model_key  # noqa: F401
    from .subject import Subject, decode_text, eos_ids, load_model, vocab_size  # noqa: F401
