"""The statistics said in words: one function per table of :mod:`.registry`.

Each returns at most :data:`LIMIT` sentences for the table's results that
survive its family's FDR (or, for descriptive tables, the number a reader
should see), naming the matrix, the axis, the probe, the sizes with their
intervals, and the q-value with its floor where that matters. Effect sizes
are given in the effect's unit and per WT token, since probes of different
lengths are not on one scale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .readouts import readout_words

LIMIT = 3
UNITS = {"logprob_drop": "nats", "logprob_drop_per_token": "nats per token"}
AXIS_WORD = {"row": "row", "col": "column"}


def beyond_baseline(sentences: list[str]) -> list[str]:
    """A residual-readout table's sentences, each marked as said beyond the activation baseline."""
    return [f"Beyond the activation baseline: {s[0].lower()}{s[1:]}" for s in sentences]


def q_text(q: float) -> str:
    return f"{q:.2g}" if q >= 1e-4 else f"{q:.1e}"


def num(x: float) -> str:
    return f"{x:.3g}"


def _hits(table: pd.DataFrame, alpha: float, column: str = "q_value") -> pd.DataFrame:
    if table is None or table.empty or column not in table.columns:
        return pd.DataFrame()
    return table[table[column].astype(float) < alpha].sort_values(column)


def _unit(ctx) -> str:
    return UNITS.get(ctx.effect, "")


