"""The exception hierarchy: every raise names its cause, and representative errors have the right one."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

import mutascope as ms
from helpers import run_cli, text_probes
from mutascope.errors import (
    FileInUseError,
    InputError,
    Interrupted,
    ModelLoadError,
    MutascopeError,
    ResultsFileError,
    WorkerError,
)
from mutascope.testing import tiny_model

SRC = Path(__file__).resolve().parents[1] / "src" / "mutascope"


def test_no_raise_of_the_bare_base_class():
    """A new error names its cause (errors.py): ``raise MutascopeError(...)`` is refused everywhere in src."""
    bare = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            exc = node.exc if isinstance(node, ast.Raise) else None
            if isinstance(exc, ast.Call) and isinstance(exc.func, ast.Name) and exc.func.id == "MutascopeError":
                bare.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert bare == []


def test_the_hierarchy_and_its_exports():
    for cls in (InputError, ResultsFileError, ModelLoadError, WorkerError, Interrupted):
        assert issubclass(cls, MutascopeError)
    assert issubclass(FileInUseError, ResultsFileError)
    assert ms.InputError is InputError and ms.ResultsFileError is ResultsFileError
    assert ms.FileInUseError is FileInUseError and ms.ModelLoadError is ModelLoadError


@pytest.mark.parametrize(
    "call",
    [
        lambda: ms.PlanSpec.parse(layers="3-1"),
        lambda: ms.PlanSpec.parse(matrices="nope"),
        lambda: ms.Kind.parse("wiggle"),
        lambda: ms.Decoding.parse("sample:hot"),
    ],
)
def test_a_bad_option_is_an_input_error(call):
    with pytest.raises(InputError):
        call()


def test_a_malformed_probe_file_is_an_input_error(tmp_path):
    bad = tmp_path / "p.jsonl"
    bad.write_text('{"id": "a", "text": "x"}\n{"id": \n')
    with pytest.raises(InputError, match="invalid JSON"):
        ms.load_probe_file(bad)


def test_a_missing_model_path_is_a_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="model path not found"):
        ms.load_model(tmp_path / "absent")


def test_a_file_of_another_screen_is_a_results_file_error(tmp_path):
    subject = tiny_model("llama")
    path = tmp_path / "r.duckdb"
    ms.Screen(
        subject, ms.ScreenConfig(probes=text_probes(4), plan=ms.PlanSpec.parse(layers="0", matrices="q"), out=path)
    ).run()
    with pytest.raises(ResultsFileError, match="different screen"):
        ms.Screen(
            subject, ms.ScreenConfig(probes=text_probes(4), plan=ms.PlanSpec.parse(layers="1", matrices="q"), out=path)
        ).run()


def test_a_duckdb_file_of_something_else_is_a_results_file_error(tmp_path):
    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(ResultsFileError, match="holds no mutascope screen"):
        ms.open_results(path)


def test_a_file_held_by_another_process_is_a_file_in_use_error(tmp_path):
    path = tmp_path / "busy.duckdb"
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
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(FileInUseError, match="is in use by"):
            ms.open_results(path)
    finally:
        holder.kill()
        holder.wait()


def test_the_command_line_still_prints_one_line_and_exits_2(tmp_path):
    code, _, err = run_cli(["plan", "--layers", "3-1"])
    assert code == 2 and err.count("\n") == 1 and err.startswith("mutascope: error:")
