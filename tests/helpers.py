"""Shared test helpers: small screens on tiny models, table comparison."""

from __future__ import annotations

import os
from pathlib import Path

from mutascope.probes import Decoding, Probe

ROOT = Path(__file__).resolve().parents[1]  # the repository
# MMLU-format data, when the machine has it: $MUTASCOPE_MMLU_DIR, or the shared checkout beside the repository.
MMLU_DIR = Path(os.environ.get("MUTASCOPE_MMLU_DIR") or ROOT / ".." / "shared" / "data" / "mmlu")

GREEDY = Decoding("greedy")
SAMPLE = Decoding("sample", 0.8, 7)


def text_probes(n_tokens: int = 8) -> list[Probe]:
    return [
        Probe("hello", "Hello world, the", n_tokens, GREEDY),
        Probe("story", "Once upon a time", n_tokens, SAMPLE),
    ]


def screen_of(
    subject,
    probes,
    spec,
    out,
    *,
    backend=None,
    engine: str = "batched",
    chunk_size: int | None = None,
    engine_options: dict | None = None,
    shard: tuple[int, int] = (0, 1),
    outputs: str = "full",
    order: str = "plan",
    marked=None,
    placement=None,
    adaptive=None,
):
    """A :class:`~mutascope.Screen` as the tests spell it: flat arguments sorted into the
    configuration's concerns (:class:`~mutascope.screen.config.ScreenConfig`)."""
    from mutascope.backends import Placement
    from mutascope.screen import EngineChoice, Screen, ScreenConfig

    config = ScreenConfig(
        probes=probes,
        plan=spec,
        out=out,
        shard=shard,
        engine=EngineChoice(engine, chunk_size=chunk_size, **(engine_options or {})),
        outputs=outputs,
        order=order,
        marked=marked,
        placement=placement or Placement(),
        adaptive=adaptive,
    )
    return Screen(subject, config, backend=backend)


def tables(path) -> dict[str, list[tuple]]:
    """Every table of a results file as sorted rows, minus wall-clock columns."""
    from mutascope.store import open_results

    with open_results(path) as r:
        out = {
            name: r.con.execute(f"SELECT * FROM {name} ORDER BY ALL").fetchall()
            for name in ("probes", "mutations", "outcomes")
        }
        out["runs"] = r.con.execute("SELECT * EXCLUDE (created_at) FROM runs").fetchall()
    return out


def run_cli(args: list[str]) -> tuple[int, str, str]:
    """``mutascope ARGS`` in this process: exit code, stdout and stderr."""
    import io
    import sys
    from contextlib import redirect_stderr, redirect_stdout

    from mutascope import cli

    out, err = io.StringIO(), io.StringIO()  # the CLI's rich consoles write to whatever sys.stdout/stderr are
    saved = sys.argv
    sys.argv = ["mutascope", *args]
    code = 0
    try:
        with redirect_stdout(out), redirect_stderr(err):
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = saved
    return code, out.getvalue(), err.getvalue()
