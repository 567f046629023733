"""`analyze --control` and `report --control` take a control only if it covers the screen's sites.

A control of another layer, of a subset of the tiles, or the screen itself used to join the
statistics silently (one control mutant beside eighteen). The rule now: every kind the control
adds was screened at every site of the screen (a control of more sites is cut to the screen's).
"""

from __future__ import annotations

import hashlib

import pytest

from helpers import run_cli as run

PLAN = ["--probe", "python", "--max-new-tokens", "3", "--matrices", "q", "--tile", "8"]


def screen(model, out, layers, rows, kinds):
    code, _, err = run(
        [
            "screen",
            "--model",
            str(model),
            *PLAN,
            "--layers",
            layers,
            "--rows",
            rows,
            "--kinds",
            kinds,
            "--out",
            str(out),
        ]
    )
    assert code == 0, err
    return out


@pytest.fixture(scope="module")
def files(tiny_model_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("controls")
    return {
        "main": screen(tiny_model_dir, d / "main.duckdb", "0", "0-1", "max,min"),
        "same": screen(tiny_model_dir, d / "same.duckdb", "0", "0-1", "sym:1,sym:-1"),
        "more": screen(tiny_model_dir, d / "more.duckdb", "0-1", "0-2", "sym:1,sym:-1"),
        "other": screen(tiny_model_dir, d / "other.duckdb", "1", "0", "sym:1,sym:-1"),
        "subset": screen(tiny_model_dir, d / "subset.duckdb", "0", "0", "sym:1,sym:-1"),
    }


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "control,message",
    [
        ("other", "does not cover the screen's sites"),
        ("subset", "does not cover the screen's sites"),
        ("main", "adds no kind"),
    ],
)
@pytest.mark.parametrize("command", ["analyze", "report"])
def test_a_control_that_does_not_cover_the_sites_is_refused(files, control, message, command, tmp_path):
    before = {k: digest(p) for k, p in files.items()}
    extra = ["--out", str(tmp_path / "r.html")] if command == "report" else []
    code, _, err = run([command, str(files["main"]), "--control", str(files[control]), *extra])
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and message in lines[0], err
    assert {k: digest(p) for k, p in files.items()} == before
    assert not (tmp_path / "r.html").exists()


def test_a_covering_control_joins_only_the_screens_sites(files):
    import duckdb

    for control in ("same", "more"):
        code, _, err = run(["analyze", str(files["main"]), "--control", str(files[control]), "--permutations", "9"])
        assert code == 0, err
        with duckdb.connect(str(files["main"]), read_only=True) as con:
            pairs = con.execute("SELECT pair, count(*) FROM analysis_bias GROUP BY pair ORDER BY pair").fetchall()
        assert [p for p, _ in pairs] == ["max/min", "sym:1/sym:-1"]
        assert pairs[0][1] == pairs[1][1]  # one test per matrix and probe for each pair: the same sites
