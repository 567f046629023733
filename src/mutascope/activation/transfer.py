"""Calibration-specific pruning: the paper's second validation (arXiv 2405.17799).

The claim: a model pruned with one domain's calibration data handles that
domain better than unrelated ones. For every calibration domain in turn,
the model is Wanda-pruned twice -- at the uniform ratio S, and at the
layer-wise ratios that domain's own activated counts give
(:func:`.pruning.layerwise_sparsities`) -- and each pruned model is
evaluated on the held-out texts of *every* domain. The dense model is
evaluated once on each as the reference.

Evaluation, per evaluation domain:

* **perplexity** over its held-out texts, each text scored on its own (BOS
  first when the tokenizer uses one) and the NLL pooled over all of them,
  so short and long texts count by their tokens;
* **accuracy** where the held-out texts are multiple-choice prompts (an
  MMLU domain): the letter whose next-token logit is highest, as in
  :mod:`mutascope.evaluate`; chance is 25 %.

Held-out texts come after the domain's inputs in its source
(:mod:`.inputs`), so they are never calibration data; a source that repeats
a text verbatim in both parts is refused rather than silently evaluated on
its own calibration.

The result is a table of calibration domain x evaluation domain x method.
"The diagonal wins" for an evaluation domain when the model calibrated on
that domain has a lower perplexity on it than every model calibrated on
another domain; :meth:`TransferResult.summary` says by how much (the
off-diagonal perplexity over the diagonal one, minus 1). Every pruning runs
inside :func:`.pruning.pruned`, so the model is dense again afterwards
(content hash checked), also after an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..errors import InputError
from ..model.subject import Subject
from .gradients import encode
from .inputs import Domain
from .pruning import _matrix_sparsity, layerwise_sparsities, pruned

if TYPE_CHECKING:
    from ..evaluate import ChoiceSet

__all__ = ["DENSE", "METHODS", "Heldout", "TransferResult", "calibration_transfer", "check_heldout", "heldout_set"]

METHODS = ("uniform", "layerwise")
DENSE = "dense"  # the calibration domain and method of the unpruned reference rows


@dataclass(frozen=True)
class Heldout:
    """One domain's held-out texts, tokenized once: ids per text, and MC prompts where it has answers."""

    domain: str
    ids: tuple[torch.Tensor, ...]
    choices: ChoiceSet | None  # None: not multiple choice

    @property
    def n_tokens(self) -> int:
        return sum(len(i) - 1 for i in self.ids)


def check_heldout(domains: Sequence[Domain]) -> None:
    """Every domain has held-out text and none of it repeats one of its calibration inputs."""
    for d in domains:
        if not d.heldout:
            raise InputError(
                f"domain {d.name} has no held-out text after its {len(d.texts)} inputs: "
                "give fewer --inputs-per-domain or a source with more texts"
            )
        overlap = set(d.heldout) & set(d.texts)
        if overlap:
            raise InputError(f"domain {d.name}: {len(overlap)} held-out text(s) repeat a calibration input")


def heldout_set(subject: Subject, domain: Domain, max_tokens: int | None = None) -> Heldout:
    """Tokenize a domain's held-out texts (the last ``max_tokens`` of each, as for inputs)."""
    from ..evaluate import choice_prompts

    ids = []
    for text in domain.heldout:
        t = subject.tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids[0]
        if max_tokens is not None:
            t = t[-max_tokens:]
        if len(t) >= 2:
            ids.append(t)
    if not ids:
        raise InputError(f"domain {domain.name}: its held-out texts are too short to score (under 2 tokens)")
    choices = choice_prompts(subject, list(domain.heldout), list(domain.answers)) if domain.answers else None
    return Heldout(domain.name, tuple(ids), choices)


def _evaluate(subject: Subject, heldout: Heldout, window: int) -> tuple[float, float | None]:
    from ..evaluate import choice_accuracy, nll, pooled_perplexity

    ppl = pooled_perplexity([nll(subject, ids, window) for ids in heldout.ids])
    acc = choice_accuracy(subject, heldout.choices) if heldout.choices is not None else None
    return ppl, acc


