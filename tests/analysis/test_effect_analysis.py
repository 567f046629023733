"""Effect-size statistics on constructed site frames: planted structure is found, and
under the null (200 random matrices without structure) the p-values are calibrated."""

import numpy as np
import pandas as pd
import pytest

from mutascope.analysis import bias, copa, enrichment, recurrent_axes, saturation


def both_axes(frame, alpha, readout):
    return enrichment(frame, readout, alpha)


NULL_MATRICES = 200
SHAPE = (6, 8)


def effect_frame(maps: dict, probe="p", layer=0, matrix="v", nsm=True) -> pd.DataFrame:
    """A site frame from {kind: 2-D array of effects}; NSM calls all ``nsm`` unless an array is given."""
    parts, mid = [], 0
    for kind, grid in maps.items():
        r, c = np.indices(grid.shape)
        n = grid.size
        calls = np.broadcast_to(np.asarray(nsm), grid.shape).ravel()
        parts.append(
            pd.DataFrame(
                {
                    "probe_id": probe,
                    "layer": layer,
                    "matrix": matrix,
                    "row": r.ravel(),
                    "col": c.ravel(),
                    "kind": kind,
                    "mutation_id": np.arange(mid, mid + n),
                    "nsm": calls.astype(bool),
                    "effect": grid.ravel().astype(float),
                    "filled": True,
                }
            )
        )
        mid += n
    return pd.concat(parts, ignore_index=True)


def noise(rng, shape=SHAPE):
    """Effects as a screen gives them: spanning orders of magnitude, some negative."""
    return np.exp(rng.normal(0.0, 2.0, shape)) - 0.3


@pytest.fixture(scope="module")
def null_frame():
    """200 matrices (as 200 layers) whose max and min effects are independent noise."""
    rng = np.random.default_rng(123)
    return pd.concat(
        [effect_frame({"max": noise(rng), "min": noise(rng)}, layer=i) for i in range(NULL_MATRICES)], ignore_index=True
    )


def share_below(p, level=0.05):
    p = np.asarray(p, dtype=float)
    assert np.isfinite(p).all() and len(p) >= NULL_MATRICES
    return float((p < level).mean())


# -- enrichment -------------------------------------------------------------------------
def test_effect_enrichment_finds_a_planted_column():
    rng = np.random.default_rng(0)
    mx, mn = noise(rng), noise(rng)
    mx[:, 5] = np.abs(mx[:, 5]) * 30 + 20
    mn[:, 5] = np.abs(mn[:, 5]) * 30 + 20
    e = enrichment(effect_frame({"max": mx, "min": mn}), axes=("col",), readout="effect")
    assert list(e.columns[:10]) == [
        "probe_id",
        "layer",
        "matrix",
        "axis",
        "index",
        "tiles",
        "mutants",
        "median_effect",
        "median_rest",
        "median_per_token",
    ]
    assert e.loc[e["enriched"], "index"].tolist() == [5]
    hit = e.set_index("index").loc[5]
    assert hit["tiles"] == SHAPE[0] and hit["mutants"] == 2 * SHAPE[0]
    assert hit["median_effect"] > hit["median_rest"] and hit["q_value"] < 0.001 and hit["score"] > 0.9
    # a saturated NSM map (every tile an NSM) gives the NSM test nothing, the effect test still sees it
    nsm = enrichment(effect_frame({"max": mx, "min": mn}), axes=("col",), readout="nsm")
    assert not nsm["enriched"].any() and (nsm["p_value"] == 1).all()


def test_effect_enrichment_is_calibrated_under_the_null(null_frame):
    e = both_axes(null_frame, 0.05, "effect")
    assert len(e) == NULL_MATRICES * (SHAPE[0] + SHAPE[1])
    assert 0.01 <= share_below(e["p_value"]) <= 0.06  # exact and discrete: at or below the nominal 0.05


def test_recurrent_effect_axes_across_probes():
    rng = np.random.default_rng(4)
    parts = []
    for probe in ("a", "b"):
        mx, mn = noise(rng), noise(rng)
        mx[2, :] += 200
        mn[2, :] += 200
        parts.append(effect_frame({"max": mx, "min": mn}, probe=probe))
    rec = recurrent_axes(both_axes(pd.concat(parts, ignore_index=True), 0.05, "effect"))
    assert rec[["axis", "index", "probes"]].values.tolist() == [["row", 2, 2]]


