"""``mutascope activation``: activation patterns of parameters and layer-wise pruning from them.

A shell over :func:`mutascope.activation.run.run`: options in, the tables it
shows as they are computed printed.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from .common import DeviceOpt, DtypeOpt, ModelOpt, err, load_subject, out, spinner


def activation(
    domain: list[str] | None = typer.Option(
        None,
        "--domain",
        "-d",
        help="NAME=FILE (one input per paragraph, or per line) or NAME=mmlu:DIR:SUBJECT[:5] (zero-shot, or 5-shot, "
        "question prompts). Repeat for several domains. Default: the shipped biology, law and python domains.",
    ),
    model: str | None = ModelOpt,
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    inputs_per_domain: int = typer.Option(
        8, "--inputs-per-domain", "-n", help="Inputs used from each domain (one backward pass each)."
    ),
    max_tokens: int = typer.Option(128, "--max-tokens", help="Keep the last this many tokens of each input."),
    gamma: list[str] | None = typer.Option(
        None,
        "--gamma",
        help="Activation thresholds (repeat or comma-separate; default: a 1-2-5 grid 1e-9..1e-2 holding the paper's "
        "2e-5 and 2e-6).",
    ),
    similarity_inputs: int = typer.Option(
        8,
        "--similarity-inputs",
        help="Inputs per domain whose maps are kept for pairwise cosines (each costs 2 bytes per matrix parameter).",
    ),
    tile: str = typer.Option("64", help="Tile size of the tile view: 64 or HxW (match the screen's)."),
    screen: Path | None = typer.Option(
        None, "--screen", help="Results file of a screen of the same model: Spearman of tile activation vs NSM rate."
    ),
    prune_sparsity: float = typer.Option(0.5, "--prune-sparsity", help="Overall Wanda sparsity S (0: skip pruning)."),
    prune_gamma: float = typer.Option(
        2e-6, "--prune-gamma", help="Gamma at which N_i (activated parameters of layer i) are counted for the ratios."
    ),
    alpha: float = typer.Option(2.0, help="alpha of N'_i = sigmoid(z_i + alpha / i)."),
    beta: float = typer.Option(0.2, help="beta of S_i = S + beta*S*(1 - N'_i L / sum N')."),
    corpus: Path | None = typer.Option(None, help="Plain-text corpus for perplexity (default: the shipped corpus)."),
    corpus_tokens: int = typer.Option(1024, "--corpus-tokens", help="Corpus tokens used for perplexity."),
    window: int = typer.Option(256, help="Perplexity window in tokens."),
    prune_calibration: bool = typer.Option(
        False,
        "--prune-calibration",
        help="Wanda-prune (uniform and layer-wise) on each domain's inputs in turn and evaluate each pruned model on "
        "every domain's held-out text.",
    ),
    heldout: int = typer.Option(
        8,
        "--heldout",
        help="Held-out texts per domain for --prune-calibration: the texts after a domain's inputs in its source.",
    ),
    semantic_pairs: bool = typer.Option(
        False,
        "--semantic-pairs",
        help="Correlate per layer the activation-pattern cosine of sentence pairs with their similarity score.",
    ),
    pairs: Path | None = typer.Option(
        None,
        "--pairs",
        help="Sentence pairs in the STS-B TSV layout (header with score, sentence1, sentence2; STS-B and SICK files as "
        "they come). Implies --semantic-pairs. Default: the 48 shipped pairs.",
    ),
    max_pairs: int | None = typer.Option(
        None, "--max-pairs", help="Use only the first this many pairs (default: all)."
    ),
    permutations: int = typer.Option(
        1000, "--permutations", help="Score shuffles for the semantic pairs' permutation p-values."
    ),
    out_file: Path | None = typer.Option(
        None, "--out", "-o", help="DuckDB file for the tables (activation_*, pruning_*)."
    ),
    figures: Path | None = typer.Option(None, "--figures", help="Directory for PNG figures."),
) -> None:
    """Map which parameters each input activates (arXiv 2405.17799) and prune layer-wise by it."""
    from ..activation.run import Settings, run
    from ..activation.stats import parse_gammas
    from ..plan.parse import parse_tile

    settings = Settings(
        domain=tuple(domain or ()),
        model=model,
        dtype=dtype,
        device=device,
        inputs_per_domain=inputs_per_domain,
        max_tokens=max_tokens,
        gamma=parse_gammas(gamma),
        similarity_inputs=similarity_inputs,
        tile=parse_tile(tile),
        screen=screen,
        prune_sparsity=prune_sparsity,
        prune_gamma=prune_gamma,
        alpha=alpha,
        beta=beta,
        corpus=corpus,
        corpus_tokens=corpus_tokens,
        window=window,
        prune_calibration=prune_calibration,
        heldout=heldout,
        semantic_pairs=semantic_pairs,
        pairs=pairs,
        max_pairs=max_pairs,
        permutations=permutations,
        out_file=out_file,
        figures=figures,
    )
    printers = {
        "fractions": lambda v: _print_fractions(*v),
        "similarity": _print_similarity,
        "findings": _print_findings,
        "screen": _print_screen,
        "pruning": lambda v: _print_pruning(*v),
        "transfer": lambda v: _print_transfer(*v),
        "semantic": lambda v: _print_semantic(*v),
        "note": lambda v: err.print(f"note: {v}", markup=False, highlight=False, soft_wrap=True),
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
    if figures is not None:
        out.print(f"figures: {', '.join(str(p) for p in result.figures)}")


def _print_transfer(frame, summary) -> None:
    import pandas as pd

    from ..activation.transfer import DENSE

    dense = frame[frame["method"] == DENSE].set_index("eval_domain")
    evals = list(dense.index)
    mc = frame["accuracy"].notna().any()
    for method, part in frame[frame["method"] != DENSE].groupby("method", sort=False):
        table = Table(
            title=f"{method} Wanda: held-out perplexity{' / accuracy' if mc else ''} "
            "(rows: calibrated on; [ ] the diagonal)"
        )
        table.add_column("calibrated on")
        for e in evals:
            table.add_column(e, justify="right")
        cells = {(r.calibration_domain, r.eval_domain): r for r in part.itertuples()}

        def fmt(r, diag=False):
            text = f"{r.perplexity:.4g}" + (f" / {r.accuracy:.2f}" if mc and pd.notna(r.accuracy) else "")
            return f"[{text}]" if diag else text

        table.add_row("(dense)", *(fmt(_row(dense, e)) for e in evals))
        for c in dict.fromkeys(part["calibration_domain"]):
            table.add_row(c, *(fmt(cells[(c, e)], c == e) if (c, e) in cells else "-" for e in evals))
        out.print(table)
    lines = []
    for r in summary[summary["eval_domain"] == "all"].itertuples():
        lines.append(
            f"{r.method}: the diagonal wins on {r.n_wins}/{r.n_domains} domains; models calibrated on "
            f"another domain have {abs(100 * r.advantage):.1f} % {'higher' if r.advantage >= 0 else 'lower'} "
            "held-out perplexity than the one calibrated on the domain itself (geometric mean)"
        )
    out.print("\n".join(lines))


def _row(frame, key):
    """One row of an indexed frame as a namedtuple-like object."""
    import types

    return types.SimpleNamespace(**frame.loc[key].to_dict())


def _print_semantic(table, depth) -> None:
    view = Table(
        title=f"semantic pairs: Spearman of pattern cosine vs score by layer ({int(table['n_pairs'].iloc[0])} "
        f"pairs, {int(table['permutations'].iloc[0])} permutations)"
    )
    for col in ("layer", "rho", "p", "mean cosine"):
        view.add_column(col, justify="right")
    for r in table.itertuples():
        view.add_row(str(r.layer), f"{r.spearman_rho:.3f}", f"{r.p_value:.3g}", f"{r.cosine_mean:.3f}")
    out.print(view)
    shallow, deep = depth
    out.print(
        f"mean rho: shallow third {shallow:.3f}, deep third {deep:.3f} "
        f"(the paper: higher in deep layers) -> {'deep higher' if deep > shallow else 'deep not higher'}"
    )


def _key_gammas(gammas) -> list[float]:
    key = [g for g in (2e-5, 2e-6) if any(abs(g - x) <= 1e-12 * g for x in gammas)]
    return key or list(gammas[:2])


def _print_fractions(fractions, gammas) -> None:
    f = fractions[fractions["matrix"] == "all"]
    key = _key_gammas(gammas)
    domains = list(dict.fromkeys(f["domain"]))
    table = Table(title="activated fraction by layer (mean A over a domain's inputs > gamma; all gammas in --out)")
    table.add_column("layer", justify="right")
    cols = [(d, g) for g in key for d in domains]
    for d, g in cols:
        table.add_column(f"{d} @ {g:g}", justify="right")
    pivot = {(r.domain, r.layer, r.gamma): r.fraction for r in f.itertuples()}
    gam = {g: min(set(f["gamma"]), key=lambda x: abs(x - g)) for g in key}
    for layer in sorted(f["layer"].unique()):
        table.add_row(str(layer), *(f"{pivot[(d, layer, gam[g])]:.3f}" for d, g in cols))
    out.print(table)


def _print_similarity(similarity) -> None:
    if similarity.empty:
        out.print("similarity: needs at least two kept inputs")
        return
    labels = list(
        dict.fromkeys(
            (a, b) for a, b in zip(similarity["domain_a"], similarity["domain_b"]) if a not in ("within", "across")
        )
    ) + [(x, x) for x in ("within", "across") if (similarity["domain_a"] == x).any()]
    table = Table(title="mean cosine of two inputs' activation patterns, by layer")
    table.add_column("layer", justify="right")
    for a, b in labels:
        table.add_column(a if a == b else f"{a} x {b}", justify="right")
    pivot = {(r.layer, r.domain_a, r.domain_b): r.cosine_mean for r in similarity.itertuples()}
    for layer in sorted(similarity["layer"].unique()):
        table.add_row(str(layer), *(f"{pivot.get((layer, a, b), float('nan')):.3f}" for a, b in labels))
    out.print(table)


def _print_findings(found) -> None:
    table = Table(title="the paper's findings: shallow third vs deep third of the layers")
    for col in ("metric", "shallow", "deep", "spearman vs depth", "shallow > deep"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for r in found.itertuples():
        table.add_row(
            r.metric,
            f"{r.shallow_mean:.4g}",
            f"{r.deep_mean:.4g}",
            f"{r.spearman_vs_depth:.3f}",
            "yes" if r.shallow_gt_deep else "no",
        )
    out.print(table)


def _print_screen(corr) -> None:
    table = Table(title="tile activation vs NSM rate (Spearman)")
    for col in ("domain", "kind", "tiles", "rho", "p"):
        table.add_column(col, justify="left" if col in ("domain", "kind") else "right")
    for r in corr.itertuples():
        table.add_row(r.domain, r.kind, str(r.n_tiles), f"{r.spearman_rho:.3f}", f"{r.p_value:.3g}")
    out.print(table)


def _print_pruning(result, gamma) -> None:
    lay = result.layers
    note = " (clipped and renormalised)" if lay.renormalised else ""
    out.print(
        f"layer-wise sparsities from N_i at gamma={gamma:g}{note}: "
        + " ".join(f"{s:.3f}" for s in lay.sparsities)
        + f"  (mean {sum(lay.sparsities) / len(lay.sparsities):.4f})"
    )
    table = Table(title="Wanda pruning: perplexity")
    for col in ("model", "target sparsity", "sparsity of matrices", "perplexity"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, target, realised, ppl in result.rows:
        table.add_row(name, f"{target:.3f}", f"{realised:.4f}", f"{ppl:.4g}")
    out.print(table)
