"""One activation run, as ``mutascope activation`` does it: check, map, measure, prune, keep.

:func:`run` checks every setting and output path before the model loads,
then maps the domains' activation patterns, computes the statistics, and
(as the settings ask) correlates the tiles with a screen, prunes, runs the
calibration transfer and the semantic pairs, writes the tables and the
figures. Each result is handed to ``show(name, value)`` as soon as it exists,
so a caller can print it while the rest runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..evaluate import corpus_ids, read_corpus
from ..files.outputs import check_output_dir, check_output_file
from ..plan.parse import parse_tile
from ..progress import Show, Status, listeners
from ..store import check_tables_file
from .figures import FIGURES, write_figures
from .gradients import encode
from .inputs import default_domains, parse_domain
from .pairs import cosine_frame, depth_summary, pair_cosines, read_pairs, semantic_correlation, shipped_pairs
from .pruning import compare_pruning
from .stats import collect, findings, parse_gammas
from .store import run_frame, write_tables
from .tiles import screen_correlation, screen_nsm_rates, tile_frame
from .transfer import calibration_transfer, check_heldout


@dataclass
class Settings:
    """What ``mutascope activation`` takes (its options, by the same names)."""

    domain: Sequence[str] | None = None
    model: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    inputs_per_domain: int = 8
    max_tokens: int = 128
    gamma: Sequence[str] | None = None
    similarity_inputs: int = 8
    tile: str = "64"
    screen: Path | None = None
    prune_sparsity: float = 0.5
    prune_gamma: float = 2e-6
    alpha: float = 2.0
    beta: float = 0.2
    corpus: Path | None = None
    corpus_tokens: int = 1024
    window: int = 256
    prune_calibration: bool = False
    heldout: int = 8
    semantic_pairs: bool = False
    pairs: Path | None = None
    max_pairs: int | None = None
    permutations: int = 1000
    out_file: Path | None = None
    figures: Path | None = None


@dataclass
class Result:
    """What a run computed: every table by name, and the figures it wrote."""

    tables: dict = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)


def run(settings: Settings, load: Callable, *, status: Status | None = None, show: Show | None = None) -> Result:
    """Map, measure and prune as ``settings`` say; the model is loaded (``load(model, dtype,
    device)``) only after every setting and output path has been checked."""
    s = settings
    say, tell = listeners(status, show)
    size = parse_tile(s.tile)
    gammas = parse_gammas(s.gamma)
    if s.prune_sparsity:
        if not 0 < s.prune_sparsity < 1:
            raise InputError(f"--prune-sparsity must be in [0, 1), got {s.prune_sparsity}")
        gammas = tuple(sorted(set(gammas) | {s.prune_gamma}))
    if s.inputs_per_domain < 1:
        raise InputError(f"--inputs-per-domain must be >= 1, got {s.inputs_per_domain}")
    if s.heldout < 1:
        raise InputError(f"--heldout must be >= 1, got {s.heldout}")
    if s.prune_calibration and not s.prune_sparsity:
        raise InputError("--prune-calibration prunes: give a --prune-sparsity in (0, 1), not 0")
    semantic_pairs = s.semantic_pairs or s.pairs is not None
    if s.max_pairs is not None and s.max_pairs < 3:
        raise InputError(f"--max-pairs must be >= 3 (a rank correlation), got {s.max_pairs}")
    if s.permutations < 1:
        raise InputError(f"--permutations must be >= 1, got {s.permutations}")
    inputs = [p for p in (s.corpus, s.pairs, s.screen) if p is not None]
    if s.out_file is not None:
        check_tables_file(s.out_file, inputs=[p for p in inputs if p is not s.screen])
    if s.figures is not None:
        check_output_dir(s.figures, inputs=inputs, what="--figures directory")
        if s.out_file is not None and s.figures.resolve() == s.out_file.resolve():
            raise InputError(f"--figures {s.figures} is the --out file; give a directory")
        for name in FIGURES.values():
            check_output_file(s.figures / name, what="figure")
    if s.domain:
        domains = [parse_domain(spec, s.inputs_per_domain, s.heldout) for spec in s.domain]
    else:
        domains = default_domains(s.inputs_per_domain, s.heldout)
    if s.prune_calibration:
        if len(domains) < 2:
            raise InputError("--prune-calibration needs at least two domains")
        check_heldout(domains)
    pair_set = None
    if semantic_pairs:
        pair_set = read_pairs(s.pairs) if s.pairs is not None else shipped_pairs()
        pair_set = pair_set[: s.max_pairs] if s.max_pairs else pair_set
    text = read_corpus(s.corpus) if s.prune_sparsity else None
    if s.screen is not None and not s.screen.is_file():
        raise InputError(f"--screen {s.screen}: not found")
    short = [f"{d.name} ({len(d.texts)})" for d in domains if len(d.texts) < s.inputs_per_domain]
    if short:  # said once every setting is checked, so a refusal stays one line
        tell("note", f"--inputs-per-domain {s.inputs_per_domain}: fewer inputs available, all used: {', '.join(short)}")
    subject = load(s.model, s.dtype, s.device)

    say("activation maps ...")
    acc, input_table = collect(
        subject,
        domains,
        max_tokens=s.max_tokens,
        similarity_inputs=s.similarity_inputs,
        progress=lambda done, total: say(f"activation maps: input {done}/{total} ..."),
    )
    say("statistics ...")
    fractions = acc.fractions(gammas)
    similarity = acc.similarity()
    found = findings(fractions, similarity)
    tiles = tile_frame(acc, size)
    out = Result(
        {
            "activation_inputs": input_table,
            "activation_fractions": fractions,
            "activation_similarity": similarity,
            "activation_pairs": acc.pairs(),
            "activation_findings": found,
            "activation_tiles": tiles,
        }
    )
    tell("fractions", (fractions, gammas))
    tell("similarity", similarity)
    tell("findings", found)

    if s.screen is not None:
        rates = screen_nsm_rates(s.screen, tile=size, model_hash=subject.content_hash())
        corr, _ = screen_correlation(tiles, rates)
        out.tables["activation_screen"] = corr
        tell("screen", corr)

    result = transfer = semantic = None
    if s.prune_sparsity:
        counts = acc.layer_counts(s.prune_gamma)
        domain_counts = (
            {d.name: acc.layer_counts(s.prune_gamma, d.name) for d in domains} if s.prune_calibration else {}
        )
        del acc  # the sums and kept maps are not needed for pruning; free them first
        calibration = [encode(subject, t, s.max_tokens) for d in domains for t in d.texts]
        eval_ids = corpus_ids(subject, text, s.corpus_tokens)
        say("pruning ...")
        result = compare_pruning(
            subject,
            counts,
            calibration,
            eval_ids,
            sparsity=s.prune_sparsity,
            alpha=s.alpha,
            beta=s.beta,
            window=s.window,
            progress=lambda name: say(f"pruning: {name} ..."),
        )
        out.tables["pruning_layers"] = result.layers.frame()
        out.tables["pruning_perplexity"] = result.frame()
        tell("pruning", (result, s.prune_gamma))

    if s.prune_calibration:
        say("calibration transfer ...")
        transfer = calibration_transfer(
            subject,
            domains,
            domain_counts,
            sparsity=s.prune_sparsity,
            alpha=s.alpha,
            beta=s.beta,
            max_tokens=s.max_tokens,
            window=s.window,
            progress=lambda msg: say(f"calibration transfer: {msg} ..."),
        )
        summary = transfer.summary()
        out.tables["activation_calibration_transfer"] = transfer.frame()
        out.tables["activation_calibration_summary"] = summary
        out.tables["activation_calibration_layers"] = transfer.layers
        tell("transfer", (transfer.frame(), summary))

    if pair_set is not None:
        say("semantic pairs ...")
        cosines = pair_cosines(
            subject,
            pair_set,
            max_tokens=s.max_tokens,
            progress=lambda done, total: say(f"semantic pairs: {done}/{total} ..."),
        )
        semantic = semantic_correlation(cosines, [p.score for p in pair_set], permutations=s.permutations)
        out.tables["activation_semantic_pairs"] = semantic
        out.tables["activation_semantic_cosines"] = cosine_frame(pair_set, cosines)
        tell("semantic", (semantic, depth_summary(semantic)))

    if s.out_file is not None:
        recorded = dict(
            domains={d.name: d.source for d in domains},
            inputs_per_domain=s.inputs_per_domain,
            prune_calibration=s.prune_calibration,
            heldout=s.heldout if s.prune_calibration else None,
            pairs=(str(s.pairs) if s.pairs else "shipped") if semantic_pairs else None,
            n_pairs=len(pair_set) if pair_set else None,
            permutations=s.permutations if semantic_pairs else None,
            max_tokens=s.max_tokens,
            gammas=list(gammas),
            similarity_inputs=s.similarity_inputs,
            tile=list(size),
            screen=str(s.screen) if s.screen else None,
            prune_sparsity=s.prune_sparsity,
            prune_gamma=s.prune_gamma,
            alpha=s.alpha,
            beta=s.beta,
            corpus=str(s.corpus or "shipped"),
            corpus_tokens=s.corpus_tokens,
            window=s.window,
        )
        out.tables["activation_runs"] = run_frame(subject, recorded)
        write_tables(s.out_file, out.tables)
    if s.figures is not None:
        out.figures = write_figures(
            s.figures,
            fractions,
            similarity,
            result.layers.frame() if result else None,
            transfer.frame() if transfer else None,
            semantic,
        )
    return out
