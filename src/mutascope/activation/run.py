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
from ..model.subject import Subject
from ..progress import Show, Status, listeners
from ..store import check_tables_file
from .figures import FIGURES, write_figures
from .gradients import encode
from .inputs import Domain, default_domains, parse_domain
from .pairs import Pair, cosine_frame, depth_summary, pair_cosines, read_pairs, semantic_correlation, shipped_pairs
from .pruning import PruneResult, compare_pruning
from .stats import DEFAULT_GAMMAS, ActivationAccumulator, collect, findings
from .store import run_frame, write_tables
from .tiles import screen_correlation, screen_nsm_rates, tile_frame
from .transfer import TransferResult, calibration_transfer, check_heldout


@dataclass
class Settings:
    """What ``mutascope activation`` takes (its options, by the same names), parsed: the command
    turns ``--tile 64`` into ``(64, 64)`` and ``--gamma 2e-6,2e-5`` into floats, so a library caller
    passes values, not option strings. Domains stay specs (``NAME=FILE``): reading them is work."""

    domain: Sequence[str] = ()  # NAME=FILE or NAME=mmlu:DIR:SUBJECT[:5]; empty: the shipped domains
    model: str | None = None
    dtype: str = "float32"
    device: str = "cpu"
    inputs_per_domain: int = 8
    max_tokens: int = 128
    gamma: tuple[float, ...] = DEFAULT_GAMMAS  # ascending (parse_gammas)
    similarity_inputs: int = 8
    tile: tuple[int, int] = (64, 64)  # (parse_tile)
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


@dataclass
class _Inputs:
    """What a run reads before the model loads: domains, sentence pairs, the perplexity corpus."""

    domains: list[Domain]
    pairs: list[Pair] | None
    corpus: str | None


def run(settings: Settings, load: Callable, *, status: Status | None = None, show: Show | None = None) -> Result:
    """Map, measure and prune as ``settings`` say; the model is loaded (``load(model, dtype,
    device)``) only after every setting and output path has been checked."""
    s = settings
    say, tell = listeners(status, show)
    gammas = tuple(sorted(set(s.gamma) | {s.prune_gamma})) if s.prune_sparsity else tuple(s.gamma)
    _check_settings(s)
    inputs = _read_inputs(s)
    short = [f"{d.name} ({len(d.texts)})" for d in inputs.domains if len(d.texts) < s.inputs_per_domain]
    if short:  # said once every setting is checked, so a refusal stays one line
        tell("note", f"--inputs-per-domain {s.inputs_per_domain}: fewer inputs available, all used: {', '.join(short)}")
    subject = load(s.model, s.dtype, s.device)

    acc, out = _map(s, subject, inputs.domains, gammas, say, tell)
    pruned = transfer = semantic = None
    if s.prune_sparsity:
        counts = acc.layer_counts(s.prune_gamma)
        domain_counts = (
            {d.name: acc.layer_counts(s.prune_gamma, d.name) for d in inputs.domains} if s.prune_calibration else {}
        )
        del acc  # the sums and kept maps are not needed for pruning; free them first
        pruned = _prune(s, subject, inputs, counts, out, say, tell)
        if s.prune_calibration:
            transfer = _transfer(s, subject, inputs.domains, domain_counts, out, say, tell)
    if inputs.pairs is not None:
        semantic = _semantic(s, subject, inputs.pairs, out, say, tell)
    if s.out_file is not None:
        out.tables["activation_runs"] = run_frame(subject, _recorded(s, inputs, gammas))
        write_tables(s.out_file, out.tables)
    if s.figures is not None:
        out.figures = write_figures(
            s.figures,
            out.tables["activation_fractions"],
            out.tables["activation_similarity"],
            pruned.layers.frame() if pruned else None,
            transfer.frame() if transfer else None,
            semantic,
        )
    return out


def _check_settings(s: Settings) -> None:
    """Refuse bad settings and output paths in one line each, before anything is read or loaded."""
    if s.prune_sparsity and not 0 < s.prune_sparsity < 1:
        raise InputError(f"--prune-sparsity must be in [0, 1), got {s.prune_sparsity}")
    if s.inputs_per_domain < 1:
        raise InputError(f"--inputs-per-domain must be >= 1, got {s.inputs_per_domain}")
    if s.heldout < 1:
        raise InputError(f"--heldout must be >= 1, got {s.heldout}")
    if s.prune_calibration and not s.prune_sparsity:
        raise InputError("--prune-calibration prunes: give a --prune-sparsity in (0, 1), not 0")
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