@dataclass(frozen=True)
class TransferResult:
    """Every (calibration domain, evaluation domain, method) measured, and the ratios used."""

    rows: pd.DataFrame  # see COLUMNS
    layers: pd.DataFrame  # calibration_domain, layer, n_activated, sparsity_layerwise

    COLUMNS = (
        "calibration_domain",
        "eval_domain",
        "method",
        "target_sparsity",
        "sparsity",
        "perplexity",
        "x_dense",
        "accuracy",
        "n_tokens",
        "n_questions",
        "diagonal",
    )

    def frame(self) -> pd.DataFrame:
        return self.rows

    def summary(self) -> pd.DataFrame:
        """Per method and evaluation domain: the diagonal's perplexity against the off-diagonal ones.

        ``advantage`` = mean off-diagonal perplexity / diagonal perplexity - 1
        (positive: calibrating on the domain itself helps); ``wins`` is
        whether the diagonal beats every other calibration domain. One row
        per method with ``eval_domain='all'`` pools them: how many domains
        the diagonal wins and the geometric-mean advantage.
        """
        pruned_rows = self.rows[self.rows["method"] != DENSE]
        out = []
        for method, part in pruned_rows.groupby("method", sort=False):
            domain_rows = [
                _diagonal_row(method, eval_domain, sub) for eval_domain, sub in part.groupby("eval_domain", sort=False)
            ]
            kept = [r for r in domain_rows if r is not None]
            out += kept
            if kept:
                out.append(_pooled_row(method, kept))
        return pd.DataFrame(out, columns=list(SUMMARY_COLUMNS))


SUMMARY_COLUMNS = (
    "method",
    "eval_domain",
    "diagonal_perplexity",
    "best_other_perplexity",
    "mean_other_perplexity",
    "advantage",
    "wins",
    "n_wins",
    "n_domains",
    "diagonal_accuracy",
    "mean_other_accuracy",
)


def _diagonal_row(method: str, eval_domain: str, sub: pd.DataFrame) -> tuple | None:
    """One summary row: the model pruned on ``eval_domain`` itself against those pruned on the others
    (geometric mean of their perplexities: perplexities are ratios); None without both."""
    diag = sub[sub["calibration_domain"] == eval_domain]
    other = sub[sub["calibration_domain"] != eval_domain]
    if diag.empty or other.empty:
        return None
    d = float(diag["perplexity"].iloc[0])
    mean_other = float(np.exp(np.log(other["perplexity"]).mean()))  # geometric mean
    win = bool(d < other["perplexity"].min())
    acc = diag["accuracy"].iloc[0]
    return (
        method,
        eval_domain,
        d,
        float(other["perplexity"].min()),
        mean_other,
        mean_other / d - 1,
        win,
        int(win),
        1,
        float(acc) if pd.notna(acc) else math.nan,
        float(other["accuracy"].mean()) if other["accuracy"].notna().any() else math.nan,
    )


def _pooled_row(method: str, rows: list[tuple]) -> tuple:
    """The ``eval_domain='all'`` row of a method: how many domains the diagonal wins, and the
    geometric-mean advantage over the domains (from the rows of :func:`_diagonal_row`)."""
    ratios = [r[4] / r[2] for r in rows]  # mean other / diagonal
    wins = [r[6] for r in rows]
    return (
        method,
        "all",
        math.nan,
        math.nan,
        math.nan,
        float(np.exp(np.log(ratios).mean())) - 1,
        all(wins),
        sum(wins),
        len(wins),
        math.nan,
        math.nan,
    )


