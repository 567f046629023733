"""MMLU-format multiple-choice probes and the paper's MMLU21 selection."""

from __future__ import annotations

import pytest

from helpers import ROOT  # noqa: E402
from mutascope.errors import MutascopeError
from mutascope.probes import Decoding, Probe
from mutascope.probes.mmlu import (
    Question,
    answer_letter,
    choice_probes,
    five_shot_prompt,
    format_subject,
    load_questions,
    mmlu21_score,
    select_mmlu21,
    subjects,
)

SHARED_MMLU = ROOT.parent / "shared" / "data" / "mmlu"

# Six dev rows (only the first five go in the prompt); row 2 has a quoted comma,
# row 3 a quoted newline and quote, as the csv module must handle.
DEV_CSV = (
    "What is 1+1?,1,2,3,4,B\n"
    '"Pick the list","a, b",c,d,e,A\n'
    '"Two\nlines?","say ""hi""",no,yes,maybe,C\n'
    "Q4,w,x,y,z,D\n"
    "Q5,p,q,r,s,A\n"
    "Q6 not used,k,l,m,n,B\n"
)
TEST_CSV = "".join(f"T{i},a{i},b{i},c{i},d{i},{'ABCD'[i % 4]}\n" for i in range(12))

EXPECTED_PROMPT_T3 = (
    "The following are multiple choice questions (with answers) about toy law.\n\n"
    "What is 1+1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
    "Pick the list\nA. a, b\nB. c\nC. d\nD. e\nAnswer: A\n\n"
    'Two\nlines?\nA. say "hi"\nB. no\nC. yes\nD. maybe\nAnswer: C\n\n'
    "Q4\nA. w\nB. x\nC. y\nD. z\nAnswer: D\n\n"
    "Q5\nA. p\nB. q\nC. r\nD. s\nAnswer: A\n\n"
    "T3\nA. a3\nB. b3\nC. c3\nD. d3\nAnswer:"
)


@pytest.fixture
def mmlu_dir(tmp_path):
    for split, text in (("dev", DEV_CSV), ("test", TEST_CSV), ("val", "".join(TEST_CSV.splitlines(keepends=True)[:2]))):
        (tmp_path / split).mkdir()
        (tmp_path / split / f"toy_law_{split}.csv").write_text(text, encoding="utf-8")
    (tmp_path / "test" / "other_subject_test.csv").write_text("Q,a,b,c,d,A\n")
    return tmp_path


def test_subjects(mmlu_dir):
    assert subjects(mmlu_dir) == ["other_subject", "toy_law"]


def test_subjects_missing_dir(tmp_path):
    with pytest.raises(MutascopeError, match="not found"):
        subjects(tmp_path / "nope")
    with pytest.raises(MutascopeError, match="no subjects"):
        subjects(tmp_path)


def test_load_questions_parses_quotes_and_newlines(mmlu_dir):
    dev = load_questions(mmlu_dir, "toy_law", "dev")
    assert len(dev) == 6
    assert dev[1] == Question("toy_law", 1, "Pick the list", ("a, b", "c", "d", "e"), "A")
    assert dev[2].question == "Two\nlines?"
    assert dev[2].choices[0] == 'say "hi"'
    assert [q.index for q in dev] == list(range(6))


def test_load_questions_unknown_subject_lists_available(mmlu_dir):
    with pytest.raises(MutascopeError) as e:
        load_questions(mmlu_dir, "toy_lw")
    msg = str(e.value)
    assert "\n" not in msg and "toy_law" in msg and "toy_lw" in msg


def test_load_questions_bad_split_and_dir(mmlu_dir, tmp_path):
    with pytest.raises(MutascopeError, match="split"):
        load_questions(mmlu_dir, "toy_law", "train")
    with pytest.raises(MutascopeError, match="not found"):
        load_questions(tmp_path / "absent", "toy_law")


@pytest.mark.parametrize(
    "content, line, what",
    [
        ("Q,a,b,c,d,A\nQ2,a,b,c,A\n", 2, "expected 6 fields"),
        ('Q,a,b,c,d,A\n"multi\nline",a,b,c,d,E\n', 2, "answer must be one of"),
        ('Q,a,b,c,d,A\n\n"x\ny",a,b,c,d,A\nQ,a,b,c,d,A,extra\n', 5, "expected 6 fields"),
    ],
)
def test_load_questions_malformed_row_names_file_and_line(tmp_path, content, line, what):
    (tmp_path / "test").mkdir()
    path = tmp_path / "test" / "bad_test.csv"
    path.write_text(content)
    with pytest.raises(MutascopeError) as e:
        load_questions(tmp_path, "bad")
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{path}:{line}:" in msg
    assert what in msg


def test_format_subject():
    assert format_subject("international_law") == "international law"
    assert format_subject("abstract_algebra") == "abstract algebra"


def test_five_shot_prompt_exact(mmlu_dir):
    dev = load_questions(mmlu_dir, "toy_law", "dev")
    test = load_questions(mmlu_dir, "toy_law", "test")
    assert five_shot_prompt(dev, test[3]) == EXPECTED_PROMPT_T3


