"""Pieces every CLI command shares: consoles, options, loading a model, progress, interrupts."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import Progress

from ..errors import Interrupted

out = Console()
err = Console(stderr=True)

ModelOpt = typer.Option(None, "--model", "-m", help="Hub id, local directory or .gguf file (default: bundled SmolLM2-135M-Instruct).")
DtypeOpt = typer.Option("float32", help="float32, bfloat16 or float16.")
DeviceOpt = typer.Option("cpu", help="cpu or cuda.")
ThreadsOpt = typer.Option(None, "--threads", help="CPU threads for torch in this process (default: torch's choice, usually one per core).")
WorkersOpt = typer.Option(None, "--workers", help="Run chunks on N Ray workers, each with its own model replica (a local Ray instance unless --ray-address).")
RayAddressOpt = typer.Option(None, "--ray-address", help="Join an existing Ray cluster (auto, or HOST:PORT of `ray start --head`).")
ThreadsPerWorkerOpt = typer.Option(1, "--threads-per-worker", help="torch threads (and Ray CPUs) per CPU worker.")


def set_threads(threads: Optional[int]) -> None:
    """Apply ``--threads`` (before any model work), or say why not in one line."""
    from ..errors import MutascopeError

    if threads is None:
        return
    if threads < 1:
        raise MutascopeError(f"--threads must be at least 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def load_subject(model: Optional[str], dtype: str, device: str):
    """Load a model with a spinner on stderr (transformers' own warnings silenced: a
    normal run shows none)."""
    import transformers

    from ..subject import load_model

    transformers.logging.set_verbosity_error()

    with err.status(f"loading {model or 'the default model'} ..."):
        return load_model(model, dtype=dtype, device=device)


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


def check_workers(workers: Optional[int], threads_per_worker: int) -> None:
    """One-line errors for bad ``--workers``/``--threads-per-worker``, before any slow work."""
    from ..errors import MutascopeError

    if workers is not None and workers < 1:
        raise MutascopeError(f"--workers must be at least 1, got {workers}")
    if threads_per_worker < 1:
        raise MutascopeError(f"--threads-per-worker must be at least 1, got {threads_per_worker}")


def ray_backend(model: Optional[str], subject, workers, address, threads_per_worker, options, engine="batched"):
    """The Ray backend for ``--workers``/``--ray-address`` (None when neither is given).

    Workers load the model from the same source as this process: a local path
    is made absolute first, since Ray workers do not share the driver's
    working directory.
    """
    import os

    from ..errors import MutascopeError

    if workers is None and address is None:
        return None
    if engine != "batched":
        raise MutascopeError("--workers and --ray-address run the batched engine; drop --engine reference")
    from ..backends.ray import RayBackend

    source = str(Path(model).expanduser().resolve()) if model and os.path.exists(os.path.expanduser(model)) else model
    with err.status(f"starting {workers or 'the cluster'}'s Ray workers (each loads the model) ..."):
        return RayBackend(
            source, subject.content_hash(), dtype=str(subject.dtype).replace("torch.", ""), device=str(subject.device),
            workers=workers, address=address, threads_per_worker=threads_per_worker, engine_options=options,
        )


@contextlib.contextmanager
def resumable(path: Path) -> Iterator[None]:
    """Ctrl-C and SIGTERM (``cli.main`` turns it into Ctrl-C) stop the command with one
    line saying the file is resumable, and exit code 130; also while the model loads."""
    try:
        yield
    except KeyboardInterrupt:
        err.print(f"interrupted: finished chunks are saved in {path}; rerun the same command to resume",
                  markup=False, highlight=False, soft_wrap=True)
        raise Interrupted() from None
