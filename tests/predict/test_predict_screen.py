"""Screens in predicted order and the stored predictions table: every mutant's outcome is the
plan-order screen's, however the screen runs (resumed, sharded and merged, filled, on workers)."""

from __future__ import annotations

import os

import duckdb
import pytest

from helpers import run_cli, screen_of, tables, text_probes
from mutascope.errors import MutascopeError
from mutascope.plan import PlanSpec
from mutascope.screen import ScreenConfig, fill, merge, predicted_coverage
from mutascope.screen.fill import Selection
from mutascope.store import open_results
from mutascope.testing import tiny_model

SPEC = PlanSpec.parse(layers="0,2", matrices="q,v,down", kinds="max,min", tile="16")
CHUNK = 8


@pytest.fixture(scope="module")
def subject():
    return tiny_model("llama")


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory, subject):
    path = tmp_path_factory.mktemp("plan") / "plan.duckdb"
    screen_of(subject, text_probes(6), SPEC, path, chunk_size=CHUNK).run()
    return path


def _chunk_order(path) -> list[int]:
    with open_results(path) as r:
        return r.query("SELECT first_mutation_id FROM progress ORDER BY rowid")["first_mutation_id"].tolist()


def _predictions(path):
    with open_results(path) as r:
        return r.predictions


def test_predicted_order_runs_other_chunks_first_with_identical_outcomes(tmp_path, subject, plan_file):
    out = tmp_path / "predicted.duckdb"
    screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK, order="predicted").run()
    assert tables(out) == tables(plan_file)  # every call, token and effect size, bit for bit
    order = _chunk_order(out)
    assert sorted(order) == _chunk_order(plan_file) and order != sorted(order)
    stored = _predictions(out)
    with open_results(plan_file) as r:
        n = len(r.outcomes)
    assert len(stored) == n and stored["predicted"].notna().all()
    # highest summed |predicted| first
    first = stored[stored["mutation_id"] < CHUNK]["predicted"].abs().sum()
    lead = (
        stored[(stored["mutation_id"] >= order[0]) & (stored["mutation_id"] < order[0] + CHUNK)]["predicted"]
        .abs()
        .sum()
    )
    assert lead >= first


def test_predicted_order_resumes_from_its_stored_predictions(tmp_path, subject, plan_file):
    out = tmp_path / "part.duckdb"

    def stop(done, total):
        if done >= 2 * CHUNK:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK, order="predicted").run(stop)
    before = _predictions(out)
    first_two = _chunk_order(out)
    resumed = screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK, order="predicted").run()
    assert resumed.n_run_now == resumed.n_mutations - 2 * CHUNK
    assert tables(out) == tables(plan_file)
    assert _predictions(out).equals(before)  # read back, not recomputed
    uninterrupted = tmp_path / "whole.duckdb"
    screen_of(subject, text_probes(6), SPEC, uninterrupted, chunk_size=CHUNK, order="predicted").run()
    assert _chunk_order(out) == _chunk_order(uninterrupted)[:2] + [
        c for c in _chunk_order(uninterrupted) if c not in first_two
    ]


def test_shards_in_predicted_order_merge_into_the_plan_order_file(tmp_path, subject, plan_file):
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"s{i}.duckdb")
        screen_of(subject, text_probes(6), SPEC, shards[-1], shard=(i, 2), chunk_size=CHUNK, order="predicted").run()
    merged = merge(tmp_path / "merged.duckdb", shards)
    assert tables(merged) == tables(plan_file)
    whole = tmp_path / "whole.duckdb"
    screen_of(subject, text_probes(6), SPEC, whole, chunk_size=CHUNK).predict()
    assert _predictions(merged).equals(_predictions(whole))


def test_a_calls_only_screen_in_predicted_order_fills_to_the_full_screen(tmp_path, subject, plan_file):
    out = tmp_path / "calls.duckdb"
    screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK, order="predicted", outputs="calls").run()
    fill(out, subject, Selection.parse(all=True))
    assert tables(out) == tables(plan_file)


def test_predict_into_a_new_file_then_screen_into_it(tmp_path, subject, plan_file):
    out = tmp_path / "p.duckdb"
    frame = screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK).predict()
    with open_results(out) as r:
        assert len(r.outcomes) == 0 and len(r.mutations) * 2 == len(frame)
    screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK, order="predicted").run()
    assert tables(out) == tables(plan_file)
    assert _predictions(out).equals(frame)


def test_predictions_of_another_plan_are_refused(tmp_path, subject, plan_file):
    other = PlanSpec.parse(layers="1", matrices="q", kinds="max,min", tile="16")
    with pytest.raises(MutascopeError, match="different screen"):
        screen_of(subject, text_probes(6), other, plan_file, chunk_size=CHUNK).predict()
    assert _predictions(plan_file) is None