def test_five_shot_prompt_needs_five_dev_questions(mmlu_dir):
    dev = load_questions(mmlu_dir, "toy_law", "dev")
    with pytest.raises(MutascopeError, match="needs 5 dev questions"):
        five_shot_prompt(dev[:4], dev[5])


def test_choice_probes(mmlu_dir):
    probes = choice_probes(mmlu_dir, "toy_law", limit=5)
    assert [p.id for p in probes] == [f"mmlu:toy_law:{i:04d}" for i in range(5)]
    p = probes[3]
    assert p.text == EXPECTED_PROMPT_T3
    assert (p.kind, p.max_new_tokens, p.decoding, p.answer, p.group, p.chat) == (
        "choice",
        1,
        Decoding(),
        "D",
        "mmlu:toy_law",
        False,
    )
    assert len(choice_probes(mmlu_dir, "toy_law")) == 12
    assert len(choice_probes(mmlu_dir, "toy_law", split="val")) == 2


@pytest.mark.parametrize(
    "text, letter",
    [
        ("A", "A"),
        (" B", "B"),
        ("C.", "C"),
        (" D)", "D"),
        ("\nA\n", "A"),
        ("E", None),
        ("", None),
        ("   ", None),
        (" a", None),
        ("All", None),
        ("Answer", None),
        ("1", None),
    ],
)
def test_answer_letter(text, letter):
    assert answer_letter(text) == letter


# ---------------------------------------------------------------------------
# MMLU21 selection with a fake wild type


def fake_probes(answers: str, subject: str = "toy_law") -> list[Probe]:
    return [
        Probe(
            f"mmlu:{subject}:{i:04d}",
            f"question {i}\nAnswer:",
            1,
            Decoding(),
            kind="choice",
            answer=a,
            group=f"mmlu:{subject}",
        )
        for i, a in enumerate(answers)
    ]


def test_select_mmlu21_picks_first_right_and_wrong_in_order():
    probes = fake_probes("A" * 40)
    # WT is right on even indices up to 30, wrong on every odd index.
    wt = {p.id: (" A" if i % 2 == 0 and i < 30 else " B") for i, p in enumerate(probes)}
    calls = []

    def answer_fn(p):
        calls.append(p.id)
        return wt[p.id]

    chosen = select_mmlu21(probes, answer_fn)
    right = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26]
    wrong = [1, 3, 5, 7, 9, 11, 13]
    assert [p.id for p in chosen] == [f"mmlu21:toy_law:{i:04d}" for i in sorted(right + wrong)]
    assert all(p.group == "mmlu21:toy_law" for p in chosen)
    assert all(p.kind == "choice" and p.text == probes[int(p.id[-4:])].text for p in chosen)
    # Stops as soon as both are filled: the 14th right answer is question 26.
    assert calls == [p.id for p in probes[:27]]


def test_select_mmlu21_wrong_includes_unparseable_answers():
    probes = fake_probes("ABCD")
    chosen = select_mmlu21(probes, lambda p: {"0": "A", "1": "All", "2": "C", "3": ""}[p.id[-1]], n_right=2, n_wrong=2)
    assert [p.id for p in chosen] == [f"mmlu21:toy_law:{i:04d}" for i in range(4)]


def test_select_mmlu21_runs_out():
    probes = fake_probes("A" * 30)
    with pytest.raises(MutascopeError) as e:
        select_mmlu21(probes, lambda p: "A")  # never wrong
    msg = str(e.value)
    assert "\n" not in msg
    assert "14 of the 14" in msg and "0 of the 7" in msg and "toy_law" in msg


def test_select_mmlu21_rejects_bad_input():
    with pytest.raises(MutascopeError):
        select_mmlu21([], lambda p: "A")
    with pytest.raises(MutascopeError, match="one subject"):
        select_mmlu21(fake_probes("AB", "x") + fake_probes("AB", "y"), lambda p: "A")
    with pytest.raises(MutascopeError, match="not an MMLU choice probe"):
        select_mmlu21([Probe("free", "text", 3, Decoding())], lambda p: "A")


def test_mmlu21_score():
    assert mmlu21_score(14, 7) == "14|7"
    assert mmlu21_score(3, 0) == "3|0"
    with pytest.raises(MutascopeError):
        mmlu21_score(-1, 0)


# ---------------------------------------------------------------------------
# The real data set, when the shared checkout is present


@pytest.mark.skipif(not (SHARED_MMLU / "test").is_dir(), reason=f"MMLU data not present at {SHARED_MMLU}")
def test_real_international_law():
    assert "international_law" in subjects(SHARED_MMLU)
    test = load_questions(SHARED_MMLU, "international_law")
    assert len(test) > 100
    assert all(q.answer in "ABCD" and len(q.answer) == 1 for q in test)
    assert all(q.question and all(isinstance(c, str) for c in q.choices) for q in test)
    dev = load_questions(SHARED_MMLU, "international_law", "dev")
    assert len(dev) == 5
    probes = choice_probes(SHARED_MMLU, "international_law", limit=3)
    assert probes[0].text.startswith(
        "The following are multiple choice questions (with answers) about international law.\n\n"
        + dev[0].question
        + "\nA. "
        + dev[0].choices[0]
    )
    assert probes[0].text.endswith("\nAnswer:")
