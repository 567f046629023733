"""The fine-tuning experiment (``mutascope specialization --finetune``) on tiny random models.

What must hold (issue 34): only the chosen value vectors move while every
other weight stays bit-identical; every weight is restored afterwards (the
content hash), also after an error; the three arms see identical data and
steps (observed at the model's input, not taken from the code's own log);
bad inputs are one line with exit 2, and the output-file rules hold.
"""

from __future__ import annotations

import duckdb
import pytest
import torch

from helpers import run_cli
from mutascope import specialization as sp
from mutascope.errors import MutascopeError
from mutascope.specialization import causal
from mutascope.specialization.finetune import ARMS, arm_vectors, general_ranking, schedule, split, tuned
from mutascope.testing import tiny_model

CONCEPTS = ["Paris", "the Moon", "water"]


def _concepts(names=CONCEPTS):
    return sp.select(sp.resolve_controls(sp.load_concepts(), 0), names)


def _snapshot(subject) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in subject.model.named_parameters()}


@pytest.mark.parametrize("family", ["llama", "gpt2"])  # gpt2: down stored transposed (Conv1D)
def test_only_the_chosen_columns_move_and_everything_is_restored(family):
    subject = tiny_model(family)
    anatomy = subject.anatomy
    vectors = [(0, 3), (0, 40), (1, 7), (2, 99)]
    concept = _concepts(["Paris"])[0]
    examples = [sp.prepare(subject, [q], "cloze") for q in concept.questions[:3]]
    before, flags, hash_before = (
        _snapshot(subject),
        {n: p.requires_grad for n, p in subject.model.named_parameters()},
        subject.content_hash(),
    )
    down = {anatomy.ref(layer, "down").param_name: layer for layer in range(anatomy.n_layers)}
    with tuned(subject, vectors, examples, [0, 1, 2, 0], lr=1e-2) as log:
        assert log.moved == len(vectors)
        for name, p in subject.model.named_parameters():
            if name not in down:
                assert torch.equal(p, before[name]), name  # frozen: bit-identical
                continue
            layer = down[name]
            now = anatomy.weight(layer, "down")
            was = before[name].T if anatomy.ref(layer, "down").transposed else before[name]
            chosen = sorted(j for lay, j in vectors if lay == layer)
            other = [j for j in range(now.shape[1]) if j not in chosen]
            assert torch.equal(now[:, other], was[:, other]), name
            if chosen:
                assert (now[:, chosen] != was[:, chosen]).any(0).all(), name  # every chosen column moved
    assert subject.content_hash() == hash_before
    assert all(torch.equal(p, before[n]) for n, p in subject.model.named_parameters())
    assert {n: p.requires_grad for n, p in subject.model.named_parameters()} == flags
    assert all(p.grad is None for p in subject.model.parameters())


def test_weights_are_restored_after_an_error():
    subject = tiny_model("llama")
    concept = _concepts(["Paris"])[0]
    examples = [sp.prepare(subject, [q], "letter") for q in concept.questions[:2]]
    hash_before = subject.content_hash()
    with pytest.raises(KeyError):
        with tuned(subject, [(1, 5), (1, 6)], examples, [0, 1], lr=1e-2) as log:
            assert log.moved == 2 and subject.content_hash() != hash_before
            raise KeyError("boom")
    assert subject.content_hash() == hash_before


def test_the_three_arms_see_identical_data_and_steps():
    """A hook on the embedding records every training forward pass (grad enabled) of each arm,
    told apart by the experiment's status lines: per concept and k, all three arms feed the
    model the same token ids in the same order, ``steps`` times."""
    subject = tiny_model("llama")
    seen: dict[str, list] = {}
    current = [None]

    def status(line: str) -> None:
        current[0] = line if " vectors" in line else None
        if current[0]:
            seen[line] = []

    def hook(_module, args):
        if torch.is_grad_enabled() and current[0]:
            seen[current[0]].append(args[0].tolist())

    handle = subject.model.get_input_embeddings().register_forward_pre_hook(hook)
    try:
        hash_before = subject.content_hash()
        result = causal.finetune_experiment(subject, _concepts(), [4, 50], steps=7, lr=1e-2, repeats=2, progress=status)
    finally:
        handle.remove()
    assert subject.content_hash() == hash_before == result.content_hash
    assert len(seen) == len(CONCEPTS) * 2 * 2 * len(ARMS)
    groups: dict[str, list] = {}
    for line, inputs in seen.items():
        assert len(inputs) == 7  # one forward pass per step, nothing else with gradients
        groups.setdefault(line.rsplit(",", 1)[0], []).append(inputs)
    assert len(groups) == len(CONCEPTS) * 2 * 2
    for inputs in groups.values():
        assert len(inputs) == len(ARMS) and inputs[0] == inputs[1] == inputs[2]
    # and they differ between repeats (another split and order): the check above is not vacuous
    assert groups["Paris (repeat 1/2): k=4"][0] != groups["Paris (repeat 2/2): k=4"][0]
    frame = causal.rows_frame([result])
    assert len(frame) == len(seen) and set(frame["arm"]) == set(ARMS)
    assert (frame["moved"] == frame["k"]).all()  # every chosen vector moved, in every arm
    assert (frame.groupby(["concept", "repeat", "k"])[["steps", "lr", "n_train"]].nunique() == 1).all().all()


