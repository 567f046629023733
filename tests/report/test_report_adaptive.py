"""The report of an adaptive screen, in a real headless browser: the tiles the screen did not
measure carry only the surrogate's estimate, and the map must never let them pass for measured
ones. They are drawn lighter and hatched (a measured tile is one flat colour), with their own
legend entry "estimated (not measured)", and their tooltip and detail say "not measured".

The file is a real adaptive screen: a replay (docs/adaptive.md) of a complete screen of the tiny
model, so the tiles measured and estimated are the ones the rounds chose.
"""

from __future__ import annotations

import duckdb
import pytest

from helpers import screen_of, text_probes
from mutascope.model.subject import load_model
from mutascope.plan import PlanSpec
from mutascope.report import write_report
from mutascope.screen import Adaptive
from mutascope.screen.replay import ReplayScreen, replay_config
from pagetools import Watched

SPEC = PlanSpec.parse(layers="0,2", matrices="q,v,down", kinds="max,min")
PROBE = "hello"


@pytest.fixture(scope="module")
def adaptive_report(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("adaptive-report")
    full = root / "full.duckdb"
    screen_of(load_model(tiny_model_dir), text_probes(6), SPEC, full, chunk_size=4).run()
    path = root / "adaptive.duckdb"
    config = replay_config(full, path, order="adaptive", adaptive=Adaptive(budget="24", audit=8), chunk_size=4)
    ReplayScreen(config).run()
    html = write_report(path, root / "adaptive.html", top_n=1, n_perm=9)
    return path, html


def _tiles(path):
    """(layer, matrix) -> {(row, col): 'measured' | 'estimated'} for probe hello under max."""
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            'SELECT m.layer, m.matrix, m."row", m.col, e.source FROM estimates e JOIN mutations m USING (mutation_id) '
            "WHERE e.probe_id = ? AND m.kind = 'max'",
            [PROBE],
        ).fetchall()
    out: dict = {}
    for layer, matrix, row, col, source in rows:
        out.setdefault((layer, matrix), {})[(row, col)] = source
    return out


def _colours(page, row, col) -> set[tuple[int, int, int]]:
    """The distinct colours inside a tile of the drawn map (its gap line left out)."""
    cell = int(page.locator("#tilemap").get_attribute("data-cell"))
    return {
        tuple(c)
        for c in page.evaluate(
            """([x, y, n]) => {
            const d = document.getElementById('tilemap').getContext('2d').getImageData(x, y, n, n).data;
            const out = [];
            for (let i = 0; i < d.length; i += 4) out.push([d[i], d[i + 1], d[i + 2]]);
            return out; }""",
            [col * cell, row * cell, cell - 1],
        )
    }


def test_estimated_tiles_are_drawn_hatched_with_their_own_legend_entry(adaptive_report, browser):
    path, html = adaptive_report
    tiles = _tiles(path)
    (layer, matrix), sources = next(
        (k, v) for k, v in sorted(tiles.items()) if {"measured", "estimated"} <= set(v.values())
    )
    estimated = next(t for t, s in sorted(sources.items()) if s == "estimated")
    measured = next(t for t, s in sorted(sources.items()) if s == "measured")
    w = Watched(browser, html)
    try:
        page = w.page
        w.select(PROBE, layer, matrix)
        canvas = page.locator("#tilemap")
        for mode in ("effect:max", "max"):
            page.select_option("#mode-select", mode)
            assert int(canvas.get_attribute("data-estimated")) >= 1, mode
            legend = page.locator("#legend").inner_text()
            assert "estimated (not measured)" in legend, legend
            assert page.locator("#legend canvas.sw.estimated").count() == 1
            hatched = _colours(page, *estimated)
            assert len(hatched) >= 2 and (255, 255, 255) != min(hatched), (mode, hatched)  # lines over a fill
            assert len(_colours(page, *measured)) == 1, mode  # a measured tile: one flat colour
        page.select_option("#mode-select", "effect:max")
        page.mouse.move(*w.tile_point(*estimated))
        tip = page.locator("#tooltip").inner_text()
        assert "max: not measured; estimated effect" in tip and "not a measurement" in tip, tip
        page.mouse.move(*w.tile_point(*measured))
        assert "estimated" not in page.locator("#tooltip").inner_text()
        page.mouse.click(*w.tile_point(*estimated))
        detail = page.locator("#detail .mutant.estimated[data-kind='max']").inner_text()
        assert "not measured by the adaptive screen" in detail
        assert w.errors == [] and w.external_requests() == []
    finally:
        w.page.close()


def test_a_screen_without_estimates_draws_no_estimated_tiles(adaptive_report, browser, tmp_path):
    """The plan-order screen the replay came from: no estimates, no hatching, no legend entry."""
    full = adaptive_report[0].parent / "full.duckdb"
    html = write_report(full, tmp_path / "full.html", top_n=1, n_perm=9)
    w = Watched(browser, html)
    try:
        page = w.page
        page.select_option("#mode-select", "effect:max")
        assert page.locator("#tilemap").get_attribute("data-estimated") == "0"
        assert "estimated" not in page.locator("#legend").inner_text()
        assert w.errors == [] and w.external_requests() == []
    finally:
        w.page.close()
