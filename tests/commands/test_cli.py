"""The command line: bad input is one line on stderr and exit code 2."""

import hashlib
import sys

import pytest

from mutascope import cli
from mutascope.commands import COMMANDS


def run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["mutascope", *map(str, args)])
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def screen_args(tiny_model_dir, out, *extra):
    return [
        "screen",
        "--model",
        tiny_model_dir,
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
        out,
        *extra,
    ]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_screen_plan_models_export(monkeypatch, capsys, tiny_model_dir, tmp_path):
    out = tmp_path / "r.duckdb"
    code, stdout, _ = run(monkeypatch, capsys, *screen_args(tiny_model_dir, out))
    assert code == 0 and "results in" in stdout and out.exists()
    code, stdout, _ = run(monkeypatch, capsys, *screen_args(tiny_model_dir, out))
    assert code == 0 and "0 this run" in stdout
    code, stdout, _ = run(
        monkeypatch,
        capsys,
        "plan",
        "--model",
        tiny_model_dir,
        "--probe",
        "python",
        "--probe",
        "newton",
        "--layers",
        "0-1",
        "--matrices",
        "q,k",
        "--kinds",
        "max,min,zero",
        "--max-new-tokens",
        "4",
    )
    assert code == 0 and "mutants x 2 probes" in stdout and "estimated time" in stdout
    code, stdout, _ = run(monkeypatch, capsys, "models", "--model", tiny_model_dir)
    assert code == 0 and "down" in stdout and "tiles" in stdout
    code, stdout, _ = run(monkeypatch, capsys, "export", out, "--out", tmp_path / "pq")
    assert code == 0 and (tmp_path / "pq" / "outcomes.parquet").exists()


@pytest.mark.parametrize(
    "change, message",
    [
        (["--model", "/nonexistent/model"], "not found"),
        (["--matrices", "q,attn"], "unknown matrix"),
        (["--layers", "40"], "out of range"),
        (["--tile", "4096"], "larger than matrix"),
        (["--probe", "BAD_PROBE_FILE"], "probe file"),
        (["--rows", "99"], "plan is empty"),
        (["--probe", "nosuchprobe"], "unknown built-in probe"),
        (["--batch-size", "0"], "batch size must be at least 1"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_keeps_the_file(
    monkeypatch, capsys, tiny_model_dir, tmp_path, change, message
):
    out = tmp_path / "r.duckdb"
    assert run(monkeypatch, capsys, *screen_args(tiny_model_dir, out))[0] == 0
    before = digest(out)
    bad_file = tmp_path / "probes.yaml"
    bad_file.write_text("- id: x\n  text: [unclosed\n")
    fresh = tmp_path / "new.duckdb"
    args = screen_args(tiny_model_dir, fresh)
    opt = change[0]
    value = str(bad_file) if change[1] == "BAD_PROBE_FILE" else change[1]
    if opt in args:
        args[args.index(opt) + 1] = value
    else:
        args += [opt, value]
    code, _, stderr = run(monkeypatch, capsys, *args)
    assert code == 2
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("mutascope: error:") and message in lines[0].lower()
    assert digest(out) == before and not fresh.exists()


def test_batched_engine_options(monkeypatch, capsys, tiny_model_dir, tmp_path):
    from mutascope.store import open_results

    plain, tuned = tmp_path / "plain.duckdb", tmp_path / "tuned.duckdb"
    assert run(monkeypatch, capsys, *screen_args(tiny_model_dir, plain))[0] == 0
    assert run(monkeypatch, capsys, *screen_args(tiny_model_dir, tuned, "--batch-size", "3", "--float32-head"))[0] == 0
    query = "SELECT mutation_id, output_tokens, divergence FROM outcomes ORDER BY mutation_id"
    with open_results(plain) as a, open_results(tuned) as b:
        first, second = a.query(query), b.query(query)
    assert len(first) > 0 and first.astype(str).equals(second.astype(str))
    with open_results(tuned) as b:
        assert set(b.query("SELECT engine FROM progress")["engine"]) == {"batched (float32 head)"}
    code, _, stderr = run(
        monkeypatch,
        capsys,
        *screen_args(tiny_model_dir, tmp_path / "x.duckdb", "--engine", "reference", "--batch-size", "4"),
    )
    assert code == 2 and "only apply to the batched engine" in stderr and len(stderr.strip().splitlines()) == 1


def registered() -> list[str]:
    """The commands the CLI registers (typer's registry), in ``--help`` order."""
    return [c.name or c.callback.__name__ for c in cli.app.registered_commands]


def test_the_cli_registers_every_command_module():
    assert registered() == list(COMMANDS) and len(COMMANDS) == len(set(COMMANDS))


@pytest.mark.parametrize("command", registered())
def test_every_command_has_help(monkeypatch, capsys, command):
    code, stdout, _ = run(monkeypatch, capsys, command, "--help")
    assert code == 0 and "Usage" in stdout


def test_phenotype_show_analyze_report_on_a_screen(monkeypatch, capsys, tiny_model_dir, tmp_path):
    out = tmp_path / "r.duckdb"
    args = [
        "screen",
        "--model",
        tiny_model_dir,
        "--probe",
        "python",
        "--probe",
        "newton",
        "--max-new-tokens",
        "6",
        "--layers",
        "0-1",
        "--matrices",
        "q,down",
        "--kinds",
        "max,min",
        "--out",
        out,
    ]
    assert run(monkeypatch, capsys, *args)[0] == 0
    code, stdout, _ = run(monkeypatch, capsys, "phenotype", out)
    assert code == 0 and "phenotypes stored" in stdout
    code, stdout, _ = run(monkeypatch, capsys, "show", out, "--site", "0.q.0.0", "--kind", "min")
    assert code == 0 and "python" in stdout
    code, _, stderr = run(monkeypatch, capsys, "show", out, "--site", "0.attn.0.0")
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    code, stdout, _ = run(monkeypatch, capsys, "analyze", out, "--permutations", "49", "--csv", tmp_path / "csv")
    assert code == 0 and "analysis_writers" in stdout and (tmp_path / "csv" / "bias.csv").exists()
    code, stdout, _ = run(monkeypatch, capsys, "report", out)
    html = out.with_suffix(".html")
    assert code == 0 and str(html) in stdout and html.stat().st_size > 10_000
    code, stdout, _ = run(monkeypatch, capsys, "export", out, "--out", tmp_path / "pq")
    assert (
        code == 0
        and (tmp_path / "pq" / "phenotypes.parquet").exists()
        and (tmp_path / "pq" / "analysis_bias.parquet").exists()
    )


def test_a_status_line_reaches_a_log_while_its_step_runs(capsys):
    """With stderr a file, a step that takes long shows its line with the elapsed time,
    although no new status arrives (activation, superweights, analyze report that way)."""
    import time

    from mutascope.commands.common import spinner

    with spinner() as status:
        assert status.log is not None  # pytest's captured stderr is not a terminal
        status.log.every = 0.01
        status("measuring: ablation ...")
        deadline = time.monotonic() + 60
        while "measuring: ablation ... (elapsed" not in capsys.readouterr().err:
            assert time.monotonic() < deadline, "no line reached the log"
            time.sleep(0.01)
