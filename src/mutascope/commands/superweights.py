"""``mutascope superweights``: find a model's super weights and show what they do.

Registered in ``cli.py`` with ``app.command()(superweights)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from .common import DeviceOpt, DtypeOpt, ModelOpt, err, load_subject, out


def superweights(
    model: Optional[str] = ModelOpt,
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    threshold: float = typer.Option(50.0, help="Absolute spike threshold on down inputs/outputs (0: off)."),
    relative: float = typer.Option(100.0, help="Spike must also exceed this many times the layer's median |value| (0: off)."),
    weight_z: float = typer.Option(10.0, "--weight-z", help="A super weight must be this many std from its matrix's mean (0: off)."),
    max_iterations: int = typer.Option(10, help="Most zero-and-repeat detection passes."),
    detect_only: bool = typer.Option(False, "--detect-only", help="Only detect; skip the ablation table."),
    corpus: Optional[Path] = typer.Option(None, help="Plain-text corpus for perplexity (default: the shipped corpus)."),
    max_tokens: int = typer.Option(1024, help="Corpus tokens used for perplexity."),
    window: int = typer.Option(256, help="Perplexity window in tokens."),
    mmlu_dir: Optional[Path] = typer.Option(None, "--mmlu-dir", help="MMLU-format directory for multiple-choice accuracy (optional)."),
    subject_name: str = typer.Option("international_law", "--subject", help="MMLU subject for accuracy."),
    questions: int = typer.Option(20, help="MMLU test questions used."),
    fraction: float = typer.Option(1e-6, help="Fraction of all mutable weights (largest |w|, super weights excluded) zeroed for comparison."),
    check: bool = typer.Option(False, "--check", help="Compare the finds with the catalogue of known coordinates."),
    quantize: bool = typer.Option(False, "--quantize", help="Also compare naive and super-weight-aware INT4 round-to-nearest."),
    block_size: int = typer.Option(64, "--block-size", help="Quantization block size (weights per block along a row)."),
    clip: float = typer.Option(6.0, "--clip-z", help="Clipping z-score for super-weight-aware quantization."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="DuckDB file for the tables (superweights, superactivations, ablations, quantization)."),
    export: Optional[Path] = typer.Option(None, "--export", help="JSON file listing the super weights and their tiles."),
    tile: str = typer.Option("64", help="Tile size for the export: 64 or HxW."),
) -> None:
    """Find super weights (arXiv 2411.07191) and measure what removing them does."""
    from .. import superweights as sw
    from ..errors import MutascopeError
    from ..plan import parse_tile

    size = parse_tile(tile)
    if max_tokens < 2:
        raise MutascopeError(f"--max-tokens must be >= 2, got {max_tokens}")
    text = sw.read_corpus(corpus) if not detect_only or quantize else None
    subject = load_subject(model, dtype, device)
    with err.status("detecting super weights ..."):
        found = sw.detect(subject, threshold=threshold, relative=relative, weight_z=weight_z, max_iterations=max_iterations)
    _print_detection(found)
    if check:
        _print_check(sw.check(subject.model_id, found.coords), subject.model_id)

    ablations = quant = None
    if found.weights and (not detect_only or quantize):
        work = sw.Workload(sw.corpus_ids(subject, text, max_tokens), window)
        if mmlu_dir is not None and not detect_only:
            work.questions = sw.choice_set(subject, mmlu_dir, subject_name, questions)
        status = err.status("measuring ...")
        with status:
            say = lambda name: status.update(f"measuring: {name} ...")  # noqa: E731
            if not detect_only:
                ablations = sw.ablation_table(subject, found.coords, work, fraction=fraction,
                                              restore_threshold=threshold or 1.0, progress=say)
                _print_measurements("ablations", ablations)
            if quantize:
                base = ablations[0] if ablations else None
                quant = sw.quantization_table(subject, found.coords, work, block_size=block_size, clip=clip,
                                              original=base, progress=say)
        if quant:
            _print_measurements("quantization", quant)
    elif not found.weights:
        out.print("no super weights found: nothing to ablate")

    if out_file is not None:
        settings = dict(corpus=str(corpus or "shipped"), max_tokens=max_tokens, window=window, fraction=fraction,
                        mmlu_dir=str(mmlu_dir) if mmlu_dir else None, subject=subject_name, block_size=block_size,
                        clip_z=clip)
        sw.write_results(out_file, sw.frames(subject, found, ablations, quant, settings))
        out.print(f"tables written to {out_file}")
    if export is not None:
        sw.write_export(export, subject, found, size)
        out.print(f"super weights exported to {export}")


def _print_detection(found) -> None:
    table = Table(title=f"super weights of {found.model_id} ({found.iterations} detection passes)")
    for col in ("layer", "module", "row", "col", "value", "rank", "input spike", "output spike", "pass"):
        table.add_column(col, justify="left" if col == "module" else "right", overflow="fold")
    for w in found.weights:
        table.add_row(str(w.layer), w.module_path, str(w.row), str(w.col), f"{w.value:.4g}", str(w.rank),
                      f"{w.input_spike:.4g}", f"{w.output_spike:.4g}", str(w.iteration))
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
    fmt = lambda cs: ", ".join(f"L{l}[{r},{c}]" for l, r, c in cs) or "none"  # noqa: E731
    verdict = "[green]all catalogued super weights found[/]" if result.ok else "[red]catalogued super weights missing[/]"
    out.print(f"--check against {result.model_key} ({result.source}): {verdict}")
    out.print(f"  matched: {fmt(result.matched)}\n  missing: {fmt(result.missing)}\n  extra:   {fmt(result.extra)}")


def _print_measurements(title: str, rows) -> None:
    table = Table(title=f"{title} (details of each row in the --out file)")
    words = list(rows[0].stopwords) if rows else []
    base = rows[0] if rows else None
    columns = ["ablation", "perplexity", "x original", "weights changed"]
    if base is not None and base.accuracy is not None:
        columns.append("accuracy")
    columns += [f"p({w.strip()!r}) x" for w in words]
    for col in columns:
        table.add_column(col, justify="left" if col == "ablation" else "right")
    for m in rows:
        cells = [m.name, f"{m.perplexity:.4g}", f"{m.perplexity / base.perplexity:.3g}", str(m.n_changed)]
        if base.accuracy is not None:
            cells.append(f"{m.accuracy:.3f}")
        cells += [f"{m.stopwords[w] / base.stopwords[w]:.3g}" if base.stopwords[w] else "-" for w in words]
        table.add_row(*cells)
    out.print(table)
