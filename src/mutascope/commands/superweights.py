"""``mutascope superweights``: find a model's super weights and show what they do.

A shell over :func:`mutascope.superweights.run.run`: options in, each table
printed as it is computed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .common import DeviceOpt, DtypeOpt, ModelOpt, load_subject, out, spinner


def superweights(
    model: str | None = ModelOpt,
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    threshold: float = typer.Option(50.0, help="Absolute spike threshold on down inputs/outputs (0: off)."),
    relative: float = typer.Option(
        100.0, help="Spike must also exceed this many times the layer's median |value| (0: off)."
    ),
    weight_z: float = typer.Option(
        10.0, "--weight-z", help="A super weight must be this many std from its matrix's mean (0: off)."
    ),
    max_iterations: int = typer.Option(10, help="Most zero-and-repeat detection passes."),
    detect_only: bool = typer.Option(False, "--detect-only", help="Only detect; skip the ablation table."),
    corpus: Path | None = typer.Option(None, help="Plain-text corpus for perplexity (default: the shipped corpus)."),
    max_tokens: int = typer.Option(1024, help="Corpus tokens used for perplexity."),
    window: int = typer.Option(256, help="Perplexity window in tokens."),
    mmlu_dir: Path | None = typer.Option(
        None, "--mmlu-dir", help="MMLU-format directory for multiple-choice accuracy (optional)."
    ),
    subject_name: str = typer.Option("international_law", "--subject", help="MMLU subject for accuracy."),
    questions: int = typer.Option(20, help="MMLU test questions used."),
    fraction: float = typer.Option(
        1e-6, help="Fraction of all mutable weights (largest |w|, super weights excluded) zeroed for comparison."
    ),
    check: bool = typer.Option(False, "--check", help="Compare the finds with the catalogue of known coordinates."),
    quantize: bool = typer.Option(
        False, "--quantize", help="Also compare naive and super-weight-aware round-to-nearest weight quantization."
    ),
    block_size: str = typer.Option(
        "64",
        "--block-size",
        help="Quantization block size(s): weights per block along a row, per-row or per-tensor; comma-separate to "
        "sweep, e.g. 64,128,256,512,per-row,per-tensor.",
    ),
    bits: str = typer.Option(
        "4", "--bits", help="Weight bit width(s) for --quantize, 2-8; comma-separate to sweep, e.g. 4,3."
    ),
    clip: float = typer.Option(6.0, "--clip-z", help="Clipping z-score for super-weight-aware quantization."),
    quantize_activations: bool = typer.Option(
        False,
        "--quantize-activations",
        help="Also compare per-tensor activation round-to-nearest (W16A8) with and without the super activation held.",
    ),
    activation_bits: str = typer.Option(
        "8",
        "--activation-bits",
        help="Activation bit width(s) for --quantize-activations, 2-16; comma-separate, e.g. 8,6.",
    ),
    out_file: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="DuckDB file for the tables (superweights, superactivations, ablations, quantization, "
        "superweight_quant_sweep, superweight_activation_quant).",
    ),
    export: Path | None = typer.Option(None, "--export", help="JSON file listing the super weights and their tiles."),
    figure: Path | None = typer.Option(
        None, "--figure", help="PNG of perplexity against block size (with --quantize)."
    ),
    tile: str = typer.Option("64", help="Tile size for the export: 64 or HxW."),
) -> None:
    """Find super weights (arXiv 2411.07191) and measure what removing them does."""
    from ..plan.parse import parse_tile
    from ..superweights.quantize import parse_bits, parse_blocks
    from ..superweights.run import Settings, run

    settings = Settings(
        model=model,
        dtype=dtype,
        device=device,
        threshold=threshold,
        relative=relative,
        weight_z=weight_z,
        max_iterations=max_iterations,
        detect_only=detect_only,
        corpus=corpus,
        max_tokens=max_tokens,
        window=window,
        mmlu_dir=mmlu_dir,
        subject_name=subject_name,
        questions=questions,
        fraction=fraction,
        check=check,
        quantize=quantize,
        block_size=parse_blocks(block_size),
        bits=parse_bits(bits),
        clip=clip,
        quantize_activations=quantize_activations,
        activation_bits=parse_bits(activation_bits, "--activation-bits", 2, 16),
        out_file=out_file,
        export=export,
        figure=figure,
        tile=parse_tile(tile),
    )
    printers = {
        "detection": _print_detection,
        "check": lambda v: _print_check(*v),
        "ablations": lambda rows: _print_measurements("ablations", rows),
        "sweep": lambda v: _print_sweep(*v),
        "activation_quant": lambda rows: _print_measurements("activation quantization (per tensor)", rows),
        "none": lambda _: out.print("no super weights found: nothing to ablate"),
    }
    with spinner() as status:
        result = run(
            settings,
            lambda model, dtype, device: load_subject(model, dtype, device, status=status),
            status=status,
            show=lambda name, value: printers[name](value),
        )
    if out_file is not None:
        out.print(f"tables written to {out_file}")
    if export is not None:
        out.print(f"super weights exported to {export}")
    if result.figure is not None:
        out.print(f"figure written to {figure}")


def _print_sweep(sweep, original: float) -> None:
    """Perplexity by block size, one column pair per bit width, and naive / aware (the gap)."""
    table = Table(
        title=f"weight quantization: perplexity by block size (unquantized {original:.4g}; "
        "naive / aware > 1: keeping the super weights helps)"
    )
    table.add_column("block", justify="right")
    widths = list(dict.fromkeys(sweep["bits"]))
    for b in widths:
        for col in (f"INT{b} naive", f"INT{b} SW-aware", "naive / aware"):
            table.add_column(col, justify="right")
    cell = {(r.bits, r.block_size, r.method): r.perplexity for r in sweep.itertuples()}
    for block in dict.fromkeys(sweep.sort_values("block_index")["block_size"]):
        row = [str(block)]
        for b in widths:
            naive, aware = cell.get((b, block, "naive")), cell.get((b, block, "sw-aware"))
            row += [f"{naive:.4g}", f"{aware:.4g}", f"{naive / aware:.3g}" if aware else "-"]
        table.add_row(*row)
    out.print(table)


def _print_detection(found) -> None:
    table = Table(title=f"super weights of {found.model_id} ({found.iterations} detection passes)")
    for col in ("layer", "module", "row", "col", "value", "rank", "input spike", "output spike", "pass"):
        table.add_column(col, justify="left" if col == "module" else "right", overflow="fold")
    for w in found.weights:
        table.add_row(
            str(w.layer),
            w.module_path,
            str(w.row),
            str(w.col),
            f"{w.value:.4g}",
            str(w.rank),
            f"{w.input_spike:.4g}",
            f"{w.output_spike:.4g}",
            str(w.iteration),
        )
    out.print(table)
    if found.activations:
        acts = Table(title="super activations (|residual| at the spike's token, from the layer where it appears)")
        for col in ("channel", "layer", "value", "magnitude through later layers", "pass"):
            acts.add_column(col)
        for a in found.activations:
            mags = a.magnitudes
            shown = " ".join(f"{m:.0f}" for m in mags[:8]) + (f" ... {mags[-1]:.0f}" if len(mags) > 8 else "")
            acts.add_row(str(a.channel), str(a.layer), f"{a.value:.4g}", shown, str(a.iteration))
        out.print(acts)
    if found.cancellers:
        names = ", ".join(f"L{c.layer}[{c.row},{c.col}] ({c.output_spike:.4g})" for c in found.cancellers)
        out.print(f"cancellers (output spikes that oppose an existing super activation; not ablated): {names}")


def _print_check(result, model_id: str) -> None:
    if result is None:
        out.print(f"--check: the catalogue has no entry for {model_id}")
        return
    fmt = lambda cs: ", ".join(f"L{layer}[{r},{c}]" for layer, r, c in cs) or "none"  # noqa: E731
    verdict = (
        "[green]all catalogued super weights found[/]" if result.ok else "[red]catalogued super weights missing[/]"
    )
    out.print(f"--check against {result.model_key} ({result.source}): {verdict}")
    out.print(f"  matched: {fmt(result.matched)}\n  missing: {fmt(result.missing)}\n  extra:   {fmt(result.extra)}")


def _print_measurements(title: str, rows) -> None:
    table = Table(title=f"{title} (details of each row in the --out file)")
    base = rows[0] if rows else None
    words = list(base.stopwords) if base is not None else []
    columns = ["ablation", "perplexity", "x original", "weights changed"]
    if base is not None and base.accuracy is not None:
        columns.append("accuracy")
    columns += [f"p({w.strip()!r}) x" for w in words]
    for col in columns:
        table.add_column(col, justify="left" if col == "ablation" else "right")
    for m in rows:
        assert base is not None  # rows is not empty
        cells = [m.name, f"{m.perplexity:.4g}", f"{m.perplexity / base.perplexity:.3g}", str(m.n_changed)]
        if base.accuracy is not None:
            cells.append(f"{m.accuracy:.3f}")
        cells += [f"{m.stopwords[w] / base.stopwords[w]:.3g}" if base.stopwords[w] else "-" for w in words]
        table.add_row(*cells)
    out.print(table)
