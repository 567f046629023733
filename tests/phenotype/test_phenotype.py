"""Phenotypes: similarity, severity, edit distance, choice scores, storage, ``show``.

Most tests use a *synthetic* results file written through the real
:class:`~mutascope.store.Store` with outputs chosen by hand, so every expected
value is known; one integration test phenotypes a real screen of a tiny
random model. The embedding model is the real all-MiniLM-L6-v2, loaded once.
"""

import os
import random

import duckdb
import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from helpers import GREEDY, screen_of, tables, text_probes
from mutascope.engine import divergence_step
from mutascope.errors import MutascopeError
from mutascope.phenotype import (
    CATEGORIES,
    DIFF_MARK,
    PHENOTYPE_TABLES,
    EmbeddingCache,
    is_malignant,
    load_embedder,
    parse_site,
    phenotype_results,
    render_show,
    score_choices,
    severity_band,
    show_mutant,
    token_edit_distance,
)
from mutascope.plan import Kind, Mutation, PlanSpec
from mutascope.probes import Probe
from mutascope.store import OutcomeRow, ProbeRecord, RunRecord, Store, open_results
from mutascope.testing import tiny_model

WT_TEXT = "The life cycle of Drosophila melanogaster has four stages: egg, larva, pupa and adult."
SIMILAR = "The life cycle of Drosophila melanogaster has four stages: egg, larva, pupa and the adult fly."
GARBLED = "x7#@!k$%^&*(q)_+ 0x3F ]]>"
POEM = "Staring at the sea tonight\nThe waves roll in and out of sight\nA quiet heart, a silver light"


@pytest.fixture(scope="session")
def embedder():
    return load_embedder()


class Counting:
    """Wraps an embedder and records every batch it is given."""

    def __init__(self, inner):
        self.inner = inner
        self.batches: list[list[str]] = []
        self.name = "counting"

    def __call__(self, texts):
        self.batches.append(list(texts))
        return self.inner(texts)

    @property
    def texts(self):
        return [t for b in self.batches for t in b]


def tokens_of(text: str) -> tuple[int, ...]:
    return tuple(ord(c) for c in text)


