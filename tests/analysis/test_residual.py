"""The residual readout: the effect beyond the activation baseline.

A map that is a monotone function of its baseline must give nothing on the residual, however
strong its structure on the effect; a departure planted on top of the baseline must be found,
and the baseline's own structure must not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mutascope.analysis.findings import findings
from mutascope.analysis.readouts import READOUTS, effect_rows, rank_residual, with_residual
from mutascope.analysis.registry import STATISTICS, Context, compute_all
from mutascope.analysis.synthetic import noise_frame

LAYERS = (0, 1, 2)
MATRICES = ("q", "gate", "down")


def _baseline_plant(layer, matrix, row, col, kind, probe):
    """Structure the activations explain: column 2 sensitive everywhere, max above min."""
    return (2.5 if col == 2 else 0.0) + (0.8 if kind == "max" else 0.0)


def _departure(layer, matrix, row, col, kind, probe):
    """Structure beyond the baseline: gate row 5 in every layer and probe."""
    return 2.5 if (matrix == "gate" and row == 5) else 0.0


def _frames(seed: int, departure: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The exact frame and its baseline (``local``): the baseline is a monotone function of the
    same draws with the baseline's structure only."""
    base = noise_frame(seed, layers=LAYERS, matrices=MATRICES, plant=_baseline_plant)

    def both(*a):
        return _baseline_plant(*a) + (_departure(*a) if departure else 0.0)

    frame = noise_frame(seed, layers=LAYERS, matrices=MATRICES, plant=both) if departure else base
    local = 3.0 * np.log(base["effect"]) - 7.0
    predictions = base[["mutation_id", "probe_id"]].assign(predicted=local, local=local)
    return frame, predictions


def _tables(frame, predictions) -> dict[str, pd.DataFrame]:
    return compute_all(Context(frame=frame, n_perm=199, predictions=predictions))


def _calls(table: pd.DataFrame, alpha: float = 0.05) -> int:
    if table.empty or "q_value" not in table.columns:
        return 0
    return int((table["q_value"].astype(float) < alpha).sum())


def test_the_residual_is_zero_where_the_effect_is_a_monotone_function_of_the_baseline():
    rng = np.random.default_rng(0)
    b = rng.normal(size=50)
    assert np.array_equal(rank_residual(np.exp(b) + 3, b), np.zeros(50))
    # a decreasing function is not the baseline's: the fit cannot follow it
    assert np.abs(rank_residual(-b, b)).max() > 0.4
    # ties in the baseline share one fitted value
    r = rank_residual(np.arange(4.0), np.array([0.0, 0.0, 1.0, 1.0]))
    assert np.allclose(r, [-0.125, 0.125, -0.125, 0.125])
    # missing values stay missing; the rest is unaffected
    e = np.exp(b)
    e[3] = np.nan
    r = rank_residual(e, b)
    assert np.isnan(r[3]) and np.allclose(np.delete(r, 3), 0, atol=1e-12)


def test_a_map_that_is_the_baseline_gives_no_finding_on_the_residual():
    frame, predictions = _frames(1, departure=False)
    tables = _tables(frame, predictions)
    # the structure is there on the effect ...
    enriched = tables["effect_enrichment"]
    assert enriched[enriched["enriched"]].query("axis == 'col'")["index"].eq(2).all()
    assert _calls(enriched) > 0 and _calls(tables["effect_bias"]) > 0
    # ... and none of it beyond the baseline
    residual = [s.name for s in STATISTICS if s.name.startswith("residual_")]
    assert {"residual_bias", "residual_enrichment", "residual_copa", "residual_recurrence"} <= set(tables)
    for name in residual:
        assert _calls(tables[name]) == 0, name
    assert not tables["residual_bias"]["bias"].ne("none").any()


def test_a_departure_from_the_baseline_is_found_and_the_baseline_is_not():
    frame, predictions = _frames(2, departure=True)
    tables = _tables(frame, predictions)
    hits = tables["residual_enrichment"].query("enriched")
    gate_rows = hits[(hits["matrix"] == "gate") & (hits["axis"] == "row")]
    assert set(gate_rows["index"]) == {5}
    assert set(map(tuple, gate_rows[["probe_id", "layer"]].values)) == {(p, la) for p in "ab" for la in LAYERS}
    assert not ((hits["axis"] == "col") & (hits["index"] == 2)).any()  # the baseline's column is gone
    # the max/min difference was the baseline's: gone wherever nothing departs from it (in gate,
    # the departure's rank shift is bounded at the top, so it can differ between the kinds)
    assert _calls(tables["effect_bias"][tables["effect_bias"]["matrix"] != "gate"]) > 0
    assert _calls(tables["residual_bias"][tables["residual_bias"]["matrix"] != "gate"]) == 0
    shared = tables["residual_recurrence"]
    assert (shared["shared"] >= 3).all() and (shared["p_value"] < 0.05).all()
    said = [s for s in findings(tables) if s.startswith("Beyond the activation baseline:")]
    assert any("gate, tile row 5 has larger effects" in s for s in said)


def test_residual_readout_is_declared_and_absent_without_a_baseline():
    assert READOUTS == ("nsm", "effect", "residual")
    frame, _ = _frames(3, departure=False)
    tables = compute_all(Context(frame=frame, n_perm=19))
    assert not any(name.startswith("residual_") for name in tables)
    assert "effect_enrichment" in tables
    # a baseline that lacks a mutant leaves its residual null (and its rows out of the readout)
    _, predictions = _frames(3, departure=False)
    partial = with_residual(frame, predictions.iloc[10:])
    assert partial["residual"].iloc[:10].isna().all() and partial["residual"].iloc[10:].notna().all()
    assert len(effect_rows(partial, "residual")) == len(frame) - 10


def test_residual_is_fit_within_each_probe_and_matrix_with_kinds_together():
    frame, predictions = _frames(4, departure=False)
    # scramble the baseline within one matrix: its residual is no longer zero, the others' are
    scrambled = predictions.copy()
    one = (frame["layer"] == 1) & (frame["matrix"] == "gate") & (frame["probe_id"] == "a")
    rng = np.random.default_rng(0)
    scrambled.loc[one.to_numpy(), "local"] = rng.permutation(scrambled.loc[one.to_numpy(), "local"].to_numpy())
    r = with_residual(frame, scrambled)["residual"]
    assert np.allclose(r[~one], 0, atol=1e-12) and r[one].abs().max() > 0.1
    # a residual near zero in mean within each matrix
    means = with_residual(frame, scrambled).groupby(["probe_id", "layer", "matrix"])["residual"].mean()
    assert means.abs().max() == pytest.approx(0, abs=1e-12)


def test_a_baseline_with_structure_the_map_lacks_leaves_at_most_a_weak_mirror():
    """On a map of pure noise, a baseline's axes leave no axis in the residual, and its max/min
    difference only a weak lean the other way (a monotone fit follows noise upwards; readouts.py
    says so). The effect's rank minus the baseline's would mirror it in full."""
    frame = noise_frame(0, layers=LAYERS)
    rng = np.random.default_rng(100)
    noise = (
        rng.normal(size=len(frame)) + np.where(frame["col"] == 2, 3.0, 0.0) + np.where(frame["kind"] == "max", 1.5, 0)
    )
    tables = _tables(frame, frame[["mutation_id", "probe_id"]].assign(predicted=noise, local=noise))
    assert _calls(tables["residual_enrichment"]) == 0
    lean = tables["residual_bias"]["rank_biserial"].median()
    assert -0.25 < lean < 0