def test_split_schedule_and_arms_are_seeded_and_held_out_questions_never_rank():
    concept = _concepts(["Paris"])[0]
    train, held = split(concept.questions, 0, "Paris", 0.5)
    assert len(train) == len(held) == 5 and not set(train) & set(held)
    assert (train, held) == split(concept.questions, 0, "Paris", 0.5)
    assert (train, held) != split(concept.questions, 1, "Paris", 0.5)
    order = schedule(len(train), 12, 0, "Paris")
    assert len(order) == 12 and sorted(order[:5]) == list(range(5)) and order == schedule(5, 12, 0, "Paris")
    with pytest.raises(MutascopeError, match="at least 2"):
        split(concept.questions[:1], 0, "Paris", 0.5)
    # arms: specific = the ranking's top k, general = the largest mean |a|, random = seeded
    subject = tiny_model("llama")
    coefs = torch.rand(6, 4, 50)
    specific = sp.rank_vectors(coefs[:3], coefs[3:])
    arms = arm_vectors(specific, general_ranking(coefs), 50, 8, 0, "Paris")
    assert arms["specific"] == specific.top(8)
    mean = coefs.mean(0)
    assert min(float(mean[lay, j]) for lay, j in arms["general"]) >= float(mean.flatten().sort().values[-8])
    assert arms == arm_vectors(specific, general_ranking(coefs), 50, 8, 0, "Paris")
    assert arms["random"] != arm_vectors(specific, general_ranking(coefs), 50, 8, 1, "Paris")["random"]
    del subject


