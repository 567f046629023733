"""Pieces every CLI command shares: consoles, options, loading a model, progress, interrupts."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.progress import Progress

from ..errors import InputError, Interrupted
from ..interrupts import SIGNALS, raise_if_interrupted, stage  # noqa: F401 (SIGNALS: for callers)

if TYPE_CHECKING:  # the library is imported inside each command, so --help stays fast
    pass

out = Console()
err = Console(stderr=True)

ModelOpt = typer.Option(
    None, "--model", "-m", help="Hub id, local directory or .gguf file (default: bundled SmolLM2-135M-Instruct)."
)
DtypeOpt = typer.Option("float32", help="float32, bfloat16 or float16.")
DeviceOpt = typer.Option("cpu", help="cpu or cuda.")
ThreadsOpt = typer.Option(
    None, "--threads", help="CPU threads for torch in this process (default: torch's choice, usually one per core)."
)
WorkersOpt = typer.Option(
    None,
    "--workers",
    help="Run chunks on N Ray workers, each with its own model replica (a local Ray instance unless --ray-address).",
)
RayAddressOpt = typer.Option(
    None, "--ray-address", help="Join an existing Ray cluster (auto, or HOST:PORT of `ray start --head`)."
)
ThreadsPerWorkerOpt = typer.Option(1, "--threads-per-worker", help="torch threads (and Ray CPUs) per CPU worker.")
ProbeOpt = typer.Option(
    ...,
    "--probe",
    "-p",
    help="Built-in id (drosophila python java newton p53; ID@chat applies the chat template; "
    "`mutascope probes` lists them), probe file, mmlu21:SUBJECT or mmlu:SUBJECT[:N]. Repeat for several.",
)
LayersOpt = typer.Option("all", help="Layers, e.g. 0-3,7 (inclusive ranges) or all.")
MatricesOpt = typer.Option("all", help="Matrices among q,k,v,o,gate,up,down, or all.")
RowsOpt = typer.Option("all", help="Tile rows, e.g. 0-3 (clipped to each matrix), or all.")
ColsOpt = typer.Option("all", help="Tile columns, e.g. 0-3 (clipped to each matrix), or all.")
KindsOpt = typer.Option(
    "max,min",
    help="Mutation kinds: max, min, zero, value:X, scale:X, and the controls sym:X (X times the matrix's "
    "largest |value|; sym alone: the size-matched pair sym:1,sym:-1) and noise:X (random tiles of matched norm).",
)
TileOpt = typer.Option("64", help="Tile size: 64 or HxW.")
TokensOpt = typer.Option(None, "--max-new-tokens", help="Override the new-token count of free-text probes.")
DecodingOpt = typer.Option(None, help="Override free-text probes' decoding: greedy, sample:T or sample:T:SEED.")
MmluOpt = typer.Option(
    None, "--mmlu-dir", help="MMLU-format directory for mmlu21:/mmlu: probes (or $MUTASCOPE_MMLU_DIR)."
)


def check_threads(threads: int | None) -> None:
    """Refuse a ``--threads`` below 1 in one line (without importing torch)."""
    if threads is not None and threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")


def checked_spec(
    model: str | None,
    layers: str,
    matrices: str,
    rows: str,
    cols: str,
    kinds: str,
    tile: str,
    *,
    probe: list[str] | None = None,
    max_new_tokens: int | None = None,
    decoding: str | None = None,
    mmlu_dir: Path | None = None,
    threads: int | None = None,
    shard: str | None = None,
    replay: bool = False,
) -> tuple[Any, tuple[int, int] | None]:
    """The plan selection a command line gives, after everything that can be refused from the
    arguments and the model's config is refused: before torch is imported and before any model
    loads (issue 27, item 7: these took 11-22 s on a loaded machine). Checked here: the selection
    (layers, matrices, rows, columns, kinds, tile), ``--shard``, ``--threads``, the probes with
    ``--max-new-tokens`` and ``--decoding``, ``--model`` (a missing path) and the layers against
    the count its config states (not for a ``--replay``, which runs no model: its source's plan is
    compared instead). Returns ``(spec, shard)``; the shard is None when not given."""
    from ..plan import PlanSpec, check_spec_source, parse_shard
    from ..probes import Decoding, count_probes

    check_threads(threads)
    spec = PlanSpec.parse(layers, matrices, rows, cols, kinds, tile)
    shard_pair = parse_shard(shard) if shard is not None else None
    if probe is not None:
        count_probes(
            probe,
            mmlu_dir=mmlu_dir,
            max_new_tokens=max_new_tokens,
            decoding=Decoding.parse(decoding) if decoding else None,
        )
    if not replay:
        check_spec_source(spec, model)
    stage("arguments")
    return spec, shard_pair


# The screen options of a command line, by parameter name, with the value a command that
# does not declare one stands for (`predict` has no --engine, `plan` no --out ...).
SCREEN_DEFAULTS: dict[str, Any] = {
    "out_file": None,
    "shard": "0/1",
    "engine": "batched",
    "chunk_size": None,
    "batch_size": None,
    "float32_head": False,
    "outputs": "full",
    "order": "plan",
    "workers": None,
    "ray_address": None,
    "threads_per_worker": 1,
    "budget": None,
    "seed": None,
    "audit": None,
    "replay": None,
}


def screen_config(cli: dict[str, Any]) -> Any:
    """The screen a command line describes (a :class:`~mutascope.screen.config.ScreenConfig`),
    from the command's parameters by name (``locals()`` at its start): the plan selection,
    probes and model options every screening command declares, and whichever of
    :data:`SCREEN_DEFAULTS` it declares. Everything that can be refused without torch is refused
    first (:func:`checked_spec`); the configuration's own checks follow when it is built."""
    given = {**SCREEN_DEFAULTS, **{k: v for k, v in cli.items() if k in SCREEN_DEFAULTS and v is not None}}
    spec, shard = checked_spec(
        cli["model"],
        cli["layers"],
        cli["matrices"],
        cli["rows"],
        cli["cols"],
        cli["kinds"],
        cli["tile"],
        probe=cli["probe"],
        max_new_tokens=cli["max_new_tokens"],
        decoding=cli["decoding"],
        mmlu_dir=cli["mmlu_dir"],
        threads=cli["threads"],
        shard=given["shard"],
        replay=given["replay"] is not None,
    )
    from ..backends import Placement
    from ..probes import Decoding
    from ..screen import Adaptive, EngineChoice, ModelSource, ProbeSet, ScreenConfig

    decoding = cli["decoding"]
    adaptive = None
    if given["order"] == "adaptive" or any(given[k] is not None for k in ("budget", "seed", "audit")):
        adaptive = Adaptive(budget=given["budget"], seed=given["seed"] or 0, audit=given["audit"])
    replay = given["replay"]
    return ScreenConfig(
        probes=ProbeSet(
            tuple(cli["probe"]),
            mmlu_dir=cli["mmlu_dir"],
            max_new_tokens=cli["max_new_tokens"],
            decoding=Decoding.parse(decoding) if decoding else None,
        ),
        plan=spec,
        out=Path(given["out_file"] or os.devnull),
        model=ModelSource(name=cli["model"], dtype=cli["dtype"], device=cli["device"]),
        shard=shard or (0, 1),
        engine=EngineChoice(
            given["engine"],
            batch_size=given["batch_size"],
            fast_head=False if given["float32_head"] else None,
            chunk_size=given["chunk_size"],
        ),
        outputs=given["outputs"],
        placement=Placement(
            workers=given["workers"],
            ray_address=given["ray_address"],
            threads_per_worker=given["threads_per_worker"],
            replay=None if replay is None else str(replay),
        ),
        order=given["order"],
        adaptive=adaptive,
    )