def _semantic_pairs(s: Settings) -> bool:
    return s.semantic_pairs or s.pairs is not None


def _read_inputs(s: Settings) -> _Inputs:
    """Domains, pairs and corpus read (and checked) before the model loads, so a bad file costs no load."""
    if s.domain:
        domains = [parse_domain(spec, s.inputs_per_domain, s.heldout) for spec in s.domain]
    else:
        domains = default_domains(s.inputs_per_domain, s.heldout)
    if s.prune_calibration:
        if len(domains) < 2:
            raise InputError("--prune-calibration needs at least two domains")
        check_heldout(domains)
    pairs = None
    if _semantic_pairs(s):
        pairs = read_pairs(s.pairs) if s.pairs is not None else shipped_pairs()
        pairs = pairs[: s.max_pairs] if s.max_pairs else pairs
    text = read_corpus(s.corpus) if s.prune_sparsity else None
    if s.screen is not None and not s.screen.is_file():
        raise InputError(f"--screen {s.screen}: not found")
    return _Inputs(domains, pairs, text)


def _map(
    s: Settings, subject: Subject, domains: list[Domain], gammas: tuple[float, ...], say, tell
) -> tuple[ActivationAccumulator, Result]:
    """The activation maps of every input, their statistics and tile view, and the screen's
    correlation with them; the accumulator is returned for the pruning counts."""
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
    tiles = tile_frame(acc, s.tile)
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
        rates = screen_nsm_rates(s.screen, tile=s.tile, model_hash=subject.content_hash())
        corr, _ = screen_correlation(tiles, rates)
        out.tables["activation_screen"] = corr
        tell("screen", corr)
    return acc, out


def _prune(s: Settings, subject: Subject, inputs: _Inputs, counts, out: Result, say, tell) -> PruneResult:
    """Wanda, uniform and layer-wise by the activated counts, calibrated on every domain's inputs."""
    assert inputs.corpus is not None  # read whenever pruning is asked (_read_inputs)
    calibration = [encode(subject, t, s.max_tokens) for d in inputs.domains for t in d.texts]
    eval_ids = corpus_ids(subject, inputs.corpus, s.corpus_tokens)
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
    return result


def _transfer(
    s: Settings, subject: Subject, domains: list[Domain], domain_counts: dict, out: Result, say, tell
) -> TransferResult:
    """The calibration transfer: prune on each domain in turn, score every domain's held-out text."""
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
    return transfer


def _semantic(s: Settings, subject: Subject, pairs: list[Pair], out: Result, say, tell):
    """Per layer, the Spearman of the pairs' activation-pattern cosines with their similarity scores."""
    say("semantic pairs ...")
    cosines = pair_cosines(
        subject,
        pairs,
        max_tokens=s.max_tokens,
        progress=lambda done, total: say(f"semantic pairs: {done}/{total} ..."),
    )
    semantic = semantic_correlation(cosines, [p.score for p in pairs], permutations=s.permutations)
    out.tables["activation_semantic_pairs"] = semantic
    out.tables["activation_semantic_cosines"] = cosine_frame(pairs, cosines)
    tell("semantic", (semantic, depth_summary(semantic)))
    return semantic


def _recorded(s: Settings, inputs: _Inputs, gammas: tuple[float, ...]) -> dict:
    """The settings that shaped the tables, kept in ``activation_runs`` beside them."""
    semantic_pairs = _semantic_pairs(s)
    return dict(
        domains={d.name: d.source for d in inputs.domains},
        inputs_per_domain=s.inputs_per_domain,
        prune_calibration=s.prune_calibration,
        heldout=s.heldout if s.prune_calibration else None,
        pairs=(str(s.pairs) if s.pairs else "shipped") if semantic_pairs else None,
        n_pairs=len(inputs.pairs) if inputs.pairs else None,
        permutations=s.permutations if semantic_pairs else None,
        max_tokens=s.max_tokens,
        gammas=list(gammas),
        similarity_inputs=s.similarity_inputs,
        tile=list(s.tile),
        screen=str(s.screen) if s.screen else None,
        prune_sparsity=s.prune_sparsity,
        prune_gamma=s.prune_gamma,
        alpha=s.alpha,
        beta=s.beta,
        corpus=str(s.corpus or "shipped"),
        corpus_tokens=s.corpus_tokens,
        window=s.window,
    )
