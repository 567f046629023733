"""Semantic pairs: the paper's third validation (arXiv 2405.17799).

The claim: two sentences of consistent meaning share activation patterns in
*deep* layers (the paper used STS-B and SICK). For each pair of sentences
with a graded similarity score, both sentences' activation maps are
computed (:func:`.gradients.activation_maps`, one backward each) and their
per-layer cosine taken exactly as for the within/across-domain similarities
(all seven matrices of the layer flattened together, in float64). Per
layer, the Spearman correlation between the pairs' cosines and their scores
says how far the layer's pattern tracks meaning; its p-value is a
permutation test (the scores shuffled over the pairs, two-sided, with the
observed statistic counted among the permutations, so p >= 1 / (B + 1)).

Pair files use the STS-B TSV layout: a header row, tab-separated, with
columns ``score``, ``sentence1``, ``sentence2``. Columns are found by
header name, so the real STS-B (GLUE ``.tsv``, with index, genre and other
columns) and SICK (``relatedness_score``, ``sentence_A``, ``sentence_B``)
files are read as they come; quotes are literal text, as in those files.
The project ships 48 pairs written for it, graded 0-5 over the whole range
in STS-B's sense (5: same meaning, 0: unrelated), in
``mutascope/data/semantic_pairs.tsv``.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..files.text import read_text_file
from ..model.subject import Subject
from .gradients import activation_maps, encode

__all__ = [
    "Pair",
    "cosine_frame",
    "depth_summary",
    "layer_cosines",
    "pair_cosines",
    "read_pairs",
    "semantic_correlation",
    "shipped_pairs",
]

SCORE_COLUMNS = ("score", "relatedness_score", "similarity", "similarity_score")
FIRST_COLUMNS = ("sentence1", "sentence_a", "sentence_1")
SECOND_COLUMNS = ("sentence2", "sentence_b", "sentence_2")
SHIPPED_PAIRS = "data/semantic_pairs.tsv"


@dataclass(frozen=True)
class Pair:
    """Two sentences and how similar in meaning they are (STS-B: 0 unrelated .. 5 equivalent)."""

    score: float
    sentence1: str
    sentence2: str


def _column(header: list[str], names: tuple[str, ...], what: str, where: str) -> int:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    raise InputError(f"{where}: no {what} column in the header (looked for {', '.join(names)})")


def _parse(text: str, where: str) -> list[Pair]:
    rows = list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))
    numbered = [(n, r) for n, r in enumerate(rows, 1) if any(c.strip() for c in r)]
    if not numbered:
        raise InputError(f"{where}: is empty; expected a header with score, sentence1, sentence2")
    (_, header), body = numbered[0], numbered[1:]
    cols = (
        _column(header, SCORE_COLUMNS, "score", where),
        _column(header, FIRST_COLUMNS, "sentence1", where),
        _column(header, SECOND_COLUMNS, "sentence2", where),
    )
    pairs = []
    for line, row in body:
        if len(row) <= max(cols):
            raise InputError(f"{where} line {line}: has {len(row)} tab-separated fields, the header {len(header)}")
        raw, s1, s2 = (row[c].strip() for c in cols)
        try:
            score = float(raw)
        except ValueError:
            raise InputError(f"{where} line {line}: score {raw!r} is not a number") from None
        if not math.isfinite(score):
            raise InputError(f"{where} line {line}: score {raw!r} is not a finite number")
        if not s1 or not s2:
            raise InputError(f"{where} line {line}: a sentence is empty")
        pairs.append(Pair(score, s1, s2))
    if len(pairs) < 3:
        raise InputError(f"{where}: needs at least 3 pairs for a rank correlation, has {len(pairs)}")
    if len({p.score for p in pairs}) < 2:
        raise InputError(f"{where}: every pair has the same score; a correlation needs graded scores")
    return pairs


def read_pairs(path: str | Path) -> list[Pair]:
    """Pairs from a TSV file in the STS-B layout (columns found by header name)."""
    p = Path(path)
    return _parse(
        read_text_file(p, "pair file", "pass a TSV file with score, sentence1, sentence2 columns"), f"pair file {p}"
    )


def shipped_pairs() -> list[Pair]:
    """The 48 pairs shipped with mutascope, graded 0-5."""
    text = resources.files("mutascope").joinpath(SHIPPED_PAIRS).read_text(encoding="utf-8")
    return _parse(text, "shipped pair file")


def layer_cosines(subject: Subject, first: str, second: str, max_tokens: int | None = 128) -> list[float]:
    """cosine(|A(first)|, |A(second)|) per layer, the layer's matrices taken as one vector.

    Dot products and norms are summed matrix by matrix in float64, so only
    the two inputs' maps (and one matrix's float64 copy) are held at a time.
    """
    a = activation_maps(subject, encode(subject, first, max_tokens)).maps
    b = activation_maps(subject, encode(subject, second, max_tokens)).maps
    out = []
    for layer in range(subject.anatomy.n_layers):
        dot = na = nb = 0.0
        for m in subject.anatomy.matrices:
            x, y = a[(layer, m)].double(), b[(layer, m)].double()
            dot += float((x * y).sum())
            na += float((x * x).sum())
            nb += float((y * y).sum())
        norm = math.sqrt(na * nb)
        out.append(dot / norm if norm > 0 else math.nan)
    return out


def pair_cosines(
    subject: Subject,
    pairs: Sequence[Pair],
    *,
    max_tokens: int | None = 128,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """:func:`layer_cosines` of every pair: an array (pairs, layers). The model is only read."""
    if not pairs:
        raise InputError("no sentence pairs given")
    out = np.empty((len(pairs), subject.anatomy.n_layers))
    for i, pair in enumerate(pairs):
        out[i] = layer_cosines(subject, pair.sentence1, pair.sentence2, max_tokens)
        if progress is not None:
            progress(i + 1, len(pairs))
    return out


def _ranks(x: np.ndarray, axis: int = 0) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(x, axis=axis)


def semantic_correlation(
    cosines: np.ndarray, scores: Sequence[float], *, permutations: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per layer: Spearman rho of the pairs' cosines against their scores, with a permutation p-value.

    ``cosines`` is (pairs, layers). The same ``permutations`` shuffles of the
    scores (seeded) are used for every layer. A layer whose cosines are all
    equal has no rank correlation (rho and p are NaN).
    """
    c = np.asarray(cosines, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != len(s):
        raise InputError("need one row of per-layer cosines per scored pair")
    if len(s) < 3:
        raise InputError(f"a rank correlation needs at least 3 pairs, got {len(s)}")
    if permutations < 1:
        raise InputError(f"permutations must be >= 1, got {permutations}")
    rs = _ranks(s)
    rs = rs - rs.mean()
    rc = _ranks(c, axis=0)
    rc = rc - rc.mean(axis=0)
    cnorm = np.sqrt((rc**2).sum(axis=0))
    snorm = math.sqrt(float((rs**2).sum()))
    if snorm == 0:
        raise InputError("every pair has the same score; a correlation needs graded scores")
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (rs @ rc) / (snorm * cnorm)
        rng = np.random.default_rng(seed)
        perm = np.stack([rng.permutation(rs) for _ in range(permutations)])  # (B, pairs)
        null = (perm @ rc) / (snorm * cnorm)  # (B, layers)
        tol = 1e-12
        p = (1 + (np.abs(null) >= np.abs(rho) - tol).sum(axis=0)) / (permutations + 1)
    p = np.where(np.isfinite(rho), p, np.nan)
    layers = np.arange(c.shape[1])
    return pd.DataFrame(
        {
            "layer": layers,
            "n_pairs": len(s),
            "spearman_rho": rho,
            "p_value": p,
            "permutations": permutations,
            "cosine_mean": np.nanmean(c, axis=0),
            "cosine_min": np.nanmin(c, axis=0),
            "cosine_max": np.nanmax(c, axis=0),
        }
    )


def cosine_frame(pairs: Sequence[Pair], cosines: np.ndarray) -> pd.DataFrame:
    """Long table: one row per pair and layer (pair index, score, sentences' start, cosine)."""
    rows = []
    for i, pair in enumerate(pairs):
        for layer, cos in enumerate(cosines[i]):
            rows.append((i, layer, pair.score, float(cos), pair.sentence1[:200], pair.sentence2[:200]))
    return pd.DataFrame(rows, columns=["pair", "layer", "score", "cosine", "sentence1", "sentence2"])


def depth_summary(table: pd.DataFrame) -> tuple[float, float]:
    """Mean rho of the shallow third and of the deep third of the layers (the paper's contrast,
    the same thirds as :func:`.stats.findings`)."""
    from .stats import _thirds

    rho = table.sort_values("layer")["spearman_rho"].to_numpy()
    shallow, deep = _thirds(len(rho))
    return float(np.nanmean(rho[shallow])), float(np.nanmean(rho[deep]))
