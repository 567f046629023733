"""The one list of a screen's statistics: what each computes, on which unit, in which
family, with which test, and how it is said in words.

``mutascope analyze`` stores every table of :data:`STATISTICS` (as
``analysis_<name>``), the report shows them in this order with their
one-line description, and the findings are the sentences of their
significant rows. A new statistic is one module plus one entry here.

Most statistics come in three readouts (:mod:`.readouts`): the paper's NSM call,
the effect size, and the effect beyond the activation baseline (the residual,
where the screen has predictions). :func:`_both` makes the entries of one
implementation (named ``<name>``, ``effect_<name>`` and ``residual_<name>``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from ..predict.agreement import agreement
from . import sentences as say
from .bias import bias, bias_size, size_matched
from .copa import copa, copa_by_type
from .counts import nsm_counts
from .enrichment import enrichment
from .layers import bias_by_type
from .overlap import overlap
from .readouts import with_residual
from .recurrence import recurrence, recurrent_axes
from .reorder import reorder_holdout, reorder_holdout_by_type, reordered_table
from .saturation import saturation
from .severity import severity_distribution
from .superweight_tiles import superweight_summary, superweight_tiles
from .writers import writer_groups


@dataclass
class Context:
    """What a statistic may read: the site frame, the options, and the tables before it.

    ``scope``, when set, limits the permutation statistics (COPA) to those
    (layer, matrix) pairs: the report's bound on a full-genome screen.
    """

    frame: pd.DataFrame
    alpha: float = 0.05
    n_perm: int = 999
    effect: str = "logprob_drop"
    marks: pd.DataFrame | None = None
    predictions: pd.DataFrame | None = None
    probes: pd.DataFrame | None = None
    scope: dict[str, list[tuple[int, str]]] | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    def scoped(self, name: str) -> pd.DataFrame:
        """The frame, restricted to ``scope[name]`` when the scope names this statistic."""
        if not self.scope or name not in self.scope:
            return self.frame
        keys = pd.MultiIndex.from_tuples(self.scope[name], names=["layer", "matrix"]) if self.scope[name] else None
        if keys is None:
            return self.frame.iloc[0:0]
        return self.frame[pd.MultiIndex.from_frame(self.frame[["layer", "matrix"]]).isin(keys)]


@dataclass(frozen=True)
class Statistic:
    """One table of the analysis."""

    name: str
    title: str
    unit: str
    family: str
    test: str
    compute: Callable[[Context], pd.DataFrame]
    # "phenotypes", "superweights", "predictions", "probes" (two or more), "residual" (a baseline), or "" (always)
    needs: str = ""
    sentences: Callable[[pd.DataFrame, Context], list[str]] | None = None
    effect_scale: bool = False  # carries effect sizes: the probes' WT length and likelihood are joined

    def describe(self) -> str:
        """The table's unit, family and test in one line."""
        return f"analysis_{self.name}: unit: {self.unit}; family: {self.family}; test: {self.test}"


def _both(name, title, unit, family, test, compute, sentences=None, needs="", effect_test=None):
    """The NSM, the effect and the residual entries of one statistic (``compute(ctx, readout)``);
    the residual one (named ``residual_<name>``) only where the screen has a baseline."""
    effect_test = effect_test or test

    def said(readout):
        if sentences is None:
            return None
        if readout == "residual":
            return lambda t, c: say.beyond_baseline(sentences(t, c, readout))
        return lambda t, c: sentences(t, c, readout)

    return [
        Statistic(name, title, unit, family, test, lambda c: compute(c, "nsm"), needs, said("nsm")),
        Statistic(
            f"effect_{name}",
            f"{title} (effect size)",
            unit,
            family,
            effect_test,
            lambda c: compute(c, "effect"),
            needs,
            said("effect"),
            effect_scale=True,
        ),
        Statistic(
            f"residual_{name}",
            f"{title} (beyond the activation baseline)",
            unit,
            family,
            f"{effect_test}, on the rank residual of the effect on the baseline",
            lambda c: compute(c, "residual"),
            "residual" if needs == "" else needs,
            said("residual"),
            effect_scale=True,
        ),
    ]


def _prefix(readout: str) -> str:
    return {"nsm": "", "effect": "effect_", "residual": "residual_"}[readout]