def test_predicted_coverage_reaches_everything(subject):
    schedule = predicted_coverage(subject, ScreenConfig(probes=text_probes(6), plan=SPEC, out=os.devnull))
    for column in (schedule.covered, schedule.screened, schedule.ends):
        assert column[-1] == pytest.approx(1.0) and (column[1:] >= column[:-1]).all()
    assert schedule.at(0.0) == (0, 0.0, 0.0)


def test_plan_predicted_counts_finished_chunks_only_and_names_a_single_chunk(tiny_model_dir):
    """A two-chunk plan (256 + 56 mutants) is shown at the end of each chunk, with the share
    screened by then; nothing before the first chunk ends. A one-chunk plan gets a sentence."""
    args = [
        "plan",
        "--model",
        str(tiny_model_dir),
        "--probe",
        "python",
        "--max-new-tokens",
        "4",
        "--matrices",
        "down",
        "--tile",
        "16",
        "--predicted",
    ]
    code, stdout, err = run_cli([*args, "--layers", "0,2"])
    assert code == 0, err
    assert "312 mutants" in stdout and "2 chunks" in stdout
    rows = [line for line in stdout.splitlines() if "/2" in line]
    assert len(rows) == 2 and "82 %" in rows[0] and "100 %" in rows[1], stdout
    code, stdout, err = run_cli([*args, "--layers", "0"])
    assert code == 0, err
    assert "single chunk" in stdout and "covered" not in stdout.split("single chunk")[0]


def test_unknown_order_is_one_line(tmp_path, tiny_model_dir):
    code, _, err = run_cli(
        [
            "screen",
            "--model",
            str(tiny_model_dir),
            "--probe",
            "python",
            "--order",
            "best",
            "--out",
            str(tmp_path / "r.duckdb"),
        ]
    )
    assert code == 2 and len(err.strip().splitlines()) == 1 and "unknown order 'best'" in err
    assert not (tmp_path / "r.duckdb").exists()


def test_predict_command_writes_the_table_and_refuses_another_screen(tmp_path, tiny_model_dir):
    out = tmp_path / "r.duckdb"
    args = [
        "--model",
        str(tiny_model_dir),
        "--probe",
        "python",
        "--max-new-tokens",
        "4",
        "--layers",
        "0",
        "--matrices",
        "q,down",
        "--tile",
        "16",
    ]
    code, stdout, err = run_cli(["predict", *args, "--out", str(out), "--top", "3"])
    assert code == 0, err
    assert "largest predicted effects" in stdout and "table `predictions`" in stdout
    n = len(_predictions(out))
    assert n > 0
    before = out.read_bytes()
    code, _, err = run_cli(["predict", *args[:-4], "--layers", "1", "--tile", "16", "--out", str(out)])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "different screen" in err
    assert out.read_bytes() == before
    code, _, err = run_cli(["predict", *args, "--out", str(out), "--top", "-1"])
    assert code == 2 and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["plan", *args, "--predicted", "--no-estimate"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--predicted" in err
    code, stdout, err = run_cli(["screen", *args, "--order", "predicted", "--out", str(out)])
    assert code == 0, err
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == n


def test_analyze_and_report_use_the_predictions(tmp_path, subject):
    from mutascope.analysis.run import analyze
    from mutascope.report import write_report

    out = tmp_path / "a.duckdb"
    screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK, order="predicted").run()
    tables = analyze(out, n_perm=99)
    # the residual readout (beyond the local estimate) runs every readout statistic
    residual = {n.removeprefix("residual_") for n in tables if n.startswith("residual_")}
    assert residual == {n.removeprefix("effect_") for n in tables if n.startswith("effect_")}
    assert {"enrichment", "bias", "copa", "recurrence", "reorder_holdout_by_type"} <= residual
    assert len(tables["residual_enrichment"]) == len(tables["effect_enrichment"])
    table = tables["prediction_agreement"]
    assert set(table["score"]) >= {
        "predicted",
        "predicted_abs",
        "local",
        "local_abs",
        "magnitude",
        "change",
        "wanda",
        "activation",
    }
    assert set(table["probe_id"]) == {"hello", "story"} and "all" in set(table["matrix"])
    ok = table.dropna(subset=["spearman"])
    assert ((ok["spearman_low"] <= ok["spearman"] + 1e-12) & (ok["spearman"] <= ok["spearman_high"] + 1e-12)).all()
    figures = tmp_path / "figures"
    write_report(out, tmp_path / "r.html", figures_dir=figures)
    assert (figures / "predicted_scatter.png").exists() and (figures / "recall_curves.png").exists()
    html = (tmp_path / "r.html").read_text()
    assert "analysis_prediction_agreement" in html and "analysis_residual_enrichment" in html


