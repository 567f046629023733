"""The fine-tuning experiment (the paper's causal half) and its statistics.

For every concept, repeat and ``k`` (docs/methods.md, "4. Parameter
specialization", the fine-tuning experiment):

1. split the concept's questions into train and held-out parts
   (:func:`.finetune.split`, seeded by ``seed + repeat`` and the concept);
2. choose the three arms' ``k`` value vectors (:func:`.finetune.arm_vectors`):
   the ranking reads only the training questions and the controls;
3. fine-tune each arm's vectors alone, with the same step order, steps and
   learning rate (:func:`.finetune.tuned`), and read every training,
   held-out and control question with the tuned model; the block restores
   the columns, and the model's content hash is checked after every concept
   and repeat;
4. record accuracy on the train, held-out and control questions (the
   controls are other concepts' questions: interference), and the
   hallucination rate (:mod:`.hallucination`).

The base model's readings are taken once per distinct question (each
question is its own forward pass, so a reading does not depend on the set
it is read in), as are the coefficients.

**Statistics.** The unit is the concept: each arm's measure is averaged
over repeats within a concept (NaNs skipped), and the arms are compared in
pairs over concepts, ``specific - random`` and ``specific - general``, by
the exact Wilcoxon signed-rank test of the per-concept differences
(:func:`mutascope.analysis.exact.signed_rank`: median difference with its
distribution-free 95 % interval, rank-biserial effect, p and the floor the
number of concepts allows). The family, over which Benjamini-Hochberg
q-values are computed, is every (k, measure, comparison) of one model:
``2 * 3 * len(ks)`` tests. The paper predicts a positive difference for
held-out accuracy and a negative one for hallucination; interference has
no predicted sign.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..analysis.exact import bh, signed_rank
from ..errors import InputError
from ..model.subject import Subject
from ..probes.mmlu import LETTERS
from ..progress import Progress
from .answers import check_method, prepare, prompt_ids
from .coefficients import answer_coefficients, rank_vectors
from .concepts import Concept, resolve_controls
from .finetune import ARMS, arm_vectors, general_ranking, schedule, split, tuned
from .hallucination import DEFAULT_CONFIDENCE, check_confidence, confident_wrong, hallucination, read
from .masking import n_vectors

# Defaults sized for SmolLM2-135M on one CPU thread (docs/specialization.md gives the times).
FINETUNE_KS = (10, 100)
DEFAULT_STEPS = 10
DEFAULT_LR = 1e-2
DEFAULT_REPEATS = 1
DEFAULT_HELDOUT = 0.5
ALPHA = 0.05

# measure column -> (words, the sign the paper predicts for specific - other; 0: none)
MEASURES = {
    "heldout_after": ("held-out accuracy", 1),
    "control_after": ("control accuracy (interference)", 0),
    "hallucination": ("hallucination rate", -1),
}
COMPARISONS = (("specific", "random"), ("specific", "general"))
ROW_COLUMNS = [
    "model_id",
    "concept",
    "repeat",
    "seed",
    "k",
    "arm",
    "n_train",
    "n_heldout",
    "n_controls",
    "steps",
    "lr",
    "train_before",
    "train_after",
    "heldout_before",
    "heldout_after",
    "control_before",
    "control_after",
    "abstained",
    "hallucination",
    "confident_wrong_before",
    "confident_wrong_after",
    "loss_start",
    "loss_end",
    "moved",
    "shared_with_specific",
]


@dataclass
class FinetuneResult:
    """One model's fine-tuning experiment: one row per concept, repeat, k and arm (``ROW_COLUMNS``),
    and the vectors of every arm (``vectors``: concept, repeat, k, arm, layer, index)."""

    model_id: str
    family: str
    content_hash: str
    method: str
    n_layers: int
    d_ff: int
    accuracy: float  # the base model's accuracy over every concept question
    rows: list[dict] = field(default_factory=list)
    vectors: list[dict] = field(default_factory=list)


def check_finetune(
    ks: Sequence[int], total: int, *, repeats: int, steps: int, lr: float, heldout: float, confidence: float
) -> list[int]:
    """Every argument error of the experiment, one line each; the sorted distinct ``ks``."""
    if not ks:
        raise InputError("give at least one --k (number of value vectors to fine-tune)")
    for k in ks:
        if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= total:
            raise InputError(f"--k must be an integer from 1 to {total} (the model's value vectors), got {k!r}")
    if not isinstance(repeats, int) or repeats < 1:
        raise InputError(f"--repeats must be at least 1, got {repeats!r}")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"--steps must be at least 1, got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"--lr must be a positive number, got {lr!r}")
    if not 0 < heldout < 1:
        raise InputError(f"--heldout must be a share between 0 and 1, got {heldout!r}")
    check_confidence(confidence)
    return sorted(set(ks))


def _sets(concept: Concept, seed: int, heldout: float):
    train, held = split(concept.questions, seed, concept.name, heldout)
    controls = tuple(q for q in dict.fromkeys(concept.control_questions) if q not in set(concept.questions))
    return train, held, controls


def finetune_work(concepts: Sequence[Concept], ks: Sequence[int], *, repeats: int, steps: int, heldout: float) -> int:
    """Units of work :func:`finetune_experiment` counts: a training step or a question read, each one."""
    unique = len(dict.fromkeys(q for c in concepts for q in (*c.questions, *c.control_questions)))
    total = unique
    for c in concepts:
        train, held, controls = _sets(c, 0, heldout)  # the sizes do not depend on the seed
        total += repeats * len(set(ks)) * len(ARMS) * (steps + len(train) + len(held) + len(controls))
    return total


def finetune_experiment(
    subject: Subject,
    concepts: Sequence[Concept],
    ks: Sequence[int] = FINETUNE_KS,
    *,
    repeats: int = DEFAULT_REPEATS,
    seed: int = 0,
    steps: int = DEFAULT_STEPS,
    lr: float = DEFAULT_LR,
    heldout: float = DEFAULT_HELDOUT,
    confidence: float = DEFAULT_CONFIDENCE,
    method: str = "cloze",
    progress: Callable[[str], None] | None = None,
    count: Progress | None = None,
) -> FinetuneResult:
    """Run the experiment of the module docstring on ``subject``; the model is unchanged afterwards.

    ``progress(line)`` says which step runs; ``count(done, total)`` counts training steps and
    question reads (:func:`finetune_work` of them in all).
    """
    if not concepts:
        raise InputError("no concepts to fine-tune on")
    check_method(method)
    n_layers, d_ff = n_vectors(subject)
    ks = check_finetune(
        ks, n_layers * d_ff, repeats=repeats, steps=steps, lr=lr, heldout=heldout, confidence=confidence
    )
    if any(c.controls is None for c in concepts):
        concepts = resolve_controls(list(concepts), seed)
    for c in concepts:
        split(c.questions, seed, c.name, heldout)  # a concept too small fails here, before any work
    say = progress or (lambda _msg: None)
    before = subject.content_hash()
    total = finetune_work(concepts, ks, repeats=repeats, steps=steps, heldout=heldout)
    done = [0]

    def tick(n: int = 1) -> None:
        done[0] += n
        if count:
            count(done[0], total)

    unique = list(dict.fromkeys(q for c in concepts for q in (*c.questions, *c.control_questions)))
    row = {q: i for i, q in enumerate(unique)}
    answers = {q: LETTERS.index(q.answer) for q in unique}
    say(f"coefficients on {len(unique)} questions")
    coefs = answer_coefficients(subject, prompt_ids(subject, unique, method))
    singles = {q: prepare(subject, [q], method) for q in unique}

    def reading(questions):
        out = {}
        for q in questions:
            out.update(read(subject, singles, [q], answers))
            tick()
        return out

    say("the base model's answers")
    base = reading(unique)
    own = [q for c in concepts for q in c.questions]
    result = FinetuneResult(
        subject.model_id,
        subject.anatomy.family,
        before,
        method,
        n_layers,
        d_ff,
        sum(base[q].right for q in own) / len(own),
    )

    def share(readings, questions) -> float:
        return sum(readings[q].right for q in questions) / len(questions) if questions else math.nan

    for c in concepts:
        for repeat in range(repeats):
            s = seed + repeat
            train, held, controls = _sets(c, s, heldout)
            specific = rank_vectors(coefs[[row[q] for q in train]], coefs[[row[q] for q in c.control_questions]])
            general = general_ranking(coefs[[row[q] for q in (*train, *c.control_questions)]])
            order = schedule(len(train), steps, s, c.name)
            examples = [singles[q] for q in train]
            evaluated = (*held, *controls)
            window = min(steps, len(train))  # the loss of the first and of the last pass over the train set
            for k in ks:
                arms = arm_vectors(specific, general, d_ff, k, s, c.name)
                chosen = set(arms["specific"])
                for arm in ARMS:
                    say(f"{c.name} (repeat {repeat + 1}/{repeats}): k={k}, {arm} vectors")
                    with tuned(subject, arms[arm], examples, order, lr) as log:
                        tick(steps)
                        after = reading((*train, *evaluated))
                    rate, abstained = hallucination(base, after, evaluated, confidence)
                    result.rows.append(
                        dict(
                            model_id=subject.model_id,
                            concept=c.name,
                            repeat=repeat,
                            seed=s,
                            k=k,
                            arm=arm,
                            n_train=len(train),
                            n_heldout=len(held),
                            n_controls=len(controls),
                            steps=steps,
                            lr=lr,
                            train_before=share(base, train),
                            train_after=share(after, train),
                            heldout_before=share(base, held),
                            heldout_after=share(after, held),
                            control_before=share(base, controls),
                            control_after=share(after, controls),
                            abstained=abstained,
                            hallucination=rate,
                            confident_wrong_before=confident_wrong(base, evaluated, confidence),
                            confident_wrong_after=confident_wrong(after, evaluated, confidence),
                            loss_start=float(np.mean(log.losses[:window])),
                            loss_end=float(np.mean(log.losses[-window:])),
                            moved=log.moved,
                            shared_with_specific=len(chosen & set(arms[arm])) / k,
                        )
                    )
                    result.vectors += [
                        dict(
                            model_id=subject.model_id, concept=c.name, repeat=repeat, k=k, arm=arm, layer=layer, index=j
                        )
                        for layer, j in arms[arm]
                    ]
            if subject.content_hash() != before:  # pragma: no cover - tuned() already checks its columns
                raise RuntimeError("the fine-tuning experiment did not give back the original weights")
    return result


def rows_frame(results: Sequence[FinetuneResult]):
    import pandas as pd

    return pd.DataFrame([r for res in results for r in res.rows], columns=ROW_COLUMNS)


def arm_table(results: Sequence[FinetuneResult]):
    """One row per model, k and arm: every measure's mean over concepts and repeats (what the
    figure draws and the command prints)."""
    import pandas as pd

    frame = rows_frame(results)
    cols = [
        "train_before",
        "train_after",
        "heldout_before",
        "heldout_after",
        "control_before",
        "control_after",
        "hallucination",
        "confident_wrong_after",
        "loss_start",
        "loss_end",
        "shared_with_specific",
    ]
    if frame.empty:
        return pd.DataFrame(columns=["model_id", "k", "arm", "n_concepts", *cols])
    table = frame.groupby(["model_id", "k", "arm"], sort=False)[cols].mean().reset_index()
    table.insert(3, "n_concepts", frame.groupby(["model_id", "k", "arm"], sort=False)["concept"].nunique().values)
    return table


TEST_COLUMNS = [
    "model_id",
    "k",
    "measure",
    "comparison",
    "expected",
    "concepts",
    "nonzero",
    "mean_difference",
    "median_difference",
    "ci_low",
    "ci_high",
    "rank_biserial",
    "p_value",
    "p_floor",
    "q_value",
    "family",
    "verdict",
]


def comparisons(results: Sequence[FinetuneResult], alpha: float = ALPHA):
    """The paired tests of the module docstring: one row per model, k, measure and comparison,
    with q-values over the model's family and a verdict in words."""
    import pandas as pd

    frame = rows_frame(results)
    rows = []
    for model_id, model_rows in frame.groupby("model_id", sort=False):
        family = []
        for k, group in model_rows.groupby("k", sort=True):
            for measure, (_words, sign) in MEASURES.items():
                per = group.groupby(["concept", "arm"], sort=False)[measure].mean().unstack("arm")
                for first, second in COMPARISONS:
                    d = (per[first] - per[second]).to_numpy(dtype=float)
                    d = d[~np.isnan(d)]
                    test = signed_rank(d)
                    family.append(
                        dict(
                            model_id=model_id,
                            k=int(k),
                            measure=measure,
                            comparison=f"{first} - {second}",
                            expected={1: "+", -1: "-", 0: ""}[sign],
                            concepts=test["pairs"],
                            nonzero=test["nonzero"],
                            mean_difference=float(d.mean()) if len(d) else math.nan,
                            median_difference=test["median_difference"],
                            ci_low=test["ci_low"],
                            ci_high=test["ci_high"],
                            rank_biserial=test["rank_biserial"],
                            p_value=test["p_value"],
                            p_floor=test["p_floor"],
                        )
                    )
        q = bh([r["p_value"] for r in family])
        for r, qv in zip(family, q):
            r["q_value"] = float(qv)
            r["family"] = f"{model_id}: {len(family)} tests (k x measure x comparison)"
            r["verdict"] = _verdict(r, alpha)
        rows += family
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def _verdict(r: dict, alpha: float) -> str:
    if not r["nonzero"]:
        return "no difference on any concept"
    if not (r["q_value"] <= alpha):
        floor = r["p_floor"]
        return "not significant" + (
            f" (floor p {floor:.3g}: only {r['nonzero']} concepts differ)" if floor > alpha else ""
        )
    direction = (
        "higher" if r["median_difference"] > 0 or (r["median_difference"] == 0 and r["rank_biserial"] > 0) else "lower"
    )
    sign = {"+": "higher", "-": "lower"}.get(r["expected"])
    if sign is None:
        return f"specific arm {direction}"
    return (
        f"specific arm {direction}, as the paper predicts"
        if direction == sign
        else f"specific arm {direction}, against the paper"
    )