STATISTICS: list[Statistic] = [
    Statistic(
        "counts",
        "Counts",
        "mutant",
        "none (description)",
        "NSM rate with a Clopper-Pearson 95 % interval; median effect with an order-statistic 95 % interval",
        lambda c: nsm_counts(c.frame),
        effect_scale=True,
    ),
    Statistic(
        "counts_by_matrix",
        "Counts by matrix type",
        "mutant",
        "none (description)",
        "as counts, pooled over layers",
        lambda c: nsm_counts(c.frame, by=("probe_id", "matrix", "kind")),
        effect_scale=True,
    ),
    Statistic(
        "counts_by_kind",
        "Kinds and controls",
        "mutant",
        "none (description)",
        "as counts, pooled over matrices: the noise floor (noise:X), matched-norm random tiles, sym:X doses",
        lambda c: nsm_counts(c.frame, by=("probe_id", "kind")),
        sentences=say.controls,
        effect_scale=True,
    ),
    Statistic(
        "saturation",
        "Saturation of the NSM call",
        "probe x matrix",
        "none (description)",
        "NSM rate of max/min above 0.9 or below 0.1",
        lambda c: saturation(c.frame),
    ),
    *_both(
        "bias",
        "Max/min bias",
        "tile (its two kinds are one paired observation)",
        "every matrix of a probe, per kind pair",
        "McNemar, exact, two-sided",
        lambda c, r: bias(c.frame, c.alpha, readout=r),
        say.bias,
        effect_test="Wilcoxon signed-rank, exact, two-sided",
    ),
    *_both(
        "size_matched",
        "Max/min bias against its size-matched pair",
        "tile (its max - min and sym:x - sym:-x differences are one paired observation)",
        "every matrix of a probe, per size-matched pair",
        "Wilcoxon signed-rank of (max - min) - (sym:x - sym:-x) of the 0/1 calls, exact, two-sided",
        lambda c, r: size_matched(c.frame, c.alpha, readout=r),
        say.size_matched,
        effect_test="Wilcoxon signed-rank of (max - min) - (sym:x - sym:-x), exact, two-sided",
    ),
    *_both(
        "bias_size",
        "Bias against the size of the written value",
        "matrix",
        "one test per probe and kind pair",
        "exact binomial of calls towards/against the larger |value|; Spearman with log(|max|/|min|), permutation",
        lambda c, r: bias_size(c.tables[f"{_prefix(r)}bias"]),
        say.bias_size,
    ),
    *_both(
        "bias_by_type",
        "Bias per matrix type over layers",
        "layer",
        "every matrix type x kind pair x probe",
        "sign test over layers against an AR(1) across layers (r: own lag-1 or the family's bound), two-sided",
        lambda c, r: bias_by_type(c.tables[f"{_prefix(r)}bias"]),
        say.by_type,
    ),
    *_both(
        "enrichment",
        "Row and column enrichment",
        "tile (kinds reduced to one score)",
        "every axis of every matrix of a probe",
        "stratified rank sum (rows permuted within columns, and vice versa), exact, one-sided",
        lambda c, r: enrichment(c.frame, r, c.alpha),
        say.enrichment,
    ),
    *_both(
        "recurrent_axes",
        "Axes enriched in several probes",
        "axis",
        "none (a list of the enrichment's hits)",
        "q below the FDR in at least two probes",
        lambda c, r: recurrent_axes(c.tables[f"{_prefix(r)}enrichment"]),
    ),
    *_both(
        "recurrence",
        "Recurrence across probes",
        "axis",
        "every pair of probes",
        "shared hits against a matrix x axis stratified hypergeometric null, exact, one-sided",
        lambda c, r: recurrence(c.tables[f"{_prefix(r)}enrichment"]),
        say.recurrence,
        needs="probes",
    ),
    *_both(
        "copa",
        "COPA (complementary max/min patterns)",
        "axis profile of a matrix",
        "every matrix x axis of a probe",
        "Pearson r of max and min profiles; whole tiles (max and min together) permuted within columns "
        "(rows), permutations chosen from the family, one-sided (negative)",
        lambda c, r: copa(c.scoped(f"{_prefix(r)}copa"), n_perm=c.n_perm, readout=r, alpha=c.alpha),
    ),
    *_both(
        "copa_by_type",
        "COPA per matrix type over layers",
        "layer",
        "every matrix type x axis x probe",
        "sign test of the COPA r's excess over its null, over layers, against an AR(1) across layers, two-sided",
        lambda c, r: copa_by_type(c.tables[f"{_prefix(r)}copa"]),
        say.copa_by_type,
    ),
    Statistic(
        "overlap",
        "Cross-probe overlap",
        "mutant",
        "every pair of probes",
        "Jaccard with its independence baseline (stratified by matrix) and maximum; phi; odds ratio "
        "(Woolf 95 % interval); Fisher exact",
        lambda c: overlap(c.frame),
        "probes",
        say.overlap,
    ),
    Statistic(
        "reordered_gate",
        "Re-ordered gate, cross-validated",
        "tile",
        "none (the view behind the figure)",
        "order learnt on the other probe (or the other half of the tiles), shown on held-out data",
        lambda c: reordered_table(c.frame, "gate"),
    ),
    *_both(
        "reorder_holdout",
        "Held-out order of gate rows and columns",
        "layer",
        "none (per layer; tested over layers in reorder_holdout_by_type)",
        "Spearman of the learnt order's key with the held-out balance",
        lambda c, r: reorder_holdout(c.frame, "gate", r),
    ),
    *_both(
        "reorder_holdout_by_type",
        "Held-out order over layers",
        "layer",
        "every probe x axis",
        "sign test of the held-out Spearman over layers, against an AR(1) across layers, two-sided",
        lambda c, r: reorder_holdout_by_type(c.tables[f"{_prefix(r)}reorder_holdout"]),
        say.holdout,
    ),
    Statistic(
        "severity",
        "Severity",
        "filled NSM",
        "none (description)",
        "NSMs per similarity band",
        lambda c: severity_distribution(c.frame),
        "phenotypes",
    ),
    Statistic(
        "writers",
        "Writer groups",
        "filled NSM",
        "every group x axis of every probe",
        "top shared row/column against draws with the group's matrix-type composition, Monte Carlo "
        "(draws chosen from the family), one-sided",
        lambda c: writer_groups(c.frame, n_draws=c.n_perm, alpha=c.alpha),
        "phenotypes",
        say.writers,
    ),
    Statistic(
        "superweight_tiles",
        "Super-weight tiles",
        "axis",
        "none (ranks; tested in superweight_summary)",
        "median effect and NSM rate ranked among the axes of the matrix",
        lambda c: superweight_tiles(c.frame, c.marks, c.tables.get("effect_enrichment")),
        "superweights",
    ),
    Statistic(
        "superweight_summary",
        "Super-weight axes over layers",
        "layer",
        "every matrix x axis x role x channel of a probe (controls included), BH",
        "layers where the marked axis ranks first, against a uniform rank, one-sided, referred to a latent "
        "AR(1) across layers (r: own lag-1 or the family's bound; Poisson-binomial where none); "
        "a layer carries the super activation only where it is not cancelled",
        lambda c: superweight_summary(c.tables["superweight_tiles"]),
        "superweights",
        say.superweights,
    ),
    Statistic(
        "prediction_agreement",
        "Predicted against exact effects",
        "tile (bootstrap unit)",
        "none (description with intervals)",
        "Spearman with the effect, ROC AUC for the NSM call, recall of the exact top 1 % and 10 %; "
        "95 % percentile bootstrap over tiles (a tile's kinds together, 200 resamples)",
        lambda c: agreement(c.frame, c.predictions),
        "predictions",
        say.agreement,
    ),
]