def test_tables_tests_and_figure(tmp_path):
    subject = tiny_model("llama")
    result = causal.finetune_experiment(subject, _concepts(), [3, 30], steps=3, lr=1e-2)
    db = sp.write_finetune(tmp_path / "ft.duckdb", [result], dict(k=[3, 30]))
    with duckdb.connect(str(db), read_only=True) as con:
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        assert set(sp.FINETUNE_TABLES) <= names and not set(sp.TABLES) & names
        assert con.execute("SELECT count(*) FROM finetune_arms").fetchone()[0] == 3 * 2 * 3
        assert con.execute("SELECT count(*) FROM finetune_vectors").fetchone()[0] == 3 * 3 * (3 + 30)
        tests = con.execute("SELECT measure, comparison, concepts, family FROM finetune_tests").fetchall()
    assert len(tests) == 2 * 3 * 2 and {t[3] for t in tests} == {
        f"{result.model_id}: 12 tests (k x measure x comparison)"
    }
    png = sp.write_finetune_figure(tmp_path / "fig" / "ft.png", causal.arm_table([result]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_comparisons_find_a_planted_difference():
    """Rows where the specific arm's held-out accuracy beats the others on every concept give a
    significant positive difference, and its verdict says the paper's direction."""
    rows = []
    for i in range(10):
        for arm, acc in (("specific", 0.9 - 0.01 * i), ("random", 0.5), ("general", 0.5 + 0.01 * i)):
            rows.append(
                dict(
                    model_id="m",
                    concept=f"c{i}",
                    repeat=0,
                    seed=0,
                    k=5,
                    arm=arm,
                    heldout_after=acc,
                    control_after=0.5,
                    hallucination=0.1,
                )
            )
    result = causal.FinetuneResult("m", "llama", "h", "cloze", 1, 1, 0.5, rows=rows)
    tests = causal.comparisons([result]).set_index(["measure", "comparison"])
    win = tests.loc[("heldout_after", "specific - random")]
    assert win.median_difference > 0 and win.q_value < 0.05 and win.verdict.endswith("as the paper predicts")
    assert win.p_floor == pytest.approx(2 / 2**10)
    assert tests.loc[("control_after", "specific - random")].verdict == "no difference on any concept"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps=0), "--steps"),
        (dict(lr=0.0), "--lr"),
        (dict(repeats=0), "--repeats"),
        (dict(heldout=1.0), "--heldout"),
        (dict(confidence=0.2), "--confidence"),
        (dict(ks=[10**9]), "--k"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    ks = kwargs.pop("ks", [2])
    with pytest.raises(MutascopeError, match=message):
        causal.finetune_experiment(tiny_model("llama"), _concepts(), ks, **kwargs)


def test_cli_finetune_keeps_the_other_tables_and_refuses_bad_input(tmp_path):
    db, png = tmp_path / "s.duckdb", tmp_path / "s.png"
    code, _, err = run_cli(
        [
            "specialization",
            "--model",
            "tiny",
            "--concept",
            "Paris",
            "--concept",
            "water",
            "--k",
            "5",
            "--random-draws",
            "1",
            "--method",
            "letter",
            "--out",
            str(db),
        ]
    )
    assert code == 0, err
    code, out, err = run_cli(
        [
            "specialization",
            "--finetune",
            "--model",
            "tiny",
            "--concepts",
            str(sp.default_concepts_path()),
            "--concept",
            "Paris",
            "--concept",
            "water",
            "--k",
            "5",
            "--k",
            "5000",
            "--steps",
            "2",
            "--out",
            str(db),
            "--figure",
            str(png),
        ]
    )
    assert code == 0, err
    assert "training steps and question reads" in err and "k > that skipped" in err
    assert "Fine-tuning arms" in out and "Paired over concepts" in out
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT k FROM finetune_summary").fetchall() == [(5,)]
        assert con.execute("SELECT count(*) FROM specialization_scores").fetchone()[0] > 0  # the PSS run stays
    assert png.is_file()
    code, _, err = run_cli(["specialization", "--finetune", "--model", "tiny", "--steps", "0"])
    assert code == 2 and err.strip().count("\n") == 0 and "--steps" in err


def test_the_shipped_finetune_set_loads_with_the_stated_size():
    """30 concepts x 20 questions (docs/specialization.md states the power for that size), small,
    shipped as package data with MMLU's MIT notice beside it; a 10 / 10 split per concept."""
    path = sp.finetune_concepts_path()
    assert path.suffix == ".jsonl" and path.stat().st_size < 300_000
    concepts = sp.load_concepts(path)
    assert len(concepts) == 30 and len({c.name for c in concepts}) == 30
    assert all(len(c.questions) == 20 and c.controls is None for c in concepts)
    assert len({(q.question, q.choices) for c in concepts for q in c.questions}) == 600  # no question twice
    resolved = sp.resolve_controls(concepts, 0)
    assert all(len(c.controls) == 20 and not set(c.controls) & set(c.questions) for c in resolved)
    train, held = split(concepts[0].questions, 0, concepts[0].name, 0.5)
    assert len(train) == len(held) == 10
    notice = path.with_name("concepts_finetune.README.md").read_text()
    assert "MIT License" in notice and "Copyright (c) 2020 Dan Hendrycks" in notice


def test_finetune_reads_the_mmlu_set_by_default_and_pss_keeps_the_example_set(tmp_path):
    from mutascope.specialization.run import Settings, concepts_file

    assert concepts_file(Settings(finetune=True)) == sp.finetune_concepts_path()
    assert concepts_file(Settings()) is None  # the loader's default: the 10-concept example set
    given = tmp_path / "mine.yaml"
    assert concepts_file(Settings(finetune=True, concepts=given)) == given
    db = tmp_path / "ft.duckdb"
    code, _, err = run_cli(
        [
            "specialization",
            "--finetune",
            "--model",
            "tiny",
            "--concept",
            "astronomy",
            "--concept",
            "sociology",
            "--k",
            "3",
            "--steps",
            "1",
            "--out",
            str(db),
        ]
    )
    assert code == 0, err
    with duckdb.connect(str(db), read_only=True) as con:
        assert {r[0] for r in con.execute("SELECT DISTINCT concept FROM finetune_arms").fetchall()} == {
            "astronomy",
            "sociology",
        }
        assert con.execute("SELECT DISTINCT n_heldout FROM finetune_arms").fetchall() == [(10,)]
        settings = con.execute("SELECT settings FROM finetune_runs").fetchone()[0]
    assert "concepts_finetune.jsonl" in settings
    # the PSS measurement still reads the example set: an MMLU subject is not among its concepts
    code, _, err = run_cli(["specialization", "--model", "tiny", "--concept", "astronomy"])
    assert code == 2 and "not in the concept file" in err and "Paris" in err
