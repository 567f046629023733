"""The statistics tables, said in words: what a reader should take from a screen.

Tables hold every test; a summary should say the few results that survive
the false-discovery-rate control, in sentences a reader can check against
the tables (each sentence names the matrix, the axis, the probe, the sizes
and the q-value). Effect-size findings come first: on small models the NSM
call is often saturated and its tests find nothing.
"""

from __future__ import annotations

import pandas as pd

from .saturation import HIGH, LOW

UNITS = {"logprob_drop": "nats", "logprob_drop_per_token": "nats per token"}
AXIS_WORD = {"row": "row", "col": "column"}


def _q(q: float) -> str:
    return f"{q:.2g}" if q >= 1e-4 else f"{q:.1e}"


def _num(x: float) -> str:
    return f"{x:.3g}"


def _hits(table: pd.DataFrame | None, alpha: float, column: str = "q_value") -> pd.DataFrame:
    if table is None or table.empty or column not in table.columns:
        return pd.DataFrame()
    return table[table[column].astype(float) < alpha]


def findings(tables: dict[str, pd.DataFrame], alpha: float = 0.05, effect: str = "logprob_drop",
             limit: int = 3) -> list[str]:
    """Sentences for the strongest results below ``alpha`` (at most ``limit`` of each kind)."""
    unit = UNITS.get(effect, "")
    out: list[str] = []

    hits = _hits(tables.get("effect_enrichment"), alpha)
    if len(hits):
        hits = hits.assign(_ratio=hits["median_effect"] / hits["median_rest"].abs().clip(lower=1e-12))
        for r in hits.sort_values(["q_value", "_ratio"], ascending=[True, False]).head(limit).itertuples():
            out.append(
                f"In layer {r.layer} {r.matrix}, tile {AXIS_WORD[r.axis]} {r.index} has larger effects than the rest "
                f"of the matrix for probe {r.probe_id} (median {_num(r.median_effect)} vs {_num(r.median_rest)} "
                f"{unit}, q = {_q(r.q_value)}).")

    hits = _hits(tables.get("effect_bias"), alpha)
    for r in hits.sort_values("q_value").head(limit).itertuples() if len(hits) else ():
        big, small = ("max", "min") if r.bias == "max" else ("min", "max")
        out.append(
            f"In layer {r.layer} {r.matrix}, {big} mutations have larger effects than {small} mutations of the same "
            f"tiles for probe {r.probe_id} (median paired max - min difference {_num(r.median_difference)} {unit} "
            f"over {r.pairs} tiles, q = {_q(r.q_value)}).")

    hits = _hits(tables.get("effect_copa"), alpha)
    for r in hits.sort_values("q_value").head(limit).itertuples() if len(hits) else ():
        out.append(
            f"In layer {r.layer} {r.matrix}, max and min effects occupy complementary {AXIS_WORD[r.axis]}s for probe "
            f"{r.probe_id} (COPA r = {r.copa:.2f}, q = {_q(r.q_value)}).")

    rec = tables.get("effect_recurrent_axes")
    if rec is not None and len(rec):
        for r in rec.head(limit).itertuples():
            out.append(f"Layer {r.layer} {r.matrix} tile {AXIS_WORD[r.axis]} {r.index} has larger effects than the "
                       f"rest of its matrix in {r.probes} probes ({r.probe_ids.replace(',', ', ')}).")

    hits = _hits(tables.get("enrichment"), alpha)
    for r in hits.sort_values("q_value").head(limit).itertuples() if len(hits) else ():
        out.append(
            f"In layer {r.layer} {r.matrix}, tile {AXIS_WORD[r.axis]} {r.index} has more NSMs than the matrix's rate "
            f"for probe {r.probe_id} ({r.nsm} of {r.mutants} mutants, {_num(r.expected)} expected, q = {_q(r.q_value)}).")

    hits = _hits(tables.get("bias"), alpha)
    for r in hits.sort_values("q_value").head(limit).itertuples() if len(hits) else ():
        out.append(
            f"In layer {r.layer} {r.matrix}, NSMs come mostly from {r.bias} mutations for probe {r.probe_id} "
            f"({r.max_nsm} max vs {r.min_nsm} min NSMs, q = {_q(r.q_value)}).")

    sw = tables.get("superweight_tiles")
    if sw is not None and len(sw) and sw["effect_percentile"].notna().any():
        best = sw.sort_values(["effect_percentile", "effect_q_value"], ascending=[False, True]).iloc[0]
        share = float((sw["effect_percentile"].dropna() >= 90).mean())
        q = "" if pd.isna(best["effect_q_value"]) else f", q = {_q(best['effect_q_value'])}"
        out.append(
            f"Of the {int(sw['effect_percentile'].notna().sum())} axes marked by super weights, {share:.0%} rank in the "
            f"top tenth of their matrix by median effect; the highest is layer {best['layer']} {best['matrix']} tile "
            f"{AXIS_WORD[best['axis']]} {best['index']} ({best['reason']}) at the {best['effect_percentile']:.0f}th "
            f"percentile for probe {best['probe_id']}{q}.")
    return out


def saturation_note(table: pd.DataFrame | None) -> str | None:
    """One sentence on how many probe x matrix pairs have a saturated NSM call, or None."""
    if table is None or table.empty or not table["saturated"].any():
        return None
    n, total = int(table["saturated"].sum()), len(table)
    high = int((table["direction"] == "high").sum())
    return (f"The NSM call is saturated in {n} of {total} probe x matrix pairs ({high} with NSM rate above {HIGH}, "
            f"{n - high} below {LOW}): there the NSM tables have little to find; read the effect-size tables and the "
            "maps' effect colour mode.")