def _check_transfer(
    domains: Sequence[Domain], counts: Mapping[str, Sequence[float]], sparsity: float, methods: Sequence[str]
) -> None:
    """Every argument error in one line before the first (slow) pruning."""
    if len(domains) < 2:
        raise InputError("calibration transfer needs at least two domains")
    names = [d.name for d in domains]
    if len(set(names)) != len(names):
        raise InputError(f"domain names must be unique, got {', '.join(names)}")
    for m in methods:
        if m not in METHODS:
            raise InputError(f"unknown pruning method {m!r}; use {', '.join(METHODS)}")
    if not 0 < sparsity < 1:
        raise InputError(f"calibration transfer needs a sparsity in (0, 1), got {sparsity}")
    missing = [n for n in names if n not in counts] if "layerwise" in methods else []
    if missing:
        raise InputError(f"no activated counts for domain(s) {', '.join(missing)}")
    check_heldout(domains)


def calibration_transfer(
    subject: Subject,
    domains: Sequence[Domain],
    counts: Mapping[str, Sequence[float]],
    *,
    sparsity: float = 0.5,
    alpha: float = 2.0,
    beta: float = 0.2,
    max_tokens: int | None = 128,
    window: int = 256,
    methods: Sequence[str] = METHODS,
    progress: Callable[[str], None] | None = None,
) -> TransferResult:
    """Prune on each domain's inputs in turn (each method), evaluate on every domain's held-out texts.

    ``counts[name]`` is domain ``name``'s activated count N_i per layer (for
    the layer-wise ratios); calibration inputs are a domain's ``texts``, cut
    to their last ``max_tokens`` tokens as for the activation maps.
    """
    _check_transfer(domains, counts, sparsity, methods)
    say = progress or (lambda msg: None)
    before = subject.content_hash()
    heldout = [heldout_set(subject, d, max_tokens) for d in domains]
    n_layers = subject.anatomy.n_layers
    rows, layer_rows = [], []

    def measure(calibration: str, method: str, target: float) -> None:
        realised = _matrix_sparsity(subject)
        for h in heldout:
            say(
                f"{method} pruned on {calibration}: evaluating on {h.domain}"
                if method != DENSE
                else f"dense model on {h.domain}"
            )
            ppl, acc = _evaluate(subject, h, window)
            rows.append(
                (
                    calibration,
                    h.domain,
                    method,
                    target,
                    realised,
                    ppl,
                    acc,
                    h.n_tokens,
                    len(h.choices.answers) if h.choices is not None else 0,
                )
            )

    measure(DENSE, DENSE, 0.0)
    for d in domains:
        calibration = [encode(subject, t, max_tokens) for t in d.texts]
        for method in methods:
            if method == "uniform":
                ratios = [sparsity] * n_layers
            else:
                lay = layerwise_sparsities(counts[d.name], sparsity, alpha, beta)
                ratios = list(lay.sparsities)
                layer_rows += [(d.name, i, float(n), float(s)) for i, (n, s) in enumerate(zip(lay.counts, ratios))]
            say(f"{method} Wanda calibrated on {d.name}")
            with pruned(subject, ratios, calibration):
                measure(d.name, method, sparsity)
    if subject.content_hash() != before:  # pragma: no cover - pruned() already checks
        raise RuntimeError("calibration transfer left the model modified")
    frame = pd.DataFrame(
        rows,
        columns=[
            "calibration_domain",
            "eval_domain",
            "method",
            "target_sparsity",
            "sparsity",
            "perplexity",
            "accuracy",
            "n_tokens",
            "n_questions",
        ],
    )
    frame["accuracy"] = frame["accuracy"].astype("float64")  # NaN where the domain is not multiple choice
    dense = frame[frame["method"] == DENSE].set_index("eval_domain")["perplexity"]
    frame["x_dense"] = frame["perplexity"] / frame["eval_domain"].map(dense)
    frame["diagonal"] = frame["calibration_domain"] == frame["eval_domain"]
    frame = frame[list(TransferResult.COLUMNS)]
    layers = pd.DataFrame(layer_rows, columns=["calibration_domain", "layer", "n_activated", "sparsity_layerwise"])
    return TransferResult(frame, layers)
