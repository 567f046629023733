"""The command-line contract, for every command: a bad input is one line on stderr and
exit code 2, and no file that existed before the command is changed (sha256 checked).

One parametrized test runs every case. A case names the command line, the
substring its error must contain, and which files exist beforehand. Paths
in ``args`` may use ``{model}`` (a tiny model directory), ``{results}`` (a
finished screen's results file, copied fresh for each case), ``{tmp}`` (the
case's directory) and ``{text}`` (an existing plain text file).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass, field

import pytest

from mutascope import cli
from mutascope.testing import tiny_model


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    message: str
    files: tuple[str, ...] = field(default=())  # extra files to create: "name" (text) or "name/" (a directory)


def case(id, args, message, files=()):
    return pytest.param(Case(id, tuple(args.split()), message, tuple(files)), id=id)


SCREEN = "screen --model {model} --probe python --max-new-tokens 3 --layers 0 --matrices q --rows 0 --out {tmp}/new.duckdb"

# -- screen, plan, models, export, report, show, analyze -----------------------------
CORE_CASES = [
    case("shard-not-a-number", SCREEN + " --shard abc", "bad --shard"),
    case("shard-without-count", SCREEN + " --shard 3", "bad --shard"),
    case("shard-index-too-big", SCREEN + " --shard 4/4", "bad --shard"),
    case("report-over-its-results", "report {results} --out {results}", "input of this command"),
    case("report-over-another-results-file", "report {results} --out {tmp}/other.duckdb", "duckdb file",
         files=("other.duckdb@results",)),
    case("report-into-a-directory", "report {results} --out {tmp}/adir", "is a directory", files=("adir/",)),
    case("export-into-a-file", "export {results} --out {text}", "not a directory"),
    case("analyze-csv-into-a-file", "analyze {results} --csv {text}", "not a directory"),
]

# -- phenotype / analysis / report options (issue 13) ---------------------------------
ANALYSIS_CASES: list = []

# -- superweights, activation, specialization (issue 17) -------------------------------
SW = "superweights --model {model}"
ACT = "activation --model {model}"
METHOD_CASES: list = [
    case("sw-export-over-its-out-file", SW + " --out {tmp}/v.duckdb --export {tmp}/v.duckdb", "is the --out file",
         files=("v.duckdb@results",)),
    case("sw-export-over-a-results-file", SW + " --export {results}", "duckdb file"),
    case("sw-export-into-a-directory", SW + " --export {tmp}/adir", "is a directory", files=("adir/",)),
    case("sw-out-over-a-text-file", SW + " --out {text}", "not a duckdb file"),
    case("sw-out-is-a-directory", SW + " --out {tmp}/adir", "is a directory", files=("adir/",)),
    case("sw-block-size-zero", SW + " --quantize --block-size 0", "at least 1"),
    case("sw-block-size-negative", SW + " --quantize --block-size=-64", "at least 1"),
    case("sw-block-size-word", SW + " --quantize --block-size abc", "bad --block-size"),
    case("sw-block-size-empty", SW + " --quantize --block-size=", "bad --block-size"),
    case("sw-block-size-empty-item", SW + " --quantize --block-size 64,,128", "bad --block-size"),
    case("sw-block-size-per-column", SW + " --quantize --block-size 64,per-column", "bad --block-size"),
    case("sw-bits-too-many", SW + " --quantize --bits 9", "--bits"),
    case("sw-bits-word", SW + " --quantize --bits four", "--bits"),
    case("sw-activation-bits-one", SW + " --quantize-activations --activation-bits 1", "--activation-bits"),
    case("sw-figure-without-quantize", SW + " --figure {tmp}/f.png", "add --quantize"),
    case("sw-figure-over-a-results-file", SW + " --quantize --figure {results}", "duckdb file"),
    case("sw-figure-is-the-export", SW + " --quantize --figure {tmp}/f.png --export {tmp}/f.png", "same file"),
    case("act-figures-is-a-results-file", ACT + " --figures {results}", "not a directory"),
    case("act-figures-is-a-text-file", ACT + " --figures {text}", "not a directory"),
    case("act-figures-is-the-out-file", ACT + " --figures {tmp}/o.duckdb --out {tmp}/o.duckdb", "is the --out file"),
    case("act-figure-over-a-duckdb-file", ACT + " --figures {tmp}/figs", "duckdb file",
         files=("figs/", "figs/similarity.png@results")),
    case("act-figure-is-a-directory", ACT + " --figures {tmp}/figs", "is a directory",
         files=("figs/", "figs/activated_fraction.png/")),
    case("act-out-over-a-text-file", ACT + " --out {text}", "not a duckdb file"),
    case("act-out-is-a-directory", ACT + " --out {tmp}/adir", "is a directory", files=("adir/",)),
    case("act-pairs-without-score-column", ACT + " --pairs {tmp}/bad.tsv", "no score column", files=("bad.tsv",)),
    case("act-pairs-missing", ACT + " --semantic-pairs --pairs {tmp}/none.tsv", "not found"),
    case("act-permutations-zero", ACT + " --semantic-pairs --permutations 0", "--permutations"),
    case("act-max-pairs-too-few", ACT + " --semantic-pairs --max-pairs 2", "--max-pairs"),
    case("act-heldout-zero", ACT + " --prune-calibration --heldout 0", "--heldout"),
    case("act-prune-calibration-without-heldout", ACT + " --prune-calibration -d a={text} -d b={text}",
         "no held-out text"),
    case("act-prune-calibration-one-domain", ACT + " --prune-calibration -d a={text}", "two domains"),
    case("act-prune-calibration-no-sparsity", ACT + " --prune-calibration --prune-sparsity 0", "--prune-sparsity"),
    case("spec-figure-over-a-results-file", "specialization --model tiny --figure {results}", "duckdb file"),
    case("spec-figure-is-a-directory", "specialization --model tiny --figure {tmp}/adir", "is a directory",
         files=("adir/",)),
    case("spec-out-over-a-text-file", "specialization --model tiny --out {text}", "not a duckdb file"),
]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny-llama")
    subject = tiny_model("llama")
    subject.model.save_pretrained(path)
    subject.tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def results_file(tmp_path_factory, model_dir):
    path = tmp_path_factory.mktemp("screen") / "r.duckdb"
    code, _, err = run(["screen", "--model", str(model_dir), "--probe", "python", "--probe", "newton",
                        "--max-new-tokens", "4", "--layers", "0-1", "--matrices", "q,down", "--out", str(path)])
    assert code == 0, err
    return path


def run(args: list[str]) -> tuple[int, str, str]:
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from mutascope.commands import common

    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["mutascope", *args]
    code = 0
    old_out, old_err = common.out.file, common.err.file
    common.out.file, common.err.file = out, err
    try:
        with redirect_stdout(out), redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
        common.out.file, common.err.file = old_out, old_err
    return code, out.getvalue(), err.getvalue()


def digests(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("c", CORE_CASES + ANALYSIS_CASES + METHOD_CASES)
def test_bad_input_is_one_line_exit_2_and_no_file_changes(c: Case, tmp_path, model_dir, results_file):
    results = tmp_path / "results.duckdb"
    shutil.copy(results_file, results)
    text = tmp_path / "notes.txt"
    text.write_text("my notes\n")
    for spec in c.files:
        name, _, source = spec.partition("@")
        target = tmp_path / name
        if name.endswith("/"):
            target.mkdir(parents=True)
        elif source == "results":
            shutil.copy(results_file, target)
        else:
            target.write_text("existing file\n")
    fields = {"model": str(model_dir), "results": str(results), "tmp": str(tmp_path), "text": str(text)}
    args = [a.format(**fields) for a in c.args]
    before = digests(tmp_path)
    code, _, err = run(args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1, err
    assert lines[0].startswith("mutascope: error:") and c.message.lower() in lines[0].lower(), lines[0]
    after = digests(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing that existed changed
    assert set(after) == set(before), f"files appeared: {sorted(set(after) - set(before))}"