def test_predict_with_superweights_fills_the_marks_of_stored_predictions(tmp_path, tiny_model_dir):
    """Predictions stored without --superweights get their super-weight marks from a later
    `predict --superweights` (the column used to stay NULL without a word); the other
    scores are kept as stored."""
    sw = tmp_path / "sw.json"
    code, _, err = run_cli(["superweights", "--model", str(tiny_model_dir), "--detect-only", "--export", str(sw)])
    assert code == 0, err
    out = tmp_path / "r.duckdb"
    args = [
        "predict",
        "--model",
        str(tiny_model_dir),
        "--probe",
        "python",
        "--max-new-tokens",
        "4",
        "--layers",
        "0-1",
        "--matrices",
        "q,down",
        "--tile",
        "16",
        "--top",
        "0",
        "--out",
        str(out),
    ]
    assert run_cli(args)[0] == 0
    first = _predictions(out)
    assert first["superweight"].isna().all()
    code, _, err = run_cli([*args, "--superweights", str(sw)])
    assert code == 0, err
    second = _predictions(out)
    assert second["superweight"].notna().all()
    scores = [c for c in first.columns if c != "superweight"]
    assert second[scores].equals(first[scores])


def test_a_merge_of_partly_predicted_shards_says_so_and_agreement_states_its_coverage(tmp_path, subject):
    from mutascope.analysis.run import analyze
    from mutascope.analysis.sentences import agreement as say

    shards = []
    for i in range(2):
        shards.append(tmp_path / f"s{i}.duckdb")
        screen_of(
            subject,
            text_probes(6),
            SPEC,
            shards[-1],
            shard=(i, 2),
            chunk_size=CHUNK,
            order="predicted" if i == 0 else "plan",
        ).run()
    merged = tmp_path / "merged.duckdb"
    code, _, err = run_cli(["merge", str(merged), *map(str, shards)])
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "predictions cover" in notes[0] and "mutascope predict" in notes[0], err
    table = analyze(merged, n_perm=19)["prediction_agreement"]
    whole = table[(table["score"] == "predicted_abs") & (table["matrix"] == "all")]
    assert (whole["mutants"] < whole["screened"]).all()
    assert all("screened mutants that have predictions" in s for s in say(table, None))
    # completing the predictions on the merged file removes the note's cause
    screen_of(subject, text_probes(6), SPEC, merged, chunk_size=CHUNK).predict()
    from mutascope.screen.merge import predictions_note

    assert predictions_note(merged) is None


def test_a_file_predicted_before_the_local_estimate_keeps_its_scores_and_gains_local(tmp_path, subject):
    """Schema 3 files have no `local` column: migration adds it (null), the stored scores stay as they
    are (here deliberately altered, so a silent recomputation would show), and predicting again fills
    only the missing `local` values."""
    out = tmp_path / "old.duckdb"
    fresh = screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK).predict()
    assert fresh["local"].notna().all()
    with duckdb.connect(str(out)) as con:
        con.execute("ALTER TABLE predictions DROP COLUMN local")
        con.execute("UPDATE predictions SET predicted = predicted + 1")
        con.execute("UPDATE runs SET schema_version = 3")
    with open_results(out) as r:  # read as it is: no local column, nothing written
        assert "local" not in r.predictions.columns
    again = screen_of(subject, text_probes(6), SPEC, out, chunk_size=CHUNK).predict()
    assert (again["predicted"] == fresh["predicted"] + 1).all()  # stored values kept, not replaced
    assert (again["local"] == fresh["local"]).all()
    with duckdb.connect(str(out), read_only=True) as con:
        assert con.execute("SELECT max(schema_version) FROM runs").fetchone()[0] == 4


def test_predict_notes_that_noise_kinds_get_no_predicted_effect(tmp_path, tiny_model_dir):
    out = tmp_path / "r.duckdb"
    args = [
        "predict",
        "--model",
        str(tiny_model_dir),
        "--probe",
        "python",
        "--max-new-tokens",
        "4",
        "--layers",
        "0",
        "--matrices",
        "q",
        "--tile",
        "32",
        "--kinds",
        "max,noise:0.5",
        "--out",
        str(out),
    ]
    code, stdout, err = run_cli(args)
    assert code == 0, err
    assert "note: noise:0.5 mutants get no predicted effect (`predicted` is NULL)" in " ".join(stdout.split())
    code, stdout, err = run_cli(args[:-4] + ["--kinds", "max", "--out", str(tmp_path / "s.duckdb")])
    assert code == 0 and "note:" not in stdout, err
