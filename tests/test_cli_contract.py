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
ANALYSIS_CASES: list = [
    case("analyze-alpha-above-1", "analyze {results} --alpha 2", "--alpha must be between 0 and 1"),
    case("analyze-alpha-zero", "analyze {results} --alpha 0", "--alpha must be between 0 and 1"),
    case("analyze-no-permutations", "analyze {results} --permutations 0", "--permutations must be at least 1"),
    case("analyze-negative-permutations", "analyze {results} --permutations -1", "--permutations must be at least 1"),
    case("analyze-unknown-effect", "analyze {results} --effect margin", "not an effect-size column"),
    case("analyze-superweights-missing", "analyze {results} --superweights {tmp}/sw.json", "not found"),
    case("analyze-superweights-not-json", "analyze {results} --superweights {text}", "neither DuckDB nor JSON"),
    case("analyze-superweights-a-results-file", "analyze {results} --superweights {results}",
         "not a superweights file"),
    case("show-negative-width", "show {results} --site 0.q.0.0 --width -5", "--width must be at least"),
    case("probe-unknown-suffix", SCREEN + " --probe drosophila@raw", "unknown suffix @raw"),
    case("probe-chat-suffix-on-a-non-builtin", SCREEN + " --probe bubbles@chat", "applies to the built-in probes"),
]

# -- superweights, activation, specialization (issue 17) -------------------------------
METHOD_CASES: list = []


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
