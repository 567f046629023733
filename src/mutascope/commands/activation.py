"""``mutascope activation``: activation patterns of parameters and layer-wise pruning from them.

Registered in ``cli.py`` with ``app.command()(activation)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.table import Table

from .common import DeviceOpt, DtypeOpt, ModelOpt, err, load_subject, out


def activation(
    domain: Optional[List[str]] = typer.Option(None, "--domain", "-d", help="NAME=FILE (one input per paragraph, or per line) or NAME=mmlu:DIR:SUBJECT[:5] (zero-shot, or 5-shot, question prompts). Repeat for several domains. Default: the shipped biology, law and python domains."),
    model: Optional[str] = ModelOpt,
    dtype: str = DtypeOpt,
    device: str = DeviceOpt,
    inputs_per_domain: int = typer.Option(8, "--inputs-per-domain", "-n", help="Inputs used from each domain (one backward pass each)."),
    max_tokens: int = typer.Option(128, "--max-tokens", help="Keep the last this many tokens of each input."),
    gamma: Optional[List[str]] = typer.Option(None, "--gamma", help="Activation thresholds (repeat or comma-separate; default: a 1-2-5 grid 1e-9..1e-2 holding the paper's 2e-5 and 2e-6)."),
    similarity_inputs: int = typer.Option(8, "--similarity-inputs", help="Inputs per domain whose maps are kept for pairwise cosines (each costs 2 bytes per matrix parameter)."),
    tile: str = typer.Option("64", help="Tile size of the tile view: 64 or HxW (match the screen's)."),
    screen: Optional[Path] = typer.Option(None, "--screen", help="Results file of a screen of the same model: Spearman of tile activation vs NSM rate."),
    prune_sparsity: float = typer.Option(0.5, "--prune-sparsity", help="Overall Wanda sparsity S (0: skip pruning)."),
    prune_gamma: float = typer.Option(2e-6, "--prune-gamma", help="Gamma at which N_i (activated parameters of layer i) are counted for the ratios."),
    alpha: float = typer.Option(2.0, help="alpha of N'_i = sigmoid(z_i + alpha / i)."),
    beta: float = typer.Option(0.2, help="beta of S_i = S + beta*S*(1 - N'_i L / sum N')."),
    corpus: Optional[Path] = typer.Option(None, help="Plain-text corpus for perplexity (default: the shipped corpus)."),
    corpus_tokens: int = typer.Option(1024, "--corpus-tokens", help="Corpus tokens used for perplexity."),
    window: int = typer.Option(256, help="Perplexity window in tokens."),
    prune_calibration: bool = typer.Option(False, "--prune-calibration", help="Wanda-prune (uniform and layer-wise) on each domain's inputs in turn and evaluate each pruned model on every domain's held-out text."),
    heldout: int = typer.Option(8, "--heldout", help="Held-out texts per domain for --prune-calibration: the texts after a domain's inputs in its source."),
    semantic_pairs: bool = typer.Option(False, "--semantic-pairs", help="Correlate per layer the activation-pattern cosine of sentence pairs with their similarity score."),
    pairs: Optional[Path] = typer.Option(None, "--pairs", help="Sentence pairs in the STS-B TSV layout (header with score, sentence1, sentence2; STS-B and SICK files as they come). Implies --semantic-pairs. Default: the 48 shipped pairs."),
    max_pairs: Optional[int] = typer.Option(None, "--max-pairs", help="Use only the first this many pairs (default: all)."),
    permutations: int = typer.Option(1000, "--permutations", help="Score shuffles for the semantic pairs' permutation p-values."),
    out_file: Optional[Path] = typer.Option(None, "--out", "-o", help="DuckDB file for the tables (activation_*, pruning_*)."),
    figures: Optional[Path] = typer.Option(None, "--figures", help="Directory for PNG figures."),
) -> None:
    """Map which parameters each input activates (arXiv 2405.17799) and prune layer-wise by it."""
    from .. import activation as act
    from ..activation.figures import FIGURES
    from ..errors import MutascopeError
    from ..outfiles import check_output_dir, check_output_file, check_tables_file
    from ..plan import parse_tile

    size = parse_tile(tile)
    gammas = act.parse_gammas(gamma)
    if prune_sparsity:
        if not 0 < prune_sparsity < 1:
            raise MutascopeError(f"--prune-sparsity must be in [0, 1), got {prune_sparsity}")
        gammas = tuple(sorted(set(gammas) | {prune_gamma}))
    if inputs_per_domain < 1:
        raise MutascopeError(f"--inputs-per-domain must be >= 1, got {inputs_per_domain}")
    if heldout < 1:
        raise MutascopeError(f"--heldout must be >= 1, got {heldout}")
    if prune_calibration and not prune_sparsity:
        raise MutascopeError("--prune-calibration prunes: give a --prune-sparsity in (0, 1), not 0")
    semantic_pairs = semantic_pairs or pairs is not None
    if max_pairs is not None and max_pairs < 3:
        raise MutascopeError(f"--max-pairs must be >= 3 (a rank correlation), got {max_pairs}")
    if permutations < 1:
        raise MutascopeError(f"--permutations must be >= 1, got {permutations}")
    inputs = [p for p in (corpus, pairs, screen) if p is not None]
    if out_file is not None:
        check_tables_file(out_file, inputs=[p for p in inputs if p is not screen])
    if figures is not None:
        check_output_dir(figures, inputs=inputs, what="--figures directory")
        if out_file is not None and figures.resolve() == out_file.resolve():
            raise MutascopeError(f"--figures {figures} is the --out file; give a directory")
        for name in FIGURES.values():
            check_output_file(figures / name, what="figure")
    if domain:
        domains = [act.parse_domain(spec, inputs_per_domain, heldout) for spec in domain]
    else:
        domains = act.default_domains(inputs_per_domain, heldout)
    if prune_calibration:
        if len(domains) < 2:
            raise MutascopeError("--prune-calibration needs at least two domains")
        act.check_heldout(domains)
    pair_set = None
    if semantic_pairs:
        pair_set = act.read_pairs(pairs) if pairs is not None else act.shipped_pairs()
        pair_set = pair_set[:max_pairs] if max_pairs else pair_set
    text = None
    if prune_sparsity:
        from ..superweights.evaluate import read_corpus

        text = read_corpus(corpus)
    if screen is not None and not screen.is_file():
        raise MutascopeError(f"--screen {screen}: not found")
    subject = load_subject(model, dtype, device)

    status = err.status("activation maps ...")
    with status:
        acc, inputs = act.collect(
            subject, domains, max_tokens=max_tokens, similarity_inputs=similarity_inputs,
            progress=lambda done, total: status.update(f"activation maps: input {done}/{total} ..."),
        )
        status.update("statistics ...")
        fractions = acc.fractions(gammas)
        similarity = acc.similarity()
        found = act.findings(fractions, similarity)
        tiles = act.tile_frame(acc, size)
    tables = {"activation_inputs": inputs, "activation_fractions": fractions, "activation_similarity": similarity,
              "activation_pairs": acc.pairs(), "activation_findings": found, "activation_tiles": tiles}
    _print_fractions(fractions, gammas)
    _print_similarity(similarity)
    _print_findings(found)

    if screen is not None:
        rates = act.screen_nsm_rates(screen, tile=size, model_hash=subject.content_hash())
        corr, _ = act.screen_correlation(tiles, rates)
        tables["activation_screen"] = corr
        _print_screen(corr)

    result = transfer = semantic = None
    if prune_sparsity:
        from ..superweights.evaluate import corpus_ids

        counts = acc.layer_counts(prune_gamma)
        domain_counts = {d.name: acc.layer_counts(prune_gamma, d.name) for d in domains} if prune_calibration else {}
        del acc  # the sums and kept maps are not needed for pruning; free them first
        calibration = [act.encode(subject, t, max_tokens) for d in domains for t in d.texts]
        eval_ids = corpus_ids(subject, text, corpus_tokens)
        with err.status("pruning ...") as st:
            result = act.compare_pruning(subject, counts, calibration, eval_ids, sparsity=prune_sparsity,
                                         alpha=alpha, beta=beta, window=window,
                                         progress=lambda name: st.update(f"pruning: {name} ..."))
        tables["pruning_layers"] = result.layers.frame()
        tables["pruning_perplexity"] = result.frame()
        _print_pruning(result, prune_gamma)

    if prune_calibration:
        with err.status("calibration transfer ...") as st:
            transfer = act.calibration_transfer(
                subject, domains, domain_counts, sparsity=prune_sparsity, alpha=alpha, beta=beta,
                max_tokens=max_tokens, window=window, progress=lambda msg: st.update(f"calibration transfer: {msg} ..."))
        summary = transfer.summary()
        tables["activation_calibration_transfer"] = transfer.frame()
        tables["activation_calibration_summary"] = summary
        tables["activation_calibration_layers"] = transfer.layers
        _print_transfer(transfer.frame(), summary)

    if pair_set is not None:
        from ..activation.pairs import cosine_frame, depth_summary, pair_cosines, semantic_correlation

        status = err.status("semantic pairs ...")
        with status:
            cosines = pair_cosines(subject, pair_set, max_tokens=max_tokens,
                                   progress=lambda done, total: status.update(f"semantic pairs: {done}/{total} ..."))
        semantic = semantic_correlation(cosines, [p.score for p in pair_set], permutations=permutations)
        tables["activation_semantic_pairs"] = semantic
        tables["activation_semantic_cosines"] = cosine_frame(pair_set, cosines)
        _print_semantic(semantic, depth_summary(semantic))

    if out_file is not None:
        settings = dict(domains={d.name: d.source for d in domains}, inputs_per_domain=inputs_per_domain,
                        prune_calibration=prune_calibration, heldout=heldout if prune_calibration else None,
                        pairs=(str(pairs) if pairs else "shipped") if semantic_pairs else None,
                        n_pairs=len(pair_set) if pair_set else None, permutations=permutations if semantic_pairs else None,
                        max_tokens=max_tokens, gammas=list(gammas), similarity_inputs=similarity_inputs,
                        tile=list(size), screen=str(screen) if screen else None, prune_sparsity=prune_sparsity,
                        prune_gamma=prune_gamma, alpha=alpha, beta=beta, corpus=str(corpus or "shipped"),
                        corpus_tokens=corpus_tokens, window=window)
        from ..activation.store import run_frame, write_tables

        tables["activation_runs"] = run_frame(subject, settings)
        write_tables(out_file, tables)
        out.print(f"tables written to {out_file}")
    if figures is not None:
        from ..activation.figures import write_figures

        paths = write_figures(figures, fractions, similarity, result.layers.frame() if result else None,
                              transfer.frame() if transfer else None, semantic)
        out.print(f"figures: {', '.join(str(p) for p in paths)}")


def _print_transfer(frame, summary) -> None:
    import pandas as pd

    from ..activation.transfer import DENSE

    dense = frame[frame["method"] == DENSE].set_index("eval_domain")
    evals = list(dense.index)
    mc = frame["accuracy"].notna().any()
    for method, part in frame[frame["method"] != DENSE].groupby("method", sort=False):
        table = Table(title=f"{method} Wanda: held-out perplexity{' / accuracy' if mc else ''} "
                            "(rows: calibrated on; [ ] the diagonal)")
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
        lines.append(f"{r.method}: the diagonal wins on {r.n_wins}/{r.n_domains} domains; models calibrated on "
                     f"another domain have {abs(100 * r.advantage):.1f} % {'higher' if r.advantage >= 0 else 'lower'} "
                     "held-out perplexity than the one calibrated on the domain itself (geometric mean)")
    out.print("\n".join(lines))


def _row(frame, key):
    """One row of an indexed frame as a namedtuple-like object."""
    import types

    return types.SimpleNamespace(**frame.loc[key].to_dict())


def _print_semantic(table, depth) -> None:
    view = Table(title=f"semantic pairs: Spearman of pattern cosine vs score by layer ({int(table['n_pairs'].iloc[0])} "
                       f"pairs, {int(table['permutations'].iloc[0])} permutations)")
    for col in ("layer", "rho", "p", "mean cosine"):
        view.add_column(col, justify="right")
    for r in table.itertuples():
        view.add_row(str(r.layer), f"{r.spearman_rho:.3f}", f"{r.p_value:.3g}", f"{r.cosine_mean:.3f}")
    out.print(view)
    shallow, deep = depth
    out.print(f"mean rho: shallow third {shallow:.3f}, deep third {deep:.3f} "
              f"(the paper: higher in deep layers) -> {'deep higher' if deep > shallow else 'deep not higher'}")


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
    labels = list(dict.fromkeys(
        (a, b) for a, b in zip(similarity["domain_a"], similarity["domain_b"]) if a not in ("within", "across")
    )) + [(x, x) for x in ("within", "across") if (similarity["domain_a"] == x).any()]
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
        table.add_row(r.metric, f"{r.shallow_mean:.4g}", f"{r.deep_mean:.4g}", f"{r.spearman_vs_depth:.3f}",
                      "yes" if r.shallow_gt_deep else "no")
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
    out.print(f"layer-wise sparsities from N_i at gamma={gamma:g}{note}: "
              + " ".join(f"{s:.3f}" for s in lay.sparsities) + f"  (mean {sum(lay.sparsities) / len(lay.sparsities):.4f})")
    table = Table(title="Wanda pruning: perplexity")
    for col in ("model", "target sparsity", "sparsity of matrices", "perplexity"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, target, realised, ppl in result.rows:
        table.add_row(name, f"{target:.3f}", f"{realised:.4f}", f"{ppl:.4g}")
    out.print(table)