def write_synthetic(path, probes, outputs):
    """A results file holding exactly the given outputs.

    probes: list of (probe_id, kind, answer, group, wt_text); outputs: one dict
    per mutation, probe_id -> output text (missing: the WT output).
    Mutation i is tile (row 0, col i // 2) of layer 0's ``q``, kind max for even i, min for odd.
    """
    records = [
        ProbeRecord(
            probe_id=pid,
            kind=kind,
            text=f"prompt {pid}",
            chat=False,
            max_new_tokens=1 if kind == "choice" else 16,
            decoding="greedy",
            answer=answer,
            group=group,
            prompt_tokens=(1, 2, 3),
            wt_tokens=tokens_of(wt),
            wt_text=wt,
        )
        for pid, kind, answer, group, wt in probes
    ]
    mutations = [
        Mutation(
            mutation_id=i,
            layer=0,
            matrix="q",
            row=0,
            col=i // 2,
            kind=Kind("max" if i % 2 == 0 else "min"),
            value=1.5 if i % 2 == 0 else -1.5,
            r0=0,
            r1=64,
            c0=64 * (i // 2),
            c1=64 * (i // 2) + 64,
        )
        for i in range(len(outputs))
    ]
    run = RunRecord(
        model_id="synthetic",
        model_hash="0",
        dtype="float32",
        device="cpu",
        decoding="greedy",
        tile=(64, 64),
        shard="0/1",
        versions={},
    )
    with Store.open(path, {"synthetic": len(outputs)}, run=run, probes=records, mutations=mutations) as store:
        rows = []
        for mid, out in enumerate(outputs):
            for pid, _kind, _answer, _group, wt in probes:
                text = out.get(pid, wt)
                rows.append(
                    OutcomeRow(
                        mutation_id=mid,
                        probe_id=pid,
                        tokens=tokens_of(text),
                        text=text,
                        divergence=divergence_step(tokens_of(text), tokens_of(wt)),
                    )
                )
        store.write_chunk(rows, engine="synthetic", seconds=0.0)
    return path


# Four questions: WT answers q0, q1 right and q2, q3 wrong.
CHOICE = [
    ("q0", "choice", "A", "mmlu21:demo", " A"),
    ("q1", "choice", "B", "mmlu21:demo", " B"),
    ("q2", "choice", "C", "mmlu21:demo", " D"),
    ("q3", "choice", "D", "mmlu21:demo", " The"),
]
TEXT = [("fly", "text", None, None, WT_TEXT)]


@pytest.fixture
def synthetic(tmp_path):
    outputs = [
        {},  # 0 silent everywhere
        {"fly": ""},  # 1 empty output, answers intact
        {"fly": GARBLED, "q0": " C", "q1": " C", "q2": " C"},  # 2 garbled, knowledge broken: 0|1
        {"fly": SIMILAR},  # 3 mild
        {"fly": POEM, "q3": " D"},  # 4 writer-like; gains a WT-wrong answer: 2|1
        {"fly": GARBLED, "q0": " B"},  # 5 same garbled text as 2 (embedded once)
    ]
    return write_synthetic(tmp_path / "s.duckdb", TEXT + CHOICE, outputs)


# -- measures -----------------------------------------------------------------


def test_severity_bands():
    cases = {
        -0.2: "<0.1",
        0.0: "<0.1",
        0.0999: "<0.1",
        0.1: "<0.3",
        0.29: "<0.3",
        0.3: "<0.5",
        0.5: "<0.7",
        0.6999: "<0.7",
        0.7: ">=0.7",
        1.0: ">=0.7",
    }
    for sim, band in cases.items():
        assert severity_band(sim) == band, sim


def _naive_levenshtein(a, b):
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def test_token_edit_distance_matches_the_textbook_definition():
    rng = random.Random(0)
    assert token_edit_distance([], []) == 0
    assert token_edit_distance([1, 2, 3], []) == 3
    assert token_edit_distance([], [4, 5]) == 2
    assert token_edit_distance([1, 2, 3], [1, 2, 3]) == 0
    assert token_edit_distance([1, 2, 3], [1, 3]) == 1
    for _ in range(200):
        a = [rng.randrange(4) for _ in range(rng.randrange(12))]
        b = [rng.randrange(4) for _ in range(rng.randrange(12))]
        assert token_edit_distance(a, b) == _naive_levenshtein(a, b), (a, b)


def test_embedding_cache_embeds_each_distinct_text_once_in_batches():
    calls = []

    def fake(texts):
        calls.append(list(texts))
        return np.array([[len(t) + 1.0, 1.0] for t in texts])

    cache = EmbeddingCache(fake, batch_size=2)
    assert cache.similarity("same", "same") == 1.0 and calls == []  # identical texts: never embedded
    assert cache.add(["a", "b", "a", "c", "b"]) == 3
    assert calls == [["a", "b"], ["c"]]
    assert cache.add(["c", "a"]) == 0 and len(calls) == 2
    assert -1.0 <= cache.similarity("a", "c") < 1.0 and len(calls) == 2
    with pytest.raises(MutascopeError, match="batch size"):
        EmbeddingCache(fake, batch_size=0)


def test_real_embeddings_rate_empty_and_garbled_outputs_low(embedder):
    cache = EmbeddingCache(embedder)
    assert cache.similarity(WT_TEXT, WT_TEXT) == 1.0
    assert cache.similarity(WT_TEXT, SIMILAR) >= 0.7
    for bad in ("", "   ", GARBLED, "\ufffd\ufffd\ufffd ab \ufffd\ufffd", "asdkj qwpoe zmxnc"):
        assert cache.similarity(WT_TEXT, bad) < 0.3, repr(bad)


# -- choice scores --------------------------------------------------------------


def test_choice_scores_split_by_what_wt_got_right():
    key, wt = ["A", "B", "C", "D"], [" A", " B", " D", " The"]
    same = score_choices("g", key, wt, wt)
    assert (same.score, same.total, same.changed, same.answers) == ("2|0", 2, False, "ABD-")
    assert same.n_wt_right == 2
    worse = score_choices("g", key, wt, [" C", " B", " C", "D"])
    assert (worse.score, worse.total, worse.changed) == ("1|2", 3, True)
    with pytest.raises(MutascopeError, match="one key letter"):
        score_choices("g", key, wt, [" A"])


def test_malignant_rule():
    assert is_malignant(0.5, 8)
    assert not is_malignant(0.51, 8)
    assert not is_malignant(0.5, 9)
    assert is_malignant(-0.1, 0)


# -- storing phenotypes -----------------------------------------------------------


def _phenotypes(path):
    with open_results(path) as r:
        ph = r.con.execute("SELECT * FROM phenotypes ORDER BY mutation_id, probe_id").df()
        scores = r.con.execute("SELECT * FROM choice_scores ORDER BY mutation_id").df()
    return ph, scores


def test_phenotypes_of_a_synthetic_screen(synthetic, embedder):
    counting = Counting(embedder)
    summary = phenotype_results(synthetic, embedder=counting)
    ph, scores = _phenotypes(synthetic)
    assert len(ph) == 6 * 5 and summary.n_outcomes == 30
    fly = ph[ph.probe_id == "fly"].set_index("mutation_id")

    # silent: similarity exactly 1, edit distance 0
    assert fly.loc[0, "similarity"] == 1.0 and fly.loc[0, "edit_distance"] == 0
    assert fly.loc[0, "severity"] == ">=0.7"
    # empty and garbled outputs are far from WT
    assert fly.loc[1, "similarity"] < 0.3 and fly.loc[1, "category"] == "empty"
    assert fly.loc[2, "similarity"] < 0.3 and fly.loc[2, "category"] == "non-text"
    assert fly.loc[1, "edit_distance"] == len(WT_TEXT)
    assert fly.loc[3, "similarity"] >= 0.7 and fly.loc[3, "severity"] == ">=0.7"
    assert fly.loc[4, "category"] == "poem" and fly.loc[4, "first_word"] == "staring"
    assert fly.loc[2, "similarity"] == fly.loc[5, "similarity"]
    # only distinct changed texts (and WT's) reached the embedder, each once
    assert sorted(counting.texts) == sorted({WT_TEXT, "", GARBLED, SIMILAR, POEM})
    assert summary.n_embedded == 5 and summary.n_embed_calls == 1

    # choice probes: letters, no similarity
    q = ph[ph.probe_id != "fly"]
    assert q.similarity.isna().all() and q.severity.isna().all()
    assert ph.set_index(["mutation_id", "probe_id"]).loc[(2, "q0"), "answer"] == "C"
    s = scores.set_index("mutation_id")
    assert list(s.score) == ["2|0", "2|0", "0|1", "2|0", "2|1", "1|0"]
    assert list(s.changed) == [False, False, True, False, True, True]
    assert list(s.answers) == ["ABD-", "ABD-", "CCC-", "ABD-", "ABDD", "BBD-"]
    assert (s.wt_answers == "ABD-").all() and (s.n_questions == 4).all()

    # malignant: similarity <= 0.5 and a + b <= 8 (always true with 4 questions)
    assert list(fly.malignant) == [False, True, True, False, True, True]
    assert q.malignant.isna().all()
    assert summary.n_malignant == 4
    assert summary.choice_changed == {"mmlu21:demo": 3}
    assert summary.categories == {"non-text": 2, "empty": 1, "other": 1, "poem": 1}


def test_stored_scores_agree_with_score_choices(synthetic, embedder):
    phenotype_results(synthetic, embedder=embedder)
    _, scores = _phenotypes(synthetic)
    for mid, row in scores.set_index("mutation_id").iterrows():
        view = show_mutant(synthetic, f"0.q.0.{mid // 2}", "max" if mid % 2 == 0 else "min")
        (mine,) = view.scores
        assert (mine.score, mine.total, mine.changed, mine.answers) == (row.score, row.total, row.changed, row.answers)


def test_recomputing_replaces_and_never_duplicates(synthetic, embedder):
    phenotype_results(synthetic, embedder=embedder)
    first = _phenotypes(synthetic)
    with open_results(synthetic) as r:
        names = {n for (n,) in r.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert set(PHENOTYPE_TABLES) <= names
    phenotype_results(synthetic, embedder=embedder, batch_size=2)
    second = _phenotypes(synthetic)
    assert first[1].equals(second[1])
    # batching changes the embeddings' last bits only
    np.testing.assert_allclose(first[0].similarity, second[0].similarity, atol=1e-5)
    cols = [c for c in first[0].columns if c != "similarity"]
    assert first[0][cols].equals(second[0][cols])
    with open_results(synthetic) as r:
        assert r.con.execute("SELECT count(*) FROM phenotype_runs").fetchall()[0][0] == 1
        assert r.con.execute("SELECT batch_size FROM phenotype_runs").fetchall()[0][0] == 2


def test_a_failed_recomputation_keeps_the_previous_phenotypes(synthetic, embedder):
    phenotype_results(synthetic, embedder=embedder)
    before = _phenotypes(synthetic)

    def broken(texts):
        raise RuntimeError("embedder died")

    with pytest.raises(RuntimeError, match="embedder died"):
        phenotype_results(synthetic, embedder=broken)
    after = _phenotypes(synthetic)
    assert before[0].equals(after[0]) and before[1].equals(after[1])


def test_a_screen_with_no_changed_text_loads_no_embedding_model(tmp_path):
    path = write_synthetic(tmp_path / "s.duckdb", TEXT + CHOICE, [{}, {"q0": " B"}])
    summary = phenotype_results(path)  # no embedder given, none needed
    assert summary.n_embedded == 0 and summary.n_malignant == 0
    ph, scores = _phenotypes(path)
    assert (ph[ph.probe_id == "fly"].similarity == 1.0).all()
    assert list(scores.score) == ["2|0", "1|0"]


def test_without_an_mmlu21_set_malignant_is_not_applicable(tmp_path, embedder):
    probes = TEXT + [(pid, k, a, "mmlu:demo", wt) for pid, k, a, _g, wt in CHOICE]
    path = write_synthetic(tmp_path / "s.duckdb", probes, [{}, {"fly": ""}])
    summary = phenotype_results(path, embedder=embedder)
    ph, scores = _phenotypes(path)
    assert ph.malignant.isna().all() and summary.n_malignant is None
    assert list(scores.probe_group.unique()) == ["mmlu:demo"]


def test_missing_or_foreign_files_are_refused(tmp_path, embedder):
    with pytest.raises(MutascopeError, match="not found"):
        phenotype_results(tmp_path / "nope.duckdb", embedder=embedder)
    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).execute("CREATE TABLE t (x INTEGER)").close()
    with pytest.raises(MutascopeError, match="holds no mutascope screen"):
        phenotype_results(other, embedder=embedder)


def test_a_tiny_model_screen_phenotyped_then_resumed(tmp_path, embedder):
    """Real engine outputs; phenotype tables must not get in the way of resuming the screen."""
    subject = tiny_model("llama")
    probes = text_probes(6) + [
        Probe(f"c{i}", f"Question {i}? Answer:", 1, GREEDY, kind="choice", answer="A", group="mmlu21:tiny")
        for i in range(3)
    ]
    spec = PlanSpec.parse(layers="0", matrices="q,down", rows="0", kinds="max,zero")
    path = tmp_path / "r.duckdb"

    def stop(done, total):
        if done >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        screen_of(subject, probes, spec, path, chunk_size=4).run(stop)
    partial = phenotype_results(path, embedder=embedder)
    assert partial.n_outcomes == 4 * len(probes)
    before = tables(path)["outcomes"]
    screen_of(subject, probes, spec, path, chunk_size=4).run()  # resumes despite the new tables
    after = tables(path)["outcomes"]
    assert len(after) > len(before) and all(row in after for row in before)

    counting = Counting(embedder)
    summary = phenotype_results(path, embedder=counting)
    with open_results(path) as r:
        n_outcomes = r.con.execute("SELECT count(*) FROM outcomes").fetchall()[0][0]
        joined = r.con.execute(
            "SELECT o.nsm, o.output_text, p.wt_text, p.kind, f.* FROM outcomes o "
            "JOIN phenotypes f USING (mutation_id, probe_id) JOIN probes p USING (probe_id)"
        ).df()
        distinct_changed = r.con.execute(
            "SELECT count(DISTINCT o.output_text) FROM outcomes o JOIN probes p USING (probe_id) "
            "WHERE p.kind = 'text' AND o.output_text <> p.wt_text"
        ).fetchall()[0][0]
        wt_changed = r.con.execute(
            "SELECT count(DISTINCT p.wt_text) FROM outcomes o JOIN probes p USING (probe_id) "
            "WHERE p.kind = 'text' AND o.output_text <> p.wt_text"
        ).fetchall()[0][0]
        n_mutations = r.con.execute("SELECT count(*) FROM mutations").fetchall()[0][0]
        n_scores = r.con.execute("SELECT count(*) FROM choice_scores").fetchall()[0][0]
    assert summary.n_outcomes == len(joined) == n_outcomes
    assert n_scores == n_mutations
    text = joined[joined.kind == "text"]
    silent = text[~text.nsm]
    assert len(silent) > 0 and (silent.similarity == 1.0).all() and (silent.edit_distance == 0).all()
    assert text.nsm.any() and (text[text.nsm].edit_distance > 0).all()
    assert len(counting.texts) == len(set(counting.texts)) == distinct_changed + wt_changed
    assert set(text.category) <= set(CATEGORIES)


# -- show ----------------------------------------------------------------------------


def test_parse_site():
    assert parse_site("3.down.0.5") == (3, "down", 0, 5)
    for bad in ("3.down.0", "a.down.0.1", "3..0.1", "3.down.-1.0", ""):
        with pytest.raises(MutascopeError) as e:
            parse_site(bad)
        assert "\n" not in str(e.value) and "LAYER.MATRIX.ROW.COL" in str(e.value)


def test_show_one_mutant(synthetic, embedder):
    phenotype_results(synthetic, embedder=embedder)
    view = show_mutant(synthetic, "0.q.0.2", "max")  # mutation 4: the poem
    assert view.mutation_id == 4 and view.phenotyped
    fly = view.probes[0]
    assert fly.nsm and fly.divergence == 0 and fly.category == "poem" and fly.wt_category == "other"
    assert fly.similarity < 0.3 and fly.malignant
    out = render_show(view)
    assert "staring" in out and "poem" in out and f"{fly.similarity:.3f}" in out
    assert "2|1" in out and "WT 2|0" in out and "changed" in out
    assert "wild type" in out and "mutant" in out

    mild = show_mutant(synthetic, "0.q.0.1", "max")  # mutation 2 is garbled; 3 (min) is the mild one
    assert mild.mutation_id == 2
    view = show_mutant(synthetic, "0.q.0.1", "min")
    p = view.probes[0]
    assert p.diff_at == len("The life cycle of Drosophila melanogaster has four stages: egg, larva, pupa and ")
    assert p.divergence == p.diff_at  # synthetic tokens are characters
    first = next(line for line in render_show(view).splitlines() if DIFF_MARK in line and "|" in line)
    left, right = first.split(" | ")
    assert DIFF_MARK in left and DIFF_MARK in right


def test_show_before_phenotyping_says_what_is_missing(synthetic):
    view = show_mutant(synthetic, "0.q.0.0", "min")
    assert not view.phenotyped and view.probes[0].similarity is None
    assert view.probes[0].category == "empty"
    out = render_show(view)
    assert "mutascope phenotype" in out and "(empty)" in out


def test_show_silent_mutant(synthetic, embedder):
    phenotype_results(synthetic, embedder=embedder)
    out = render_show(show_mutant(synthetic, "0.q.0.0", "max"))
    assert "silent" in out and "answers changed: no" in out


@pytest.mark.parametrize(
    "site,kind,match",
    [
        ("0.q.0", "max", "malformed"),
        ("0.q.0.x", "max", "must be integers"),
        ("0.q.0.0", "maximum", "unknown kind"),
        ("0.q.0.0", "zero", "no zero mutation at site 0.q.0.0; kinds screened there: max, min"),
        ("0.q.0.9", "max", r"not in the screen .*cols 0-2"),
        ("5.k.0.0", "max", r"not in the screen .*layers 0, matrices q"),
    ],
)
def test_show_bad_site_or_kind(synthetic, site, kind, match):
    with pytest.raises(MutascopeError, match=match) as e:
        show_mutant(synthetic, site, kind)
    assert "\n" not in str(e.value)


def test_show_a_mutant_not_run_yet(tmp_path):
    path = write_synthetic(tmp_path / "s.duckdb", TEXT, [{}, {}])
    with duckdb.connect(str(path)) as con:
        con.execute("DELETE FROM outcomes WHERE mutation_id = 1")
    with pytest.raises(MutascopeError, match="no outcomes yet"):
        show_mutant(path, "0.q.0.0", "min")
