"""The ``mutascope`` command line: a thin layer over the library.

It parses options, calls the library, and renders results and progress.
User mistakes (:class:`MutascopeError`) become one line on stderr and exit
code 2; Ctrl-C during a screen says how to resume and exits with 130.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .commands.common import (
    DeviceOpt,
    DtypeOpt,
    ModelOpt,
    RayAddressOpt,
    ThreadsOpt,
    ThreadsPerWorkerOpt,
    WorkersOpt,
    err,
    load_subject,
    out,
    check_workers,
    progress_bar,
    ray_backend,
    resumable,
    set_threads,
)
from .errors import Interrupted, MutascopeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Map what the parameters of a large language model do.",
)
ProbeOpt = typer.Option(..., "--probe", "-p", help="Built-in id (drosophila python java newton p53; ID@chat applies the chat template; `mutascope probes` lists them), probe file, mmlu21:SUBJECT or mmlu:SUBJECT[:N]. Repeat for several.")
LayersOpt = typer.Option("all", help="Layers, e.g. 0-3,7 (inclusive ranges) or all.")
MatricesOpt = typer.Option("all", help="Matrices among q,k,v,o,gate,up,down, or all.")
RowsOpt = typer.Option("all", help="Tile rows, e.g. 0-3 (clipped to each matrix), or all.")
ColsOpt = typer.Option("all", help="Tile columns, e.g. 0-3 (clipped to each matrix), or all.")
KindsOpt = typer.Option("max,min", help="Mutation kinds: max, min, zero, value:X, scale:X.")
TileOpt = typer.Option("64", help="Tile size: 64 or HxW.")
TokensOpt = typer.Option(None, "--max-new-tokens", help="Override the new-token count of free-text probes.")
DecodingOpt = typer.Option(None, help="Override free-text probes' decoding: greedy, sample:T or sample:T:SEED.")
MmluOpt = typer.Option(None, "--mmlu-dir", help="MMLU-format directory for mmlu21:/mmlu: probes (or $MUTASCOPE_MMLU_DIR).")


def _probes(specs, subject, mmlu_dir, max_new_tokens, decoding):
    from .probe_specs import resolve_probes
    from .probes import Decoding

    dec = Decoding.parse(decoding) if decoding else None
    with err.status("preparing probes ..."):
        return resolve_probes(specs, subject, mmlu_dir=mmlu_dir, max_new_tokens=max_new_tokens, decoding=dec)


def _shard(text: str) -> tuple[int, int]:
    """``INDEX/COUNT`` with ``0 <= INDEX < COUNT``; anything else is a one-line error."""
    i, sep, n = text.strip().partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index = count = -1
    if not sep or count < 1 or not 0 <= index < count:
        raise MutascopeError(f"bad --shard {text!r}: use INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/4")
    return index, count


@app.command()
def models(model: Optional[str] = ModelOpt, dtype: str = DtypeOpt, device: str = DeviceOpt, tile: str = TileOpt) -> None:
    """List every mutable matrix of a model with its shape and tile counts."""
    from .mutation import TileGrid
    from .plan import parse_tile

    size = parse_tile(tile)
    subject = load_subject(model, dtype, device)
    anatomy = subject.anatomy
    table = Table(title=f"{subject.model_id} ({anatomy.family}, {anatomy.n_layers} layers, tile {size[0]}x{size[1]})")
    for col in ("layer", "matrix", "weight", "shape (out x in)", "tile grid", "tiles"):
        table.add_column(col)
    total = 0
    for ref in anatomy.refs():
        grid = TileGrid(ref.shape, size)
        total += len(grid)
        table.add_row(str(ref.layer), ref.matrix, ref.param_name, f"{ref.shape[0]}x{ref.shape[1]}",
                      f"{grid.n_rows}x{grid.n_cols}", str(len(grid)))
    out.print(table)
    out.print(f"{len(anatomy.refs())} matrices, {total} tiles")


@app.command()
def plan(
    probe: List[str] = ProbeOpt,
    model: Optional[str] = ModelOpt,
    layers: str = LayersOpt,
    matrices: str = MatricesOpt,
    rows: str = RowsOpt,
    cols: str = ColsOpt,
    kinds: str = KindsOpt,
    tile: str = TileOpt,
    max_new_tokens: Optional[int] = TokensOpt,
    decoding: Optional[str] = DecodingOpt,
    mmlu_dir: Optional[Path] = MmluOpt,
    estimate: bool = typer.Option(True, help="Estimate the run time from a short calibration run of the batched engine."),
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
) -> None:
    """Count the mutants and probe runs of a plan, and estimate its time, before anything runs."""
    from .plan import PlanSpec, build_plan
    from .probe_specs import resolve_probes
    from .probes import Decoding

    spec = PlanSpec.parse(layers, matrices, rows, cols, kinds, tile)
    subject = load_subject(model, dtype, device)
    built = build_plan(spec, subject.anatomy)
    dec = Decoding.parse(decoding) if decoding else None
    if estimate:
        probes = _probes(probe, subject, mmlu_dir, max_new_tokens, decoding)
        n_probes = len(probes)
    else:  # mmlu21 sets are selected by running the model; count them as 21 without running.
        n_probes = 21 * sum(s.startswith("mmlu21:") for s in probe)
        n_probes += len(resolve_probes([s for s in probe if not s.startswith("mmlu21:")], subject,
                                       mmlu_dir=mmlu_dir, max_new_tokens=max_new_tokens, decoding=dec))
    table = Table(title="plan")
    table.add_column("matrix")
    table.add_column("mutants", justify="right")
    for name, count in built.summary().items():
        table.add_row(name, str(count))
    out.print(table)
    out.print(f"{len(built)} mutants x {n_probes} probes = {len(built) * n_probes} probe runs")
    if estimate:
        from .engine import estimate_seconds

        with err.status("calibrating the batched engine on a sample of the plan ..."):
            seconds = estimate_seconds(subject, probes, built)
        out.print(f"estimated time with the batched engine on {subject.device}: {_duration(seconds['full'])} "
                  f"(--outputs full), {_duration(seconds['calls'])} (--outputs calls)")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


OutputsOpt = typer.Option(
    "full", "--outputs",
    help="full: decode every NSM's output; calls: NSM calls, divergence steps and effect sizes only "
         "(several times faster; `mutascope fill` computes chosen outputs later).",
)


@app.command()
def screen(
    probe: List[str] = ProbeOpt,
    out_file: Path = typer.Option(..., "--out", "-o", help="Results file (DuckDB); rerun the same command to resume."),
    model: Optional[str] = ModelOpt,
    layers: str = LayersOpt,
    matrices: str = MatricesOpt,
    rows: str = RowsOpt,
    cols: str = ColsOpt,
    kinds: str = KindsOpt,
    tile: str = TileOpt,
    outputs: str = OutputsOpt,
    engine: str = typer.Option("batched", help="batched (fast, identical results) or reference (the paper's loop)."),
    shard: str = typer.Option("0/1", help="Run only shard INDEX/COUNT of the plan (one file per shard; `mutascope merge` joins them)."),
    chunk_size: Optional[int] = typer.Option(None, help="Mutations per committed transaction (default: the engine's)."),
    batch_size: Optional[int] = typer.Option(None, help="Batched engine: mutants per forward pass (default: from free memory)."),
    float32_head: bool = typer.Option(
        False, "--float32-head", help="Batched engine: float32 LM head throughout (exact effect sizes, slower)."
    ),
    max_new_tokens: Optional[int] = TokensOpt,
    decoding: Optional[str] = DecodingOpt,
    mmlu_dir: Optional[Path] = MmluOpt,
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    threads: Optional[int] = ThreadsOpt,
    workers: Optional[int] = WorkersOpt,
    ray_address: Optional[str] = RayAddressOpt,
    threads_per_worker: int = ThreadsPerWorkerOpt,
) -> None:
    """Run (or resume) a mutagenesis screen into a results file."""
    from .engine.batched import check_outputs
    from .plan import PlanSpec
    from .screen import Screen
    from .store import open_results

    spec = PlanSpec.parse(layers, matrices, rows, cols, kinds, tile)
    shard_pair = _shard(shard)
    check_outputs(outputs)
    check_workers(workers, threads_per_worker)
    _check_out_early(out_file, model, dtype, device, spec, shard_pair, probe, mmlu_dir, max_new_tokens, decoding)
    set_threads(threads)
    with resumable(out_file):
        subject = load_subject(model, dtype, device)
        probes = _probes(probe, subject, mmlu_dir, max_new_tokens, decoding)
        options = {"batch_size": batch_size, "fast_head": False if float32_head else None}
        backend = ray_backend(model, subject, workers, ray_address, threads_per_worker, options, engine)
        try:
            job = Screen(
                subject, probes, spec, out_file, engine=engine, shard=shard_pair, chunk_size=chunk_size,
                engine_options=options, outputs=outputs, backend=backend,
            )
            with err.status("running the unmutated model on the probes ..."):
                job.prepared()
            columns = (TextColumn("screen"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       TextColumn("eta"), TimeRemainingColumn())
            with progress_bar(*columns, label="screen") as bar:
                task = bar.add_task("screen", total=len(job.mutations))
                summary = job.run(lambda done, total: bar.update(task, completed=done, total=total))
        finally:
            if backend is not None:
                backend.close()
    with open_results(summary.path) as results:
        _print_summary(results, summary)


def _check_out_early(out_file, model, dtype, device, spec, shard, probe_specs, mmlu_dir, max_new_tokens, decoding):
    """Refuse an ``--out`` file that cannot take this screen before the model loads.

    What is known without the model (its id, dtype, device, plan, shard and,
    unless an MMLU21 set needs the model to pick its questions, the probes)
    is compared with the file; the rest is checked again when the screen opens it.
    """
    from .probe_specs import resolve_probes
    from .probes import Decoding
    from .store import check_target
    from .subject import model_id_of, parse_device, parse_dtype

    partial = {
        "model": {"id": model_id_of(model)},
        "dtype": str(parse_dtype(dtype)).replace("torch.", ""),
        "device": str(parse_device(device)),
        "plan": spec.to_dict(),
        "shard": f"{shard[0]}/{shard[1]}",
    }
    if not any(s.startswith("mmlu21:") for s in probe_specs):
        dec = Decoding.parse(decoding) if decoding else None
        found = resolve_probes(probe_specs, None, mmlu_dir=mmlu_dir, max_new_tokens=max_new_tokens, decoding=dec)
        partial["probes"] = [p.to_dict() for p in found]
    check_target(out_file, partial)


def _print_summary(results, summary) -> None:
    counts = results.query(
        "SELECT m.matrix, m.kind, count(DISTINCT m.mutation_id) AS mutants,"
        " count(DISTINCT CASE WHEN o.nsm THEN m.mutation_id END) AS nsm_mutants"
        " FROM mutations m JOIN outcomes o USING (mutation_id) GROUP BY ALL ORDER BY ALL"
    )
    table = Table(title="NSMs by matrix and kind (mutants with any NSM)")
    for col in ("matrix", "kind", "mutants", "NSM"):
        table.add_column(col)
    for r in counts.itertuples():
        table.add_row(r.matrix, r.kind, str(r.mutants), str(r.nsm_mutants))
    out.print(table)
    per_probe = results.query("SELECT probe_id, sum(nsm::INT) AS nsm, count(*) AS n FROM outcomes GROUP BY ALL ORDER BY ALL")
    for r in per_probe.itertuples():
        out.print(f"probe {r.probe_id}: {int(r.nsm)} NSM of {int(r.n)}")
    out.print(
        f"{summary.n_done}/{summary.n_mutations} mutants done ({summary.n_run_now} this run, {summary.seconds:.1f} s); "
        f"results in {summary.path}"
    )


@app.command()
def export(
    results_file: Path = typer.Argument(..., help="A screen's results file."),
    out_dir: Path = typer.Option(None, "--out", "-o", help="Directory for the Parquet files (default: next to the file)."),
    compact: bool = typer.Option(False, "--compact", help="Only what the statistics read: one row per mutant and probe "
                                 "without output texts (table tiles), runs, probes and the analysis tables."),
) -> None:
    """Write every table of a results file as Parquet."""
    from .store import open_results

    target = out_dir or results_file.with_suffix("").with_name(results_file.stem + "_parquet")
    with open_results(results_file) as results:
        for path in results.export(target, compact=compact):
            out.print(str(path))


@app.command()
def merge(
    out_file: Path = typer.Argument(..., help="The merged results file to write (must not exist)."),
    shards: List[Path] = typer.Argument(..., help="Every shard file of one screen (screen --shard I/N)."),
) -> None:
    """Merge the shard files of one screen into the file an unsharded screen would have written."""
    from .merge import merge as run_merge
    from .store import open_results

    with err.status("merging ..."):
        path = run_merge(out_file, shards)
    with open_results(path) as results:
        n = results.query("SELECT count(DISTINCT mutation_id) AS n FROM outcomes")["n"][0]
    out.print(f"merged {len(shards)} shards ({n} mutants) into {path}")


@app.command()
def report(
    results_file: Path = typer.Argument(..., dir_okay=False, help="A screen's results file."),
    out_html: Optional[Path] = typer.Option(None, "--out", "-o", help="HTML file (default: beside the results, .html)."),
    figures: Optional[Path] = typer.Option(None, "--figures", help="Also write the report's figures as PNG files into this directory."),
    control: List[Path] = typer.Option([], "--control", help="A control screen of the same model, probes and tiles "
                                       "(as `mutascope analyze --control`): its kinds join the statistics."),
) -> None:
    """Write one self-contained, offline HTML report of a screen."""
    from .outfiles import check_output_file
    from .report import write_report
    from .store import open_results

    target = out_html if out_html is not None else results_file.with_suffix(".html")
    check_output_file(target, inputs=[results_file], what="report")
    if figures is not None:
        from .outfiles import check_output_dir

        check_output_dir(figures, inputs=[results_file], what="--figures directory")
    for path in [results_file, *control]:
        open_results(path).close()  # one line if it is missing, foreign or in use
    with progress_bar(TextColumn("report"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), label="report") as bar:
        task = bar.add_task("report", total=5)
        path = write_report(results_file, target, figures_dir=figures, controls=control,
                            progress=lambda done, total: bar.update(task, completed=done, total=total))
    out.print(f"report: {path}")
    if figures is not None:
        out.print(f"figures: {figures}")


from .commands.activation import activation  # noqa: E402
from .commands.analyze import analyze  # noqa: E402
from .commands.fill import fill  # noqa: E402
from .commands.phenotype import phenotype, show  # noqa: E402
from .commands.probes import probes  # noqa: E402
from .commands.specialization import specialization  # noqa: E402
from .commands.superweights import superweights  # noqa: E402

app.command()(probes)
app.command()(fill)
app.command()(phenotype)
app.command()(show)
app.command()(analyze)
app.command()(superweights)
app.command()(specialization)
app.command()(activation)


def _click_errors() -> tuple[type, type]:
    """The usage-error and abort exception types of the click that typer runs on
    (recent typer vendors its own copy; older ones use click itself)."""
    try:
        from typer._click.exceptions import UsageError
    except ImportError:
        from click.exceptions import UsageError
    return UsageError, typer.Abort


def _shown_help(exc: Exception) -> bool:
    """``mutascope`` alone prints the help (as a usage error, in recent typer): not a failure."""
    return type(exc).__name__ == "NoArgsIsHelpError"


def main() -> None:
    """Entry point: run the app, turning user errors into one line and exit 2.

    SIGTERM (what batch schedulers send first) is handled like Ctrl-C: commands
    that write results say how to resume (``commands.common.resumable``); any
    other interruption, even while importing or loading, is one line and exit 130.
    """
    def terminate(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminate)
    usage_error, abort = _click_errors()
    try:
        code = app(standalone_mode=False)
    except usage_error as exc:  # an unknown option, a missing argument: one line too
        if _shown_help(exc):
            sys.exit(0)
        where = exc.ctx.command_path if exc.ctx is not None else "mutascope"
        message = " ".join(exc.format_message().split())
        err.print(f"mutascope: error: {message} (see `{where} --help`)", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except abort:
        err.print("mutascope: interrupted", markup=False, highlight=False)
        sys.exit(130)
    except MutascopeError as exc:
        err.print(f"mutascope: error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except Interrupted:  # the command already printed how to resume
        sys.exit(130)
    except KeyboardInterrupt:
        code = 130
    if code == 130:  # typer returns a Ctrl-C it caught as exit code 130, without a word
        err.print("mutascope: interrupted", markup=False, highlight=False)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