def set_threads(threads: int | None) -> None:
    """Apply ``--threads`` (before any model work), or say why not in one line."""
    check_threads(threads)
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)


def load_subject(model: str | None, dtype: str, device: str, status: Callable[[str], None] | None = None):
    """Load a model with a spinner on stderr, or a line to ``status`` when a spinner already
    runs (transformers' own warnings silenced: a normal run shows none)."""
    import transformers

    from ..model.subject import load_model

    transformers.logging.set_verbosity_error()
    stage("loading")
    raise_if_interrupted()
    what = f"loading {model or 'the default model'} ..."
    if status is not None:
        status(what)
        subject = load_model(model, dtype=dtype, device=device)
    else:
        with err.status(what):
            subject = load_model(model, dtype=dtype, device=device)
    stage("loaded")
    raise_if_interrupted()
    return subject


class _LogProgress:
    """What stands in for the bar when stderr is a file (a job's log): a plain line
    with the count, elapsed time and ETA, at most every ``every`` seconds."""

    def __init__(self, label: str, every: float = 30.0):
        self.label, self.every = label, every
        self.start = time.monotonic()
        self.last = self.start  # the first line after ``every`` seconds: a quick command prints none
        self.first_done: tuple[float, int] | None = None
        self.tasks: dict[int, dict] = {}

    def add_task(self, description: str, total: float | None = None) -> int:
        self.tasks[len(self.tasks)] = {"total": total, "completed": 0}
        return len(self.tasks) - 1

    def update(self, task: int, completed: float | None = None, total: float | None = None, **_) -> None:
        state = self.tasks[task]
        if total is not None:
            state["total"] = total
        if completed is not None:
            state["completed"] = completed
        now = time.monotonic()
        done, total = state["completed"], state["total"]
        if self.first_done is None:
            self.first_done = (now, done)  # a resumed job starts part way: rate from here on
        if now - self.last < self.every and not (total and done >= total):
            return
        self.last = now
        line = f"{self.label}: {int(done)}" + (f"/{int(total)} ({100 * done / total:.1f} %)" if total else "")
        line += f", elapsed {_clock(now - self.start)}"
        t0, d0 = self.first_done
        if total and done > d0 and now > t0:
            line += f", eta {_clock((total - done) * (now - t0) / (done - d0))}"
        err.print(line, markup=False, highlight=False)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@contextlib.contextmanager
