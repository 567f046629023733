"""Parameter specialization score (mutascope.specialization) on tiny models.

The planted model (``planted_model``) is a tiny random Llama rewired so that a
known set of value vectors alone decides one concept's answers:

* hidden dims 0 (TRIGGER), 1 (ANSWER) and 2 (BIAS) are reserved: no attention
  output, no ``down`` column and no ``gate``/``up`` row reads or writes them,
  except as planted below;
* every token's embedding has BIAS = 10 (a constant), and only the trigger
  byte ``^`` has TRIGGER = 10;
* layer 0, head 0 attends uniformly (its ``q`` rows are zero) and copies
  TRIGGER through one ``v`` row and one ``o`` column: every position after a
  ``^`` carries a TRIGGER signal, every position of a ``^``-free text none;
* layer 2, neurons ``PLANTED``: ``gate`` and ``up`` rows read only TRIGGER
  (gain 10), so their coefficients are large on ``^`` questions and exactly 0
  otherwise; their ``down`` columns (the value vectors) write only ANSWER;
* ``lm_head`` reads ANSWER only into the byte ``A`` and BIAS only into ``B``.

Every question has the choices AAAA / BBBB / CCCC / DDDD. The concept
"planted" has ``^`` in its questions and answer A; the others answer B. So
the model answers everything right *because of* the planted vectors on the
concept and *because of* BIAS elsewhere, for both answer methods (the
planted push acts at every position after ``^``: the letter position and
the cloze continuation alike). Masking the four planted vectors sends the
concept to B (accuracy 0) and leaves the controls at 1: PSS = 1, while a
random mask of four out of 600 vectors almost never hits them: PSS ~ 0.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from mutascope import specialization as sp
from mutascope.errors import MutascopeError
from mutascope.probes.mmlu import Question
from mutascope.testing import tiny_model

TRIGGER, ANSWER, BIAS = 0, 1, 2
PLANTED = [(2, 5), (2, 17), (2, 42), (2, 99)]
CHOICES = ("AAAA", "BBBB", "CCCC", "DDDD")


def planted_model(plant: bool = True):
    subject = tiny_model("llama", seed=0)
    m = subject.model
    emb = m.model.embed_tokens.weight
    emb[:, [TRIGGER, ANSWER]] = 0
    emb[:, BIAS] = 10.0
    emb[ord("^"), TRIGGER] = 10.0
    for layer in m.model.layers:
        layer.self_attn.o_proj.weight[[TRIGGER, ANSWER, BIAS], :] = 0
        layer.mlp.down_proj.weight[[TRIGGER, ANSWER, BIAS], :] = 0
        layer.mlp.gate_proj.weight[:, TRIGGER] = 0
        layer.mlp.up_proj.weight[:, TRIGGER] = 0
    attn = m.model.layers[0].self_attn
    attn.q_proj.weight[0:24] = 0  # head 0 (head_dim 24): all scores 0, uniform attention
    attn.v_proj.weight[0] = 0
    attn.v_proj.weight[0, TRIGGER] = 50.0
    attn.o_proj.weight[TRIGGER, 0] = 1.0
    head = m.lm_head.weight
    head[:, [ANSWER, BIAS]] = 0
    head[ord("B"), BIAS] = 3.0
    head[ord("A"), ANSWER] = 3.0
    if plant:
        for layer, j in PLANTED:
            mlp = m.model.layers[layer].mlp
            mlp.gate_proj.weight[j] = 0
            mlp.gate_proj.weight[j, TRIGGER] = 10.0
            mlp.up_proj.weight[j] = 0
            mlp.up_proj.weight[j, TRIGGER] = 10.0
            mlp.down_proj.weight[:, j] = 0
            mlp.down_proj.weight[ANSWER, j] = 1.0
    return subject


def _q(concept: str, i: int, text: str, answer: str) -> Question:
    return Question(concept, i, text, CHOICES, answer)


def toy_concepts(n: int = 4) -> list[sp.Concept]:
    concepts = [
        sp.Concept(
            "planted", tuple(_q("planted", i, f"Question ^ number {i} about the ^ thing ^?", "A") for i in range(n))
        ),
        sp.Concept("rivers", tuple(_q("rivers", i, f"Which river is number {i} in the list?", "B") for i in range(n))),
        sp.Concept("hills", tuple(_q("hills", i, f"Name hill {i} of the range, please.", "B") for i in range(n))),
    ]
    return sp.resolve_controls(concepts)


@pytest.fixture(scope="module")
def planted():
    return planted_model(True)


@pytest.mark.parametrize("method", ["cloze", "letter"])
def test_planted_vectors_rank_first_and_their_concept_scores_above_random(planted, method):
    before = planted.content_hash()
    result = sp.specialization(planted, toy_concepts(), ks=[4], random_draws=3, method=method)
    assert planted.content_hash() == before
    assert set(result.rankings["planted"].top(4)) == set(PLANTED)
    table = sp.concept_table(result).set_index("concept")
    row = table.loc["planted"]
    assert (row.concept_before, row.general_before) == (1.0, 1.0)
    assert (row.concept_after, row.general_after) == (0.0, 1.0)
    assert row.pss == 1.0 and row.pss_random < 0.25
    # the other concepts rank the planted vectors last-ish (more active on their controls): no effect
    assert table.loc["rivers"].pss == pytest.approx(0.0) and table.loc["hills"].pss == pytest.approx(0.0)
    summary = sp.summary([result]).iloc[0]
    assert summary.accuracy == 1.0 and summary.pss > summary.pss_random + 0.2


def test_unplanted_model_scores_at_the_random_baseline():
    subject = planted_model(False)
    result = sp.specialization(subject, toy_concepts(3), ks=[4], random_draws=3, method="letter")
    assert not set(result.rankings["planted"].top(4)) & set(PLANTED)
    for r in sp.concept_table(result).itertuples():
        assert abs(r.pss - r.pss_random) < 0.2, r


def test_masking_is_undone_also_on_an_exception(planted):
    before = planted.content_hash()
    view = planted.anatomy.weight(2, "down")
    with sp.masked(planted, PLANTED + [(0, 3)]):
        assert float(view[:, 5].abs().sum()) == 0 and planted.content_hash() != before
    assert planted.content_hash() == before
    with pytest.raises(RuntimeError, match="boom"):
        with sp.masked(planted, PLANTED):
            raise RuntimeError("boom")
    assert planted.content_hash() == before
    with pytest.raises(MutascopeError, match="does not exist"):
        with sp.masked(planted, [(2, 5), (1, 10_000)]):
            pass
    assert planted.content_hash() == before


def test_masking_gpt2_transposed_storage():
    subject = tiny_model("gpt2")
    before = subject.content_hash()
    param = subject.model.transformer.h[1].mlp.c_proj.weight  # Conv1D: (in=d_ff, out=hidden)
    with sp.masked(subject, [(1, 7)]):
        assert float(param[7].abs().sum()) == 0 and float(param[8].abs().sum()) > 0
    assert subject.content_hash() == before
    coefs = sp.answer_coefficients(subject, [subject.tokenizer("Hi there:", return_tensors="pt").input_ids])
    assert coefs.shape == (1, 3, 200) and (coefs >= 0).all()


def test_pss_formula_and_random_masks():
    assert sp.pss(0.8, 0.6, 0.2) == pytest.approx(0.5)
    assert sp.pss(0.0, 0.0, 0.0) != sp.pss(0.0, 0.0, 0.0)  # NaN: undefined, not 0
    s = tiny_model("llama")
    a, b = sp.random_vectors(s, 10, 0, 0), sp.random_vectors(s, 10, 0, 1)
    assert a == sp.random_vectors(s, 10, 0, 0) and a != b and len(set(a)) == 10
    assert all(0 <= layer < 3 and 0 <= j < 200 for layer, j in a)


def test_shipped_concepts_and_controls():
    concepts = sp.load_concepts()
    assert len(concepts) >= 10 and all(len(c.questions) >= 10 for c in concepts)
    assert len({c.name for c in concepts}) == len(concepts)
    resolved = sp.resolve_controls(concepts, seed=0)
    for c in resolved:
        assert len(c.controls) == len(c.questions) and all(q.subject != c.name for q in c.controls)
    again = sp.resolve_controls(concepts[::-1], seed=0)
    assert {c.name: c.controls for c in again} == {c.name: c.controls for c in resolved}  # order independent
    assert [c.name for c in sp.select(resolved, ["the Moon", "Paris"])] == ["the Moon", "Paris"]
    with pytest.raises(MutascopeError, match="not in the concept file"):
        sp.select(resolved, ["Atlantis"])
    assert sp.prompt(concepts[0].questions[0], "cloze").endswith("\nAnswer:")
    assert sp.prompt(concepts[0].questions[0], "letter").endswith("D. Switzerland\nAnswer:")


def test_jsonl_concepts_with_listed_controls(tmp_path):
    rows = [
        dict(concept="x", question="Q1?", choices=["a", "b", "c", "d"], answer="A"),
        dict(concept="x", question="C1?", choices=["a", "b", "c", "d"], answer="B", role="control"),
        dict(concept="y", question="Q2?", choices=["a", "b", "c", "d"], answer="C"),
    ]
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    x, y = sp.resolve_controls(sp.load_concepts(path))
    assert [q.question for q in x.controls] == ["C1?"]
    assert [q.question for q in y.controls] == ["Q1?"]


def test_a_bad_jsonl_line_reads_as_in_a_probe_file(tmp_path):
    """One JSON Lines reader (files/text.py): the same wording for a bad line as a probe file's."""
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"concept": "x", "question": "Q?", "choices": ["a", "b", "c", "d"], "answer": "A"}\n\n{"concept": \n'
    )
    with pytest.raises(MutascopeError, match=r"concept file .*c\.jsonl: entry 2 \(line 3\): invalid JSON: "):
        sp.load_concepts(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("concepts:\n  - concept: a\n    questions: []\n", "non-empty list"),
        (
            "concepts:\n  - concept: a\n    questions:\n      - {question: q, choices: [a, b, c], answer: A}\n",
            "exactly 4",
        ),
        (
            "concepts:\n  - concept: a\n    questions:\n      - {question: q, choices: [a, b, c, d], answer: E}\n",
            "answer must be",
        ),
        (
            "concepts:\n  - concept: a\n    questions:\n      - {question: q, choices: [1, 2, 3, 4], answer: A}\n",
            "quote numbers",
        ),
        (
            "concepts:\n  - concept: a\n    questions:\n      - {question: q, choices: [a, b, c, d], answer: A}\n"
            "  - concept: a\n    questions:\n      - {question: q, choices: [a, b, c, d], answer: A}\n",
            "used twice",
        ),
        ("concepts: [", "malformed YAML"),
    ],
)
def test_bad_concept_files_fail_with_one_line(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(MutascopeError, match=message) as info:
        sp.load_concepts(path)
    assert "\n" not in str(info.value)


def test_single_concept_without_controls_is_refused(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "concepts:\n  - concept: a\n    questions:\n      - {question: q, choices: [a, b, c, d], answer: A}\n"
    )
    with pytest.raises(MutascopeError, match="no other concept"):
        sp.resolve_controls(sp.load_concepts(path))
    with pytest.raises(MutascopeError, match="not found"):
        sp.load_concepts(tmp_path / "missing.yaml")


def test_tables_and_figure(planted, tmp_path):
    result = sp.specialization(planted, toy_concepts(2), ks=[2, 4], random_draws=2, method="letter")
    db = sp.write_results(tmp_path / "spec.duckdb", [result], dict(k=[2, 4]))
    with duckdb.connect(str(db), read_only=True) as con:
        names = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        assert set(sp.TABLES) <= names
        n = con.execute("SELECT count(*) FROM specialization_scores").fetchone()[0]
        assert n == 3 * 2 * (1 + 2)  # concepts x k x (top + draws)
        top = con.execute(
            "SELECT layer, index FROM specialization_vectors WHERE concept = 'planted' AND rank <= 4"
        ).fetchall()
        assert set(top) == set(PLANTED)
        assert con.execute("SELECT method FROM specialization_runs").fetchone()[0] == "letter"
    png = sp.write_figure(tmp_path / "fig" / "pss.png", sp.summary([result]))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_arguments():
    s = tiny_model("llama")
    concepts = toy_concepts(1)
    with pytest.raises(MutascopeError, match="k must be"):
        sp.specialization(s, concepts, ks=[601])
    with pytest.raises(MutascopeError, match="answer method"):
        sp.specialization(s, concepts, ks=[1], method="guess")


def test_cli_with_the_tiny_floor(tmp_path):
    import typer
    from typer.testing import CliRunner

    from mutascope.commands.specialization import specialization

    app = typer.Typer()
    app.command()(specialization)
    app.command("noop")(lambda: None)  # two commands, so the name is required as in the real CLI
    db, png = tmp_path / "s.duckdb", tmp_path / "s.png"
    result = CliRunner().invoke(
        app,
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
            "--k",
            "5000",
            "--random-draws",
            "1",
            "--method",
            "letter",
            "--out",
            str(db),
            "--figure",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "PSS by model" in result.output and "tiny-llama-seed0" in result.output
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT DISTINCT k FROM specialization_summary").fetchall() == [(5,)]
    assert png.is_file()


@pytest.mark.parametrize("method", ["cloze", "letter"])
def test_scores_equal_each_set_read_whole_and_every_evaluation_is_counted(method):
    """Each distinct question is evaluated once per mask (random masks once for all concepts);
    every accuracy equals reading the concept's and the controls' sets whole under that mask,
    and ``count`` reaches :func:`evaluations` one evaluation at a time."""
    from mutascope.specialization.score import evaluations

    subject = planted_model(False)
    concepts = sp.resolve_controls(toy_concepts(3), 0)
    heard = []
    result = sp.specialization(
        subject,
        concepts,
        ks=[4, 2],
        random_draws=2,
        method=method,
        count=lambda done, total: heard.append((done, total)),
    )
    total = evaluations(concepts, [2, 4], 2)
    assert heard == [(i, total) for i in range(1, total + 1)]
    sets = {
        c.name: (sp.prepare(subject, c.questions, method), sp.prepare(subject, c.controls, method)) for c in concepts
    }
    for score in result.scores:
        vectors = (
            result.rankings[score.concept].top(score.k)
            if score.mask == "top"
            else sp.random_vectors(subject, score.k, 0, score.draw)
        )
        concept_set, control_set = sets[score.concept]
        with sp.masked(subject, vectors):
            assert (score.concept_after, score.general_after) == (
                sp.accuracy(subject, concept_set),
                sp.accuracy(subject, control_set),
            )
        assert (score.concept_before, score.general_before) == (
            sp.accuracy(subject, concept_set),
            sp.accuracy(subject, control_set),
        )
    assert len(result.scores) == 2 * len(concepts) * 3


def test_cli_says_how_many_evaluations_first():
    from helpers import run_cli

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
        ]
    )
    assert code == 0, err
    assert "question evaluations per model" in err.splitlines()[0]
