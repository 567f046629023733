"""The report's effect-size view, in a real headless browser, on a planted screen.

The screen is written through the store with effect sizes planted: layer 1
``v`` has every max/min tile an NSM for probe ``fly`` (a saturated NSM call)
while its tile column 3 has effects a hundred times the rest; a
super-activation channel (200) marks that column (and ``o`` row 3); some
NSMs are not filled (a calls-only screen). Each test checks what a user
would see: the notice, pixel colours before and after switching to the
effect mode, the tooltip's effect, the strips, the markers, the fill command.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from mutascope.analysis.run import analyze
from mutascope.engine.batched import BatchedOutcomeRow
from mutascope.plan import Kind, Mutation
from mutascope.report import write_report
from mutascope.store import ProbeRecord, RunRecord, Store, open_results
from pagetools import Watched, lightness, pixel, tile_pixel

RUN = RunRecord(
    model_id="synthetic-effects",
    model_hash="e" * 64,
    dtype="float32",
    device="cpu",
    decoding="greedy",
    tile=(64, 64),
    shard="0/1",
    versions={"test": "1"},
)
SHAPES = {"v": (192, 576), "o": (256, 128)}  # 3 x 9 and 4 x 2 tiles
WT = {"fly": "The life cycle of Drosophila has four stages", "py": "def bubble_sort(xs):"}
CHANNEL = 200  # the super-activation channel: v column tile 3, o row tile 3
UNFILLED_TILE = (1, "v", 0, 3, "max")  # layer, matrix, row, col, kind of an NSM whose output is not stored
NEGATIVE_TILE = (1, "v", 2, 8)  # both kinds have effect -0.5 here (the mutant made WT's output more likely)
FAST = dict(top_n=1, n_perm=49)


def _tokens(text):
    return tuple(ord(c) for c in text)


def planted_effect(rng, layer, matrix, row, col, probe) -> float:
    if (layer, matrix, row, col) == NEGATIVE_TILE:
        return -0.5
    if (layer, matrix, col) == (1, "v", 3):
        return float(rng.uniform(300, 600))
    return float(np.exp(rng.normal(1.0, 0.5)))


def write_effect_screen(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    mutations, mid = [], 0
    for layer in (0, 1):
        for matrix, (h, w) in SHAPES.items():
            for col in range(w // 64):
                for row in range(h // 64):
                    for kind, value in (("max", 0.9), ("min", -0.9)):
                        mutations.append(
                            Mutation(
                                mutation_id=mid,
                                layer=layer,
                                matrix=matrix,
                                row=row,
                                col=col,
                                kind=Kind(kind),
                                value=value,
                                r0=row * 64,
                                r1=row * 64 + 64,
                                c0=col * 64,
                                c1=col * 64 + 64,
                            )
                        )
                        mid += 1
    probes = [
        ProbeRecord(
            probe_id=pid,
            kind="text",
            text=f"prompt of {pid}",
            chat=False,
            max_new_tokens=16,
            decoding="greedy",
            answer=None,
            group=None,
            prompt_tokens=(1, 2),
            wt_tokens=_tokens(wt),
            wt_text=wt,
        )
        for pid, wt in WT.items()
    ]
    rows = []
    for m in mutations:
        for p in probes:
            saturated = (p.probe_id, m.layer, m.matrix) == ("fly", 1, "v")
            nsm = saturated or rng.random() < 0.5
            text = (p.wt_text + f" but mutant {m.mutation_id % 7}") if nsm else p.wt_text
            tokens = _tokens(text)
            if (m.layer, m.matrix, m.row, m.col, m.kind.name) == UNFILLED_TILE:
                tokens, text = None, None
            effect = planted_effect(rng, m.layer, m.matrix, m.row, m.col, p.probe_id)
            rows.append(
                BatchedOutcomeRow(
                    mutation_id=m.mutation_id,
                    probe_id=p.probe_id,
                    tokens=tokens,
                    text=text,
                    divergence=3 if nsm else None,
                    margin=1.0,
                    min_margin=0.5,
                    logprob_drop=effect,
                    logprob_drop_per_token=effect / 16,
                    rechecked=False,
                )
            )
    with Store.open(path, {"test_report_effects": seed}, run=RUN, probes=probes, mutations=mutations) as store:
        store.write_chunk(rows, engine="synthetic", seconds=0.0)
    return path


def superweights_json(path: Path, model_hash: str = RUN.model_hash) -> Path:
    path.write_text(
        json.dumps(
            {
                "format": "mutascope-superweights/1",
                "model_id": RUN.model_id,
                "content_hash": model_hash,
                "dtype": "float32",
                "tile": [64, 64],
                "super_weights": [{"layer": 0, "matrix": "down", "row": CHANNEL, "col": 10}],  # down is not screened
                "super_activations": [{"channel": CHANNEL, "first_layer": 0}],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def effect_screen(tmp_path_factory):
    root = tmp_path_factory.mktemp("effects")
    path = write_effect_screen(root / "screen.duckdb")
    tables = analyze(path, n_perm=49, superweights=superweights_json(root / "sw.json"))
    html = write_report(path, root / "screen.html", **FAST)
    return path, tables, html


def _effect(path, layer, matrix, row, col, kind, probe="fly") -> float:
    with open_results(path) as r:
        return float(
            r.query(
                "SELECT o.logprob_drop FROM outcomes o JOIN mutations m USING (mutation_id) WHERE m.layer = ? AND "
                "m.matrix = ? AND m.row = ? AND m.col = ? AND m.kind = ? AND o.probe_id = ?",
                [layer, matrix, row, col, kind, probe],
            )["logprob_drop"][0]
        )


# -- tables (no browser) ----------------------------------------------------------------
def test_planted_screen_tables(effect_screen):
    path, tables, html = effect_screen
    sat = tables["saturation"].set_index(["probe_id", "layer", "matrix"])
    assert sat.loc[("fly", 1, "v"), "saturated"] and sat.loc[("fly", 1, "v"), "direction"] == "high"
    enr = tables["effect_enrichment"]
    hit = enr[(enr.probe_id == "fly") & (enr.layer == 1) & (enr.matrix == "v") & enr.enriched]
    assert hit[["axis", "index"]].values.tolist() == [["col", 3]]
    sw = tables["superweight_tiles"]
    marked = sw[sw["role"] == "super activation"]
    assert sorted(set(map(tuple, marked[["layer", "matrix", "axis", "index"]].values.tolist()))) == [
        (1, "o", "row", 3),
        (1, "v", "col", 3),
    ]
    before = sw[sw["role"] == "before"]  # the same axes where the super activation does not exist yet: a control
    assert sorted(set(map(tuple, before[["layer", "matrix", "axis", "index"]].values.tolist()))) == [
        (0, "o", "row", 3),
        (0, "v", "col", 3),
    ]
    summary = tables["superweight_summary"].set_index(["probe_id", "matrix", "role"])
    assert summary.loc[("fly", "v", "super activation"), "layers"] == 1
    v = marked[(marked.matrix == "v") & (marked.probe_id == "fly")].iloc[0]
    assert v["effect_rank"] == 1 and v["effect_percentile"] == 100 and v["effect_q_value"] < 0.05
    assert "super-activation channel 200" in v["reason"]
    page = html.read_text(encoding="utf-8")
    assert "NSMs with outputs" in page and re.search(r"\d+ of \d+; run `mutascope fill` for more", page)
    assert "In layer 1 v, tile column 3 has larger effects than the rest of the matrix for probe fly" in page
    assert 'id="saturation-summary"' in page and 'id="superweight-tiles"' in page and 'id="effect-copa"' in page


def test_superweights_of_another_model_are_refused(effect_screen, tmp_path):
    from mutascope.errors import MutascopeError

    path, _, _ = effect_screen
    other = superweights_json(tmp_path / "other.json", model_hash="0" * 64)
    with pytest.raises(MutascopeError, match="screened synthetic-effects"):
        analyze(path, n_perm=9, superweights=other)


# -- in the browser -----------------------------------------------------------------------
def _open_v(browser, html) -> Watched:
    w = Watched(browser, html)
    w.select("fly", 1, "v")
    return w


def test_saturated_matrix_shows_a_notice_that_switches_to_the_effect_view(effect_screen, browser):
    w = _open_v(browser, effect_screen[2])
    try:
        page = w.page
        notice = page.locator("#saturation-notice")
        assert notice.is_visible() and notice.get_attribute("data-saturated") == "high"
        assert "saturated" in notice.inner_text() and "100%" in notice.inner_text()
        page.locator("#to-effect").click()
        assert page.locator("#tilemap").get_attribute("data-mode") == "effect:max"
        assert not notice.is_visible()
        assert page.locator("#colorbar").count() == 1
        w.select("fly", 1, "o")  # not saturated: no notice
        page.select_option("#mode-select", "paper")
        assert not notice.is_visible()
        assert w.errors == [] and w.external_requests() == []
    finally:
        w.page.close()


def test_effect_mode_colours_tiles_by_effect_and_the_tooltip_shows_it(effect_screen, browser):
    path = effect_screen[0]
    w = _open_v(browser, effect_screen[2])
    try:
        page = w.page
        big, small = tile_pixel(page, 1, 3), tile_pixel(page, 1, 0)
        assert big == small  # every tile is an NSM of both kinds: one colour in the paper's view
        page.select_option("#mode-select", "effect:max")
        big, small = tile_pixel(page, 1, 3), tile_pixel(page, 1, 0)
        assert big != small and lightness(big) > lightness(small) + 0.3  # cividis: larger is lighter
        negative = tile_pixel(page, 2, 8)
        assert "#{:02X}{:02X}{:02X}".format(*negative) == "#F4A6B8"  # zero and negative effects: their own colour
        page.mouse.move(*w.tile_point(1, 3))
        tip = page.locator("#tooltip").inner_text()
        shown = float(re.search(r"max: NSM #\d+, effect ([-\d.e+]+) nats", tip).group(1))
        assert shown == pytest.approx(_effect(path, 1, "v", 1, 3, "max"), rel=2e-3)
        # the strips: column 3's median effect is the brightest of the column strip, in this mode
        cell, bottom = int(page.locator("#strip-cols").get_attribute("data-cell")), strip_height(page) - 1
        strip = [lightness(pixel(page, "strip-cols", c * cell + 1, bottom)) for c in range(9)]  # beside the wedge
        assert int(np.argmax(strip)) == 3 and page.locator("#strip-cols").get_attribute("data-label") == "median effect"
        page.mouse.move(*_strip_point(page, "strip-cols", 3))
        assert "median effect (max)" in page.locator("#tooltip").inner_text()
        assert "super weights: super-activation channel 200" in page.locator("#tooltip").inner_text()
        # back to NSMs, the strips show NSM rates: all 1 in this saturated matrix
        page.select_option("#mode-select", "paper")
        assert page.locator("#strip-cols").get_attribute("data-label") == "NSM rate"
        rates = {pixel(page, "strip-cols", c * cell + 1, bottom) for c in range(9)}
        assert len(rates) == 1
        assert w.errors == [] and w.external_requests() == []
    finally:
        w.page.close()


def strip_height(page) -> int:
    return int(page.locator("#strip-cols").get_attribute("height"))


def _strip_point(page, strip_id, index):
    box = page.locator(f"#{strip_id}").bounding_box()
    cell = int(page.locator(f"#{strip_id}").get_attribute("data-cell"))
    scale = box["width"] / int(page.locator(f"#{strip_id}").get_attribute("width"))
    return box["x"] + (index + 0.5) * cell * scale, box["y"] + 2


def test_super_weight_axes_are_marked_on_the_map(effect_screen, browser):
    w = _open_v(browser, effect_screen[2])
    try:
        page = w.page
        assert page.locator("#tilemap").get_attribute("data-marks") == "col:3"
        page.mouse.move(*w.tile_point(2, 3))
        assert (
            "super weights (col 3): super-activation channel 200 (from layer 0)"
            in page.locator("#tooltip").inner_text()
        )
        w.select("fly", 1, "o")
        assert page.locator("#tilemap").get_attribute("data-marks") == "row:3"
        w.select("fly", 0, "v")  # the channel appears after layer 0: nothing marked there
        assert page.locator("#tilemap").get_attribute("data-marks") == ""
    finally:
        w.page.close()


def test_clicking_an_unfilled_nsm_gives_the_fill_command(effect_screen, browser):
    path = effect_screen[0]
    w = _open_v(browser, effect_screen[2])
    try:
        page = w.page
        page.mouse.click(*w.tile_point(0, 3))
        detail = page.locator("#detail")
        assert "max mutant: NSM (output not filled)" in detail.inner_text()
        assert page.locator("#detail pre.fill-command").inner_text() == f"mutascope fill {path} --site 1.v.0.3"
        assert page.locator("#detail pre[data-kind='min']").count() == 1  # the min mutant's output is there
        effect = page.locator("#detail .effect[data-kind='max']").inner_text()
        assert effect.startswith("effect (logprob_drop): ")
        assert w.errors == [] and w.external_requests() == []
    finally:
        w.page.close()


def test_effect_map_png_draws_nonpositive_effects_in_their_own_colour():
    """Issue 27: a negative effect was clamped to the scale's floor and drawn in the colour of
    the smallest positive effect."""
    import pandas as pd
    from matplotlib.colors import to_rgba

    from mutascope.report.figures import NONPOSITIVE_COLOUR, effect_map_figure

    effects = {(0, 0): 2.0, (0, 1): 1e-3, (1, 0): -0.2, (1, 1): 0.0}  # (row, col): effect
    frame = pd.DataFrame(
        [
            {"layer": 0, "matrix": "q", "probe_id": "a", "kind": kind, "row": r, "col": c, "effect": e}
            for kind in ("max", "min")
            for (r, c), e in effects.items()
        ]
    )
    fig = effect_map_figure(frame, 0, "q")
    image = fig.axes[0].get_images()[0]
    rgba = image.to_rgba(image.get_array())
    colour = {rc: tuple(np.round(rgba[rc][:4] / 255 if rgba.dtype == np.uint8 else rgba[rc][:4], 3)) for rc in effects}
    assert colour[(1, 0)] == colour[(1, 1)] == tuple(np.round(to_rgba(NONPOSITIVE_COLOUR), 3))
    assert colour[(0, 1)] != colour[(1, 0)]  # the smallest positive effect keeps the scale's lowest colour


def test_the_report_plan_line_says_all_not_none():
    from mutascope.report.html import _plan_line

    line = _plan_line({"layers": [0, 2], "matrices": None, "rows": None, "kinds": ["max", "min"], "tile": [64, 64]})
    assert line == "layers=0,2, matrices=all, rows=all, kinds=max,min, tile=64x64"
