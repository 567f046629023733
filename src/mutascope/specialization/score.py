"""Parameter Specialization Score (arXiv 2505.17260): masking and scoring per concept.

For every concept and every ``k``:

1. rank the value vectors of all layers jointly (:mod:`.coefficients`);
2. mask (zero) the top ``k`` and measure accuracy on the concept's questions
   and on its controls (the "general" questions);
3. PSS = |general accuracy after - concept accuracy after| / general accuracy
   before. NaN when the model gets no control question right before masking
   (the score is undefined there, not zero);
4. the same with ``random_draws`` random masks of ``k`` vectors each
   (:func:`.masking.random_vectors`, seeded and shared by all concepts): the
   baseline a targeted mask has to beat.

Accuracy is read by :mod:`.answers` (``cloze`` by default, or ``letter``;
chance is 25 % for both). The model is only read, or masked inside
:func:`.masking.masked`, which restores it.

Each question is answered by its own forward pass, so whether it is answered
right under a mask does not depend on the set it is read in: every distinct
question is evaluated once per mask. A random mask is shared by all concepts,
so it costs one pass over the distinct questions, not one per concept (the
scores are the same as evaluating set by set, in half the time or less).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import InputError
from ..model.subject import Subject
from ..progress import Progress
from .answers import accuracy, check_method, prepare, prompt_ids
from .coefficients import Ranking, answer_coefficients, rank_vectors
from .concepts import Concept, resolve_controls
from .masking import masked, n_vectors, random_vectors

# Defaults that finish in a few minutes on SmolLM2-135M on two CPU cores: 900 question
# evaluations of about 0.25 s each (benchmarks/bench_specialization.py). k = 10 (of 46080
# value vectors in SmolLM2) and a third random draw cost 700 more evaluations (10 minutes).
DEFAULT_KS = (100, 1000)
DEFAULT_DRAWS = 2


def pss(general_before: float, general_after: float, concept_after: float) -> float:
    """|general after - concept after| / general before; NaN when general before is 0."""
    if general_before <= 0:
        return math.nan
    return abs(general_after - concept_after) / general_before


@dataclass(frozen=True)
class Score:
    """One mask of one concept: accuracies before and after, and its PSS.

    ``mask`` is ``"top"`` (the concept's top-k vectors, ``draw`` = -1) or
    ``"random"`` (``draw`` = 0, 1, ...).
    """

    concept: str
    k: int
    mask: str
    draw: int
    concept_before: float
    general_before: float
    concept_after: float
    general_after: float
    pss: float


@dataclass
class ModelResult:
    """Everything measured on one model: rankings, per-mask scores, and the model's accuracy.

    ``accuracy`` is the unmasked accuracy over all concept questions pooled,
    the "knowledge accuracy" the paper sets PSS against.
    """

    model_id: str
    family: str
    content_hash: str
    method: str
    n_layers: int
    d_ff: int
    accuracy: float
    rankings: dict[str, Ranking] = field(default_factory=dict)
    scores: list[Score] = field(default_factory=list)


def _check_ks(ks: Sequence[int], total: int) -> list[int]:
    if not ks:
        raise InputError("give at least one k (number of value vectors to mask)")
    out = []
    for k in ks:
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= total:
            raise InputError(f"k must be an integer from 1 to {total} (the model's value vectors), got {k!r}")
        out.append(k)
    return sorted(set(out))


def specialization(
    subject: Subject,
    concepts: Sequence[Concept],
    ks: Sequence[int] = DEFAULT_KS,
    *,
    random_draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    method: str = "cloze",
    progress: Callable[[str], None] | None = None,
    count: Progress | None = None,
) -> ModelResult:
    """Rank, mask and score every concept on ``subject`` for every ``k``.

    Concepts without controls get them drawn from each other
    (:func:`.concepts.resolve_controls`); resolve them beforehand against
    the whole file to draw from concepts that are not scored. ``progress(line)``
    says which step runs; ``count(done, total)`` counts question evaluations
    (:func:`evaluations` of them in all), after each one.
    """
    if not concepts:
        raise InputError("no concepts to score")
    if not isinstance(random_draws, int) or random_draws < 0:
        raise InputError(f"random draws must be an integer >= 0, got {random_draws!r}")
    if any(c.controls is None for c in concepts):
        concepts = resolve_controls(list(concepts), seed)
    n_layers, d_ff = n_vectors(subject)
    ks = _check_ks(ks, n_layers * d_ff)
    check_method(method)
    say = progress or (lambda _msg: None)

    result = ModelResult(
        subject.model_id, subject.anatomy.family, subject.content_hash(), method, n_layers, d_ff, math.nan
    )

    # Coefficients of every distinct question, once (controls are often other concepts' questions).
    unique = list(dict.fromkeys(q for c in concepts for q in (*c.questions, *c.control_questions)))
    say(f"coefficients on {len(unique)} questions")
    coefs = answer_coefficients(subject, prompt_ids(subject, unique, method))
    answered = _Answers(
        subject, {q: prepare(subject, [q], method) for q in unique}, evaluations(concepts, ks, random_draws), count
    )
    say("accuracy before masking")
    before = _unmasked(result, concepts, unique, coefs, answered(unique))
    for k in ks:
        _masked_scores(result, subject, concepts, unique, k, before, answered, random_draws, seed, say)
    return result


@dataclass
class _Answers:
    """Whether each question is answered right by the model as it stands, one forward pass each,
    counted for the caller's progress bar (``count(done, total)``) as it goes."""

    subject: Subject
    singles: dict
    total: int
    count: Progress | None
    done: int = 0

    def __call__(self, questions) -> dict:
        right = {}
        for q in questions:
            right[q] = accuracy(self.subject, self.singles[q]) == 1.0
            self.done += 1
            if self.count:
                self.count(self.done, self.total)
        return right


def _share(questions, right: dict) -> float:
    return sum(right[q] for q in questions) / len(questions)


def _unmasked(
    result: ModelResult, concepts: Sequence[Concept], unique: list, coefs, right: dict
) -> dict[str, tuple[float, float]]:
    """Each concept's (own, control) accuracy unmasked and its ranking of value vectors; the pooled
    accuracy is the "knowledge accuracy" the paper sets PSS against."""
    row = {q: i for i, q in enumerate(unique)}
    before: dict[str, tuple[float, float]] = {}
    for c in concepts:
        before[c.name] = (_share(c.questions, right), _share(c.control_questions, right))
        result.rankings[c.name] = rank_vectors(
            coefs[[row[q] for q in c.questions]], coefs[[row[q] for q in c.control_questions]]
        )
    n_questions = sum(len(c.questions) for c in concepts)
    result.accuracy = sum(before[c.name][0] * len(c.questions) for c in concepts) / n_questions
    return before


def _masked_scores(
    result: ModelResult,
    subject: Subject,
    concepts: Sequence[Concept],
    unique: list,
    k: int,
    before: dict[str, tuple[float, float]],
    answered: _Answers,
    random_draws: int,
    seed: int,
    say: Callable[[str], None],
) -> None:
    """PSS of every concept under its top-k mask and under each random k-mask. A random mask is
    the same for every concept, so every question is answered once under it and shared."""
    drawn = []  # per random draw: every distinct question's answer under that mask
    for d in range(random_draws):
        say(f"k={k}, random mask {d + 1}/{random_draws}")
        with masked(subject, random_vectors(subject, k, seed, d)):
            drawn.append(answered(unique))
    for c in concepts:
        c_before, g_before = before[c.name]
        say(f"{c.name}: k={k}, top mask")
        with masked(subject, result.rankings[c.name].top(k)):
            top = answered(dict.fromkeys((*c.questions, *c.control_questions)))
        for kind, draw, right in [("top", -1, top)] + [("random", d, r) for d, r in enumerate(drawn)]:
            c_after, g_after = _share(c.questions, right), _share(c.control_questions, right)
            result.scores.append(
                Score(c.name, k, kind, draw, c_before, g_before, c_after, g_after, pss(g_before, g_after, c_after))
            )


def evaluations(concepts: Sequence[Concept], ks: Sequence[int], random_draws: int) -> int:
    """Question evaluations (one forward pass each) :func:`specialization` makes: every distinct
    question unmasked and under each random mask, and each concept's own under its top mask."""
    unique = len(dict.fromkeys(q for c in concepts for q in (*c.questions, *c.control_questions)))
    own = sum(len(dict.fromkeys((*c.questions, *c.control_questions))) for c in concepts)
    return unique + len(set(ks)) * (own + random_draws * unique)


def summary(results: Sequence[ModelResult]):
    """One row per model and ``k``: accuracy, mean PSS of the top-k masks, and the random baseline.

    ``pss_random`` is the mean over concepts and draws; ``pss_random_sd`` the
    standard deviation over draws of the per-draw mean over concepts (the
    spread of the baseline). NaN PSS values (no control right) are skipped.
    """
    import pandas as pd

    rows = []
    for r in results:
        frame = pd.DataFrame([s.__dict__ for s in r.scores])
        if frame.empty:
            continue
        for k, group in frame.groupby("k", sort=True):
            top = group[group["mask"] == "top"]
            rnd = group[group["mask"] == "random"]
            per_draw = rnd.groupby("draw")["pss"].mean()
            rows.append(
                dict(
                    model_id=r.model_id,
                    accuracy=r.accuracy,
                    k=int(k),
                    n_concepts=int(top["concept"].nunique()),
                    pss=float(top["pss"].mean()),
                    pss_random=float(rnd["pss"].mean()) if len(rnd) else math.nan,
                    pss_random_sd=float(per_draw.std(ddof=0)) if len(per_draw) else math.nan,
                    concept_after=float(top["concept_after"].mean()),
                    general_after=float(top["general_after"].mean()),
                )
            )
    return pd.DataFrame(
        rows,
        columns=[
            "model_id",
            "accuracy",
            "k",
            "n_concepts",
            "pss",
            "pss_random",
            "pss_random_sd",
            "concept_after",
            "general_after",
        ],
    )


def concept_table(result: ModelResult):
    """One row per concept and ``k`` of one model: before/after accuracies, PSS and its random baseline."""
    import pandas as pd

    frame = pd.DataFrame([s.__dict__ for s in result.scores])
    rows = []
    for (concept, k), group in frame.groupby(["concept", "k"], sort=False):
        top = group[group["mask"] == "top"].iloc[0]
        rnd = group[group["mask"] == "random"]
        rows.append(
            dict(
                concept=concept,
                k=int(k),
                concept_before=top.concept_before,
                general_before=top.general_before,
                concept_after=top.concept_after,
                general_after=top.general_after,
                pss=top.pss,
                pss_random=float(rnd["pss"].mean()) if len(rnd) else math.nan,
            )
        )
    return pd.DataFrame(rows)