# -- bias -------------------------------------------------------------------------------
def test_effect_bias_finds_max_larger_than_min_at_the_same_tiles():
    rng = np.random.default_rng(1)
    site = np.exp(rng.normal(0, 2, SHAPE))  # tiles differ a lot; the kind multiplies by 3
    mx = site * 3 * np.exp(rng.normal(0, 0.3, SHAPE))
    mn = site * np.exp(rng.normal(0, 0.3, SHAPE))
    b = bias(effect_frame({"max": mx, "min": mn}), readout="effect").iloc[0]
    assert b["bias"] == "max" and b["q_value"] < 1e-6 and b["tiles"] == SHAPE[0] * SHAPE[1]
    assert b["median_difference"] > 0 and b["ci_low"] > 0 and b["rank_biserial"] > 0.9
    flipped = bias(effect_frame({"max": mn, "min": mx}), readout="effect").iloc[0]
    assert flipped["bias"] == "min" and flipped["median_difference"] < 0


def test_effect_bias_is_calibrated_under_the_null(null_frame):
    b = bias(null_frame, readout="effect")
    assert len(b) == NULL_MATRICES
    assert 0.02 <= share_below(b["p_value"]) <= 0.08


# -- COPA -------------------------------------------------------------------------------
def test_effect_copa_finds_a_planted_complementary_pattern():
    rng = np.random.default_rng(2)
    rows_max = np.array([True, False, True, True, False, False])
    mx, mn = noise(rng), noise(rng)
    mx[rows_max] += 100
    mn[~rows_max] += 100
    c = copa(effect_frame({"max": mx, "min": mn}), n_perm=199, readout="effect").set_index("axis")
    assert c.loc["row", "copa"] < -0.8 and c.loc["row", "p_value"] <= 0.02
    assert c.loc["col", "p_value"] > 0.05


def test_effect_copa_is_calibrated_under_the_null(null_frame):
    c = copa(null_frame, n_perm=199, readout="effect")
    assert len(c) == 2 * NULL_MATRICES
    assert 0.02 <= share_below(c["p_value"]) <= 0.08
    assert c["q_value"].notna().all()


# -- no effect sizes, saturation --------------------------------------------------------
def test_screens_without_effect_sizes_give_empty_effect_tables():
    from mutascope.analysis.run import analysis_tables

    f = effect_frame({"max": np.full(SHAPE, np.nan), "min": np.full(SHAPE, np.nan)}, nsm=np.eye(*SHAPE, dtype=bool))
    tables = analysis_tables(f, n_perm=19)
    for name in ("effect_bias", "effect_enrichment", "effect_copa", "effect_recurrent_axes"):
        assert tables[name].empty and len(tables[name].columns) >= 4, name
    assert len(tables["bias"]) == 1 and len(tables["enrichment"]) == SHAPE[0] + SHAPE[1]


def test_saturation_flags_matrices_whose_nsm_rate_is_near_0_or_1():
    rng = np.random.default_rng(3)
    grid = lambda rate: rng.random(SHAPE) < rate  # noqa: E731
    parts = [
        effect_frame({"max": noise(rng), "min": noise(rng)}, matrix=name, nsm=grid(rate))
        for name, rate in (("q", 0.97), ("k", 0.5), ("v", 0.0))
    ]
    s = saturation(pd.concat(parts, ignore_index=True)).set_index("matrix")
    assert s.loc["q", "saturated"] and s.loc["q", "direction"] == "high"
    assert not s.loc["k", "saturated"] and s.loc["k", "direction"] == ""
    assert s.loc["v", "saturated"] and s.loc["v", "direction"] == "low" and s.loc["v", "rate"] == 0


def test_effect_enrichment_p_values_equal_the_enumerated_within_stratum_permutations():
    import itertools

    rng = np.random.default_rng(9)
    mx, mn = noise(rng, (3, 4)), np.round(noise(rng, (3, 4)), 1)  # rounded: ties too
    f = effect_frame({"max": mx, "min": mn})
    e = enrichment(f, axes=("col",), readout="effect").set_index("index")
    pct = f.groupby("kind")["effect"].rank(pct=True).to_numpy()  # the per-kind scores
    score = pd.DataFrame({"row": f["row"], "col": f["col"], "s": pct}).groupby(["row", "col"])["s"].mean().unstack()
    ranks = score.rank(axis=1).to_numpy() * 2  # doubled mid-ranks within each row (the strata)
    for col, got in e["p_value"].items():
        observed = ranks[:, col].sum()
        sums = [sum(c) for c in itertools.product(*ranks)]  # one tile per row, every placement
        assert got == pytest.approx(np.mean(np.array(sums) >= observed - 1e-9), rel=1e-12), col