def bias(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    out = []
    hits = _hits(table, ctx.alpha)
    for r in hits.head(LIMIT).itertuples() if len(hits) else ():
        big, small = (r.kind_a, r.kind_b) if r.bias == r.kind_a else (r.kind_b, r.kind_a)
        size = (
            ""
            if not np.isfinite(r.size_ratio) or r.size_ratio == 1
            else (
                f"; |{r.kind_a}|/|{r.kind_b}| = {num(r.size_ratio)}" + (f", {r.size_verdict}" if r.size_verdict else "")
            )
        )
        unit = _unit(ctx) if readout == "effect" else "(residual percentile)"
        if readout == "nsm":
            out.append(
                f"In layer {r.layer} {r.matrix}, {big} mutations are NSMs where {small} ones are not more "
                f"often for probe {r.probe_id} ({max(r.a_only, r.b_only)} against {min(r.a_only, r.b_only)} "
                f"of {r.tiles} tiles, McNemar q = {q_text(r.q_value)}{size})."
            )
        else:
            out.append(
                f"In layer {r.layer} {r.matrix}, {big} mutations have larger effects than {small} ones of the "
                f"same tiles for probe {r.probe_id} (median paired {r.kind_a} - {r.kind_b} difference "
                f"{num(r.median_difference)} {unit}, 95 % CI {num(r.ci_low)} to {num(r.ci_high)}, "
                f"over {r.tiles} tiles, q = {q_text(r.q_value)}{size})."
            )
    return out


def bias_size(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    out = []
    for r in table.itertuples() if len(table) else ():
        if r.called == 0 or r.towards_larger + r.against_larger == 0:
            continue  # a size-matched pair writes one |value|: nothing to say about size
        rho = (
            ""
            if not np.isfinite(r.spearman_size)
            else (
                f"; over the {r.matrices} matrices the bias follows log |{r.pair.replace('/', '|/|')}| with Spearman "
                f"{r.spearman_size:.2f} (permutation p = {q_text(r.p_spearman)})"
            )
        )
        out.append(
            f"Of the {r.called} {r.pair} biases called on the {readout_words(readout)} "
            f"for probe {r.probe_id}, {r.towards_larger} point to the kind writing the larger |value| and "
            f"{r.against_larger} against it (exact binomial p = {q_text(r.p_direction)}){rho}."
        )
    return out[:LIMIT]


def size_matched(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    """Per probe, how many matrices' max - min difference exceeds the size-matched one."""
    out = []
    for (probe, control), g in table.groupby(["probe_id", "control"], sort=False) if len(table) else ():
        hits = g[g["excess"] != "none"]
        towards = int((hits["excess"] == hits["larger"]).sum())
        out.append(
            f"For probe {probe}, the max - min difference of the {readout_words(readout)} differs from the "
            f"size-matched {control} difference over the tiles of {len(hits)} of {len(g)} matrices (signed rank, "
            f"q < {ctx.alpha}), {towards} of them towards the kind writing the larger |value|."
        )
    return out[:LIMIT]


def by_type(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    out = []
    hits = _hits(table, ctx.alpha)
    for r in hits.head(LIMIT).itertuples() if len(hits) else ():
        a, b = r.pair.split("/")
        lead = a if r.positive > r.negative else b
        out.append(
            f"Across layers, {r.matrix} is {lead}-biased for probe {r.probe_id} ({max(r.positive, r.negative)} "
            f"of {r.layers} layers; {r.called_against_size} called against the larger value; sign test "
            f"q = {q_text(r.q_value)})."
        )
    return out


def enrichment(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    out = []
    hits = _hits(table, ctx.alpha)
    if len(hits):
        hits = hits.sort_values(["q_value", "score"], ascending=[True, False])
    for r in hits.head(LIMIT).itertuples() if len(hits) else ():
        where = f"In layer {r.layer} {r.matrix}, tile {AXIS_WORD[r.axis]} {r.index}"
        ci = f"95 % CI {r.ci_low:.2f}-{r.ci_high:.2f}"
        score = f"mean within-stratum percentile {r.score:.2f} ({ci}) over {r.tiles} tiles"
        if readout == "nsm":
            out.append(
                f"{where} has more NSMs than its matrix for probe {r.probe_id} ({r.nsm} of {r.mutants} mutants, "
                f"{num(r.expected)} expected; {score}; q = {q_text(r.q_value)})."
            )
        else:
            out.append(
                f"{where} has larger effects than the rest of the matrix for probe {r.probe_id} (median "
                f"{num(r.median_effect)} vs {num(r.median_rest)} {_unit(ctx)}; {score}; q = {q_text(r.q_value)})."
            )
    return out


def recurrence(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    out = []
    for r in table.itertuples() if len(table) else ():
        if r.shared == 0 and r.expected == 0:
            continue  # nothing enriched in one of the two probes: nothing to compare
        out.append(
            f"{readout_words(readout).capitalize()}-enriched axes shared by {r.probe_a} and {r.probe_b}: "
            f"{r.shared} observed against {num(r.expected)} expected from their hit rates within each matrix "
            f"({num(r.ratio)}x, exact p = {q_text(r.p_value)})."
        )
    return out[:LIMIT]


def copa_by_type(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    out = []
    hits = _hits(table, ctx.alpha)
    for r in hits.head(LIMIT).itertuples() if len(hits) else ():
        side = "complementary (negative)" if r.negative > r.positive else "co-located (positive)"
        out.append(
            f"Max and min {readout_words(readout)} profiles along {r.matrix} "
            f"{AXIS_WORD[r.axis]}s are {side} for probe {r.probe_id} in {max(r.negative, r.positive)} of "
            f"{r.layers} layers (median r = {r.median:.2f}, sign test q = {q_text(r.q_value)})."
        )
    return out


def holdout(table: pd.DataFrame, ctx, readout: str) -> list[str]:
    out = []
    hits = _hits(table, ctx.alpha)
    for r in hits.head(LIMIT).itertuples() if len(hits) else ():
        out.append(
            f"Gate's {AXIS_WORD[r.axis]} order learnt on one probe (or half of the tiles) carries over to the "
            f"held-out map of {r.probe_id} in {r.positive} of {r.layers} layers (median Spearman "
            f"{r.median:.2f}, sign test q = {q_text(r.q_value)})."
        )
    return out


def overlap(table: pd.DataFrame, ctx) -> list[str]:
    out = []
    for r in table.itertuples() if len(table) else ():
        out.append(
            f"NSM sets of {r.probe_a} and {r.probe_b} overlap with Jaccard {r.jaccard:.2f}, against "
            f"{r.expected_jaccard:.2f} if independent within matrices and at most {r.max_jaccard:.2f} for "
            f"their sizes (phi {r.phi:.2f}, odds ratio {num(r.odds_ratio)} pooled over matrices, "
            f"{num(getattr(r, 'odds_ratio_mh', np.nan))} within them)."
        )
    return out[:LIMIT]


def controls(table: pd.DataFrame, ctx) -> list[str]:
    out = []
    for r in table.itertuples() if len(table) else ():
        if not str(r.kind).startswith("noise:"):
            continue
        effect = (
            ""
            if not np.isfinite(getattr(r, "median_effect", np.nan))
            else (f", median effect {num(r.median_effect)} {_unit(ctx)}")
        )
        out.append(
            f"Random {r.kind} perturbations are NSMs at rate {r.rate:.3f} (95 % CI {r.rate_low:.3f}-"
            f"{r.rate_high:.3f}, {r.mutants} mutants) for probe {r.probe_id}{effect}."
        )
    return out[:LIMIT]


def writers(table: pd.DataFrame, ctx) -> list[str]:
    out = []
    for axis in ("row", "col"):
        hits = _hits(table, ctx.alpha, f"q_{axis}")
        for r in hits.head(LIMIT).itertuples() if len(hits) else ():
            out.append(
                f"NSMs of {r.probe_id} whose output starts with {r.first_word!r} ({r.category}, {r.nsm} NSMs in "
                f"{r.matrices}) share tile {AXIS_WORD[axis]} {getattr(r, f'top_{axis}')} "
                f"({getattr(r, f'top_{axis}_count')} of them; q = {q_text(getattr(r, f'q_{axis}'))})."
            )
    return out[:LIMIT]


def superweights(table: pd.DataFrame, ctx) -> list[str]:
    """The called super-weight axes; for a called super-activation axis, also how often the same
    axis was already first before the activation exists (context for that finding only, with its
    own q: an uncalled axis gets no sentence, whatever its count before)."""
    out = []
    called = set()
    for r in table.sort_values("p_value").itertuples() if len(table) else ():
        if getattr(r, "q_value", r.p_value) >= ctx.alpha or r.role in ("before", "cancelled"):
            continue
        called.add((r.probe_id, r.matrix, r.axis, r.channel))
        out.append(
            f"The {r.matrix} {AXIS_WORD[r.axis]} tile of channel {r.channel} ({r.role}) is the most sensitive "
            f"of its matrix in {r.top_layers} of {r.layers} marked layers for probe {r.probe_id} "
            f"({num(r.expected_top)} expected by chance, q = {q_text(getattr(r, 'q_value', r.p_value))}; "
            f"median percentile {r.median_percentile:.0f})."
        )
    before = table[table["role"] == "before"] if len(table) else table
    for r in before.itertuples() if len(before) else ():
        if r.top_layers and (r.probe_id, r.matrix, r.axis, r.channel) in called:
            out.append(
                f"The same {r.matrix} {AXIS_WORD[r.axis]} tile of channel {r.channel} is already the most "
                f"sensitive in {r.top_layers} of the {r.layers} layers before its super activation exists "
                f"(probe {r.probe_id}; q = {q_text(getattr(r, 'q_value', r.p_value))})."
            )
    return out[: LIMIT + 1]


def agreement(table: pd.DataFrame, ctx) -> list[str]:
    """One sentence per probe and estimate: how well the prediction ranks the exact effects."""
    out = []
    rows = (
        table[(table["score"].isin(["predicted_abs", "local_abs"])) & (table["matrix"] == "all")]
        if len(table)
        else table
    )
    names = {
        "predicted_abs": "Predicted |effect| (first order)",
        "local_abs": "Local |effect| (exact to the first nonlinearity)",
    }
    for r in rows.itertuples() if len(rows) else ():
        part = (
            ""
            if r.mutants == r.screened
            else f" (over the {r.mutants} of {r.screened} screened mutants that have predictions)"
        )
        out.append(
            f"{names[r.score]} against the exact effect, {r.probe_id}{part}: Spearman {r.spearman:.2f} "
            f"[{r.spearman_low:.2f}, {r.spearman_high:.2f}], AUC for the NSM call {r.auc:.2f}, "
            f"its top 1 % holds {100 * r.recall_1:.0f} % of the exact top 1 % "
            f"[{100 * r.recall_1_low:.0f}, {100 * r.recall_1_high:.0f}] (1 % by chance)."
        )
    return out[: 2 * LIMIT]