def progress_bar(*columns, label: str = "progress", **kwargs) -> Iterator:
    """A rich progress bar on stderr that is erased if the command fails, so the
    error that follows stays the one line on stderr. When stderr is not a
    terminal (a background job's log), plain progress lines with an ETA instead."""
    if not err.is_terminal:
        yield _LogProgress(label)
        return
    bar = Progress(*columns, console=err, **kwargs)
    with bar:
        try:
            yield bar
        except BaseException:
            bar.live.transient = True  # stop() then clears the bar instead of leaving its last frame
            raise


class _Spinner:
    """A rich spinner on stderr started by the first line it is given, then updated. When
    stderr is not a terminal (a job's log), :class:`_LogStatus` instead."""

    def __init__(self):
        self.live = None
        self.log = None if err.is_terminal else _LogStatus()

    def __call__(self, text: str) -> None:
        if self.log is not None:
            self.log.update(text)
        elif self.live is None:
            self.live = err.status(text)
            self.live.start()
        else:
            self.live.update(text)

    def stop(self) -> None:
        if self.log is not None:
            self.log.stop()
        if self.live is not None:
            self.live.stop()
            self.live = None


class _LogStatus:
    """What stands in for the spinner in a log: every ``every`` seconds while a step runs,
    its latest line with the elapsed time, so that a log shows a long command's steps even
    when one of them takes minutes (a quick command prints none)."""

    def __init__(self, every: float = 60.0):
        import threading  # not at the top: `mutascope --help` imports only what it needs

        self.threading = threading
        self.every, self.start = every, time.monotonic()
        self.line: str | None = None
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def update(self, text: str) -> None:
        self.line = text
        if self.thread is None:
            self.thread = self.threading.Thread(target=self._beat, name="mutascope-status", daemon=True)
            self.thread.start()

    def _beat(self) -> None:
        while not self.stopped.wait(self.every):
            if self.line is not None:
                err.print(
                    f"{self.line} (elapsed {_clock(time.monotonic() - self.start)})",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )

    def stop(self) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join()
        self.thread, self.stopped = None, self.threading.Event()  # a later line starts it again


@contextlib.contextmanager
def spinner() -> Iterator[_Spinner]:
    """A ``status(text)`` callback for the library: a spinner on stderr while the block runs
    (none until the first line), erased when it ends."""
    shown = _Spinner()
    try:
        yield shown
    finally:
        shown.stop()


class _Working:
    """The library's ``status`` and ``progress`` callbacks: a spinner until the first progress,
    then a progress bar (:func:`progress_bar`) with ``columns``."""

    def __init__(self, stack: contextlib.ExitStack, label: str, columns: tuple):
        self.stack, self.label, self.columns = stack, label, columns
        self.spinner = stack.enter_context(spinner())
        self.bar: Any = None  # a rich Progress (or its log stand-in) once the first count comes
        self.task: Any = None
        self.first: float | None = None  # the count first reported (a resumed run starts part way)

    def status(self, text: str) -> None:
        raise_if_interrupted()  # an interrupt a library swallowed takes effect at its next report
        if self.bar is None:
            self.spinner(text)

    def progress(self, done: float, total: float | None) -> None:
        raise_if_interrupted()
        if self.first is None:
            self.first = done
        elif done > self.first:  # the first chunk done in this run: tests stop a screen mid-way here
            stage("chunk")
            self.first = float("inf")
        if self.bar is None:
            stage("progress")
            self.spinner.stop()
            self.bar = self.stack.enter_context(progress_bar(*self.columns, label=self.label))
            self.task = self.bar.add_task(self.label, total=total)
        self.bar.update(self.task, completed=done, total=total)


@contextlib.contextmanager
def working(label: str, *columns) -> Iterator[_Working]:
    """Spinner lines, then a progress bar: what a long library call reports, rendered on stderr."""
    with contextlib.ExitStack() as stack:
        yield _Working(stack, label, columns)


@contextlib.contextmanager
def resumable(path: Path) -> Iterator[None]:
    """Ctrl-C and SIGTERM (``cli.main`` turns it into Ctrl-C) stop the command with one
    line saying the file is resumable, and exit code 130; also while the model loads."""
    try:
        yield
    except KeyboardInterrupt:
        err.print(
            f"interrupted: finished chunks are saved in {path}; rerun the same command to resume",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        raise Interrupted() from None