def available(stat: Statistic, ctx: Context) -> bool:
    """Whether ``stat`` can be computed for this screen (phenotypes, super weights, probes)."""
    if stat.needs == "phenotypes":
        return {"severity", "first_word", "category"} <= set(ctx.frame.columns)
    if stat.needs == "superweights":
        return ctx.marks is not None
    if stat.needs == "predictions":
        return ctx.predictions is not None and "effect" in ctx.frame.columns
    if stat.needs == "probes":
        if stat.name.startswith("residual_") and not has_residual(ctx.frame):
            return False
        return ctx.frame["probe_id"].nunique() >= 2 if len(ctx.frame) else False
    if stat.needs == "residual":
        return has_residual(ctx.frame)
    return True


def has_residual(frame: pd.DataFrame) -> bool:
    """Whether the site frame carries the residual readout (a screen with predictions)."""
    return "residual" in frame.columns and bool(frame["residual"].notna().any())


def compute_all(ctx: Context, progress: Callable[[str], None] | None = None) -> dict[str, pd.DataFrame]:
    """Every available statistic, in order (later ones may read earlier tables). A frame without a
    ``residual`` column gets one from ``ctx.predictions`` (:func:`~.readouts.with_residual`)."""
    if ctx.predictions is not None and "residual" not in ctx.frame.columns and len(ctx.frame):
        ctx.frame = with_residual(ctx.frame, ctx.predictions)
    for stat in STATISTICS:
        if not available(stat, ctx):
            continue
        if progress:
            progress(stat.name)
        table = stat.compute(ctx)
        if stat.effect_scale and ctx.probes is not None and "probe_id" in table.columns and len(table):
            table = table.merge(ctx.probes, on="probe_id", how="left")
        ctx.tables[stat.name] = table
    return ctx.tables


def by_name(name: str) -> Statistic:
    return next(s for s in STATISTICS if s.name == name)
