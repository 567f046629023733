"""The statistics tables, said in words: what a reader should take from a screen.

Tables hold every test; a summary should say the few results that survive
their family's false-discovery-rate control, in sentences a reader can check
against the tables. The sentences are each statistic's own (the
``sentences`` of :mod:`.registry`); effect-size statistics come first,
because on small models the NSM call is often saturated and its tests find
nothing.
"""

from __future__ import annotations

import pandas as pd

from .registry import STATISTICS, Context
from .saturation import HIGH, LOW


def findings(tables: dict[str, pd.DataFrame], alpha: float = 0.05, effect: str = "logprob_drop") -> list[str]:
    """Sentences for the results below ``alpha``, effect-size statistics first."""
    ctx = Context(frame=pd.DataFrame(), alpha=alpha, effect=effect, tables=tables)
    ordered = sorted(STATISTICS, key=lambda s: not s.name.startswith("effect_"))
    out: list[str] = []
    for stat in ordered:
        table = tables.get(stat.name)
        if stat.sentences is None or table is None or table.empty:
            continue
        out += stat.sentences(table, ctx)
    return out


def saturation_note(table: pd.DataFrame | None) -> str | None:
    """One sentence on how many probe x matrix pairs have a saturated NSM call, or None."""
    if table is None or table.empty or not table["saturated"].any():
        return None
    n, total = int(table["saturated"].sum()), len(table)
    high = int((table["direction"] == "high").sum())
    return (
        f"The NSM call is saturated in {n} of {total} probe x matrix pairs ({high} with NSM rate above {HIGH}, "
        f"{n - high} below {LOW}): there the NSM tables have little to find; read the effect-size tables and the "
        "maps' effect colour mode."
    )
